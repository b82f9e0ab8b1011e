// Tests for the DNS message codec: real dig queries, compression, every ParseError, truncation,
// and Name.
#include "dns/message.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "base/encoding.h"
#include "dns/name.h"

namespace {

using p2proxy::base::IpAddress;
using p2proxy::dns::BuildMessage;
using p2proxy::dns::Message;
using p2proxy::dns::Name;
using p2proxy::dns::ParseError;
using p2proxy::dns::ParseMessage;
using p2proxy::dns::Record;
namespace dns = p2proxy::dns;

// Hex decodes a hex dump with spaces and newlines.
std::vector<uint8_t> Hex(const std::string& dump) {
  auto bytes = p2proxy::base::HexDecode(absl::StrReplaceAll(dump, {{" ", ""}, {"\n", ""}}));
  REQUIRE(bytes.ok());
  return *bytes;
}

Name N(const std::string& text) {
  auto n = Name::Parse(text);
  REQUIRE(n.ok());
  return *n;
}

ParseError Parse(const std::vector<uint8_t>& wire, Message* out = nullptr) {
  Message m;
  return ParseMessage(wire, out != nullptr ? out : &m);
}

// Captured from `dig @127.0.0.1 -p 25353 vault.example.internal` (DiG 9.18.49, Debian 12) with a
// Python UDP socket on loopback: RD and AD set, OPT with payload 1232 and an 8-byte client
// cookie.
const char kDigEdns[] =
    "d602 0120 0001 0000 0000 0001"
    "05 7661756c74 07 6578616d706c65 08 696e7465726e616c 00 0001 0001"
    "00 0029 04d0 00000000 000c 000a 0008 437aeeb2636859f4";
// The same with +noedns.
const char kDigPlain[] =
    "e3ce 0120 0001 0000 0000 0000"
    "05 7661756c74 07 6578616d706c65 08 696e7465726e616c 00 0001 0001";
// `dig ... Vault.Example.Internal AAAA`.
const char kDigAaaa[] =
    "3f61 0120 0001 0000 0000 0001"
    "05 5661756c74 07 4578616d706c65 08 496e7465726e616c 00 001c 0001"
    "00 0029 04d0 00000000 000c 000a 0008 c65d615a32e11ca6";
// `dig ... -x 100.96.128.20`.
const char kDigPtr[] =
    "3436 0120 0001 0000 0000 0001"
    "02 3230 03 313238 02 3936 03 313030 07 696e2d61646472 04 61727061 00 000c 0001"
    "00 0029 04d0 00000000 000c 000a 0008 e462e105c72942db";

// A response written from RFC 1035 4.1 with the compression a server uses (offsets in the
// comments): vault.example.internal CNAME web.example.internal, web A 100.96.128.20, the SOA of
// example.internal in authority, OPT in additional.
const char kCompressedResponse[] =
    "1234 8580 0001 0002 0001 0001"
    // 12: vault(12) example(18) internal(26) root(35), A IN
    "05 7661756c74 07 6578616d706c65 08 696e7465726e616c 00 0001 0001"
    // 40: c00c CNAME IN 60, rdata(52) = web + ->18
    "c00c 0005 0001 0000003c 0006 03 776562 c012"
    // 58: ->52 (web.example.internal) A IN 60 100.96.128.20
    "c034 0001 0001 0000003c 0004 64608014"
    // 74: ->18 SOA IN 60, mname ns+->18, rname hostmaster+->18, serial..minimum
    "c012 0006 0001 0000003c 0026 02 6e73 c012 0a 686f73746d6173746572 c012"
    "00000001 00000e10 00000258 00015180 0000003c"
    // 124: OPT payload 4096
    "00 0029 1000 00000000 0000";

void RequireSame(const Message& a, const Message& b) {
  REQUIRE(a.header.id == b.header.id);
  REQUIRE(a.header.qr == b.header.qr);
  REQUIRE(a.header.opcode == b.header.opcode);
  REQUIRE(a.header.aa == b.header.aa);
  REQUIRE(a.header.tc == b.header.tc);
  REQUIRE(a.header.rd == b.header.rd);
  REQUIRE(a.header.ra == b.header.ra);
  REQUIRE(a.header.ad == b.header.ad);
  REQUIRE(a.header.cd == b.header.cd);
  REQUIRE(a.header.rcode == b.header.rcode);
  REQUIRE(a.questions.size() == b.questions.size());
  for (size_t i = 0; i < a.questions.size(); ++i) {
    REQUIRE(a.questions[i].name.labels() == b.questions[i].name.labels());
    REQUIRE(a.questions[i].type == b.questions[i].type);
    REQUIRE(a.questions[i].klass == b.questions[i].klass);
  }
  const std::vector<Record>* sa[] = {&a.answers, &a.authorities, &a.additionals};
  const std::vector<Record>* sb[] = {&b.answers, &b.authorities, &b.additionals};
  for (int s = 0; s < 3; ++s) {
    REQUIRE(sa[s]->size() == sb[s]->size());
    for (size_t i = 0; i < sa[s]->size(); ++i) {
      const Record& x = (*sa[s])[i];
      const Record& y = (*sb[s])[i];
      REQUIRE(x.name.labels() == y.name.labels());
      REQUIRE(x.type == y.type);
      REQUIRE(x.klass == y.klass);
      REQUIRE(x.ttl == y.ttl);
      REQUIRE(x.rdata == y.rdata);
    }
  }
  REQUIRE(a.edns.has_value() == b.edns.has_value());
  if (a.edns) {
    REQUIRE(a.edns->udp_payload_size == b.edns->udp_payload_size);
    REQUIRE(a.edns->extended_rcode == b.edns->extended_rcode);
    REQUIRE(a.edns->version == b.edns->version);
    REQUIRE(a.edns->dnssec_ok == b.edns->dnssec_ok);
    REQUIRE(a.edns->options == b.edns->options);
  }
}

// Uncompressed wire form of a name, as Record::rdata keeps it.
std::vector<uint8_t> Wire(const Name& n) {
  std::vector<uint8_t> out;
  for (const std::string& l : n.labels()) {
    out.push_back(static_cast<uint8_t>(l.size()));
    out.insert(out.end(), l.begin(), l.end());
  }
  out.push_back(0);
  return out;
}

// Query is a 12-byte query header (id 1, RD, qdcount 1) followed by |body|.
std::vector<uint8_t> Query(const std::string& body_hex) {
  return Hex("0001 0100 0001 0000 0000 0000" + body_hex);
}

}  // namespace

TEST_CASE("A dig query with EDNS and a cookie parses and rebuilds byte for byte") {
  const std::vector<uint8_t> wire = Hex(kDigEdns);
  Message m;
  REQUIRE(ParseMessage(wire, &m) == ParseError::kOk);
  REQUIRE(m.header.id == 0xd602);
  REQUIRE_FALSE(m.header.qr);
  REQUIRE(m.header.opcode == 0);
  REQUIRE(m.header.rd);
  REQUIRE(m.header.ad);
  REQUIRE_FALSE(m.header.cd);
  REQUIRE(m.questions.size() == 1);
  REQUIRE(m.questions[0].name.ToString() == "vault.example.internal");
  REQUIRE(m.questions[0].type == dns::kTypeA);
  REQUIRE(m.questions[0].klass == dns::kClassIn);
  REQUIRE(m.answers.empty());
  REQUIRE(m.additionals.empty());  // OPT went to |edns|
  REQUIRE(m.edns.has_value());
  REQUIRE(m.edns->udp_payload_size == 1232);
  REQUIRE(m.edns->version == 0);
  REQUIRE_FALSE(m.edns->dnssec_ok);
  REQUIRE(m.edns->options == Hex("000a 0008 437aeeb2636859f4"));  // COOKIE, client part
  std::vector<uint8_t> rebuilt;
  REQUIRE(BuildMessage(m, 65535, &rebuilt));
  REQUIRE(rebuilt == wire);
}

TEST_CASE("A dig query without EDNS parses and rebuilds byte for byte") {
  const std::vector<uint8_t> wire = Hex(kDigPlain);
  Message m;
  REQUIRE(ParseMessage(wire, &m) == ParseError::kOk);
  REQUIRE(m.header.id == 0xe3ce);
  REQUIRE_FALSE(m.edns.has_value());
  REQUIRE(m.questions.size() == 1);
  REQUIRE(m.questions[0].name == N("vault.example.internal"));
  std::vector<uint8_t> rebuilt;
  REQUIRE(BuildMessage(m, 512, &rebuilt));
  REQUIRE(rebuilt == wire);
}

TEST_CASE("Query names keep the client's case and compare ignoring it") {
  Message m;
  REQUIRE(Parse(Hex(kDigAaaa), &m) == ParseError::kOk);
  REQUIRE(m.questions[0].type == dns::kTypeAaaa);
  const Name& q = m.questions[0].name;
  REQUIRE(q.ToString() == "Vault.Example.Internal");
  REQUIRE(q.Key() == "vault.example.internal");
  REQUIRE(q == N("VAULT.example.INTERNAL"));
  std::vector<uint8_t> rebuilt;
  REQUIRE(BuildMessage(m, 65535, &rebuilt));
  REQUIRE(rebuilt == Hex(kDigAaaa));
}

TEST_CASE("A dig -x query names the address it asks about") {
  Message m;
  REQUIRE(Parse(Hex(kDigPtr), &m) == ParseError::kOk);
  REQUIRE(m.questions[0].type == dns::kTypePtr);
  REQUIRE(m.questions[0].name.ToString() == "20.128.96.100.in-addr.arpa");
  const auto addr = dns::FromReverseName(m.questions[0].name);
  REQUIRE(addr.has_value());
  REQUIRE(*addr == IpAddress::V4(100, 96, 128, 20));
  REQUIRE(dns::ReverseName(*addr) == m.questions[0].name);
}

TEST_CASE("A compressed response is decompressed, rebuilt compressed, and parses equal") {
  const std::vector<uint8_t> wire = Hex(kCompressedResponse);
  REQUIRE(wire.size() == 135);
  Message m;
  REQUIRE(ParseMessage(wire, &m) == ParseError::kOk);
  REQUIRE(m.header.qr);
  REQUIRE(m.header.aa);
  REQUIRE(m.header.ra);
  REQUIRE(m.answers.size() == 2);
  REQUIRE(m.answers[0].name == N("vault.example.internal"));
  REQUIRE(m.answers[0].type == dns::kTypeCname);
  // The CNAME target is stored uncompressed.
  REQUIRE(m.answers[0].rdata == Wire(N("web.example.internal")));
  REQUIRE(dns::ReadRdataName(m.answers[0].rdata)->ToString() == "web.example.internal");
  REQUIRE(m.answers[1].name == N("web.example.internal"));
  REQUIRE(m.answers[1].rdata == Hex("64608014"));
  REQUIRE(m.authorities.size() == 1);
  const Record soa = dns::MakeSoa(N("example.internal"), 60, N("ns.example.internal"),
                                  N("hostmaster.example.internal"), 1, 3600, 600, 86400, 60);
  REQUIRE(m.authorities[0].name == soa.name);
  REQUIRE(m.authorities[0].rdata == soa.rdata);
  REQUIRE(m.additionals.empty());
  REQUIRE(m.edns->udp_payload_size == 4096);

  std::vector<uint8_t> rebuilt;
  REQUIRE(BuildMessage(m, 65535, &rebuilt));
  // Our compression finds the same suffixes the hand-written message used.
  REQUIRE(rebuilt == wire);
  Message again;
  REQUIRE(ParseMessage(rebuilt, &again) == ParseError::kOk);
  RequireSame(m, again);
}

TEST_CASE("Compression matches exact bytes, so each name keeps its own case") {
  Message m;
  m.header.qr = true;
  m.questions.push_back({N("Vault.Example.Internal"), dns::kTypeA, dns::kClassIn});
  m.answers.push_back(dns::MakeA(N("vault.example.internal"), 60, IpAddress::V4(10, 0, 0, 1)));
  m.answers.push_back(dns::MakeA(N("Vault.Example.Internal"), 60, IpAddress::V4(10, 0, 0, 2)));
  std::vector<uint8_t> wire;
  REQUIRE(BuildMessage(m, 512, &wire));
  Message back;
  REQUIRE(ParseMessage(wire, &back) == ParseError::kOk);
  REQUIRE(back.answers[0].name.ToString() == "vault.example.internal");
  REQUIRE(back.answers[1].name.ToString() == "Vault.Example.Internal");
  // The second answer's owner is a bare pointer to the question (offset 12).
  const std::vector<uint8_t> second_owner = {0xc0, 0x0c};
  const size_t second = 12 + 24 + 4 + (24 + 10 + 4);
  REQUIRE(std::vector<uint8_t>(wire.begin() + second, wire.begin() + second + 2) == second_owner);
  RequireSame(m, back);
}

TEST_CASE("MX SOA PTR NS and SRV rdata names survive a round trip") {
  Message m;
  m.header.qr = true;
  m.questions.push_back({N("example.internal"), dns::kTypeAny, dns::kClassIn});
  auto with_prefix = [](std::vector<uint8_t> prefix, const Name& n) {
    std::vector<uint8_t> w = Wire(n);
    prefix.insert(prefix.end(), w.begin(), w.end());
    return prefix;
  };
  m.answers.push_back({N("example.internal"), dns::kTypeMx, dns::kClassIn, 60,
                       with_prefix({0, 10}, N("mail.example.internal"))});
  m.answers.push_back(
      {N("example.internal"), dns::kTypeNs, dns::kClassIn, 60, Wire(N("ns.example.internal"))});
  m.answers.push_back({N("_x._tcp.example.internal"), dns::kTypeSrv, dns::kClassIn, 60,
                       with_prefix({0, 1, 0, 2, 0x1f, 0x90}, N("web.example.internal"))});
  m.answers.push_back(dns::MakePtr(N("1.0.0.10.in-addr.arpa"), 60, N("web.example.internal")));
  m.answers.push_back(
      {N("example.internal"), dns::kTypeTxt, dns::kClassIn, 60, {5, 'h', 'e', 'l', 'l', 'o'}});
  std::vector<uint8_t> wire;
  REQUIRE(BuildMessage(m, 65535, &wire));
  Message back;
  REQUIRE(ParseMessage(wire, &back) == ParseError::kOk);
  RequireSame(m, back);
  // The SRV target is written in full (RFC 2782): its labels appear literally after the
  // 6 fixed bytes.
  const std::vector<uint8_t> srv_rdata =
      with_prefix({0, 1, 0, 2, 0x1f, 0x90}, N("web.example.internal"));
  REQUIRE(std::search(wire.begin(), wire.end(), srv_rdata.begin(), srv_rdata.end()) != wire.end());
}

TEST_CASE("Compression pointers that loop are refused") {
  // The question name is a pointer to itself.
  REQUIRE(Parse(Query("c00c 0001 0001")) == ParseError::kPointerLoop);
  // "a" then a pointer back to the start of the same name: a.a.a.a...
  REQUIRE(Parse(Query("01 61 c00c 0001 0001")) == ParseError::kPointerLoop);
}

TEST_CASE("Compression pointers forwards, past the end or into the header are refused") {
  // Points at offset 18, after the pointer (12); the bytes there hold a valid name.
  REQUIRE(Parse(Query("c012 0001 0001 01 61 00")) == ParseError::kBadPointer);
  REQUIRE(Parse(Query("c0ff 0001 0001")) == ParseError::kBadPointer);
  REQUIRE(Parse(Query("c002 0001 0001")) == ParseError::kBadPointer);
}

TEST_CASE("A chain of 16 pointers is followed and 17 is refused") {
  // The question is "a." at 12; record i's owner (2 bytes) points at record i-1's owner, so
  // the owner of record k takes k jumps. Each record: owner, A IN, ttl 0, rdlength 0.
  auto message = [](int num_records) {
    std::vector<uint8_t> w = Hex("0001 8000 0001 0000 0000 0000 01 61 00 0001 0001");
    w[11] = static_cast<uint8_t>(num_records);  // arcount
    size_t previous = 12;
    for (int i = 0; i < num_records; ++i) {
      const size_t here = w.size();
      const std::vector<uint8_t> rec = {static_cast<uint8_t>(0xc0 | (previous >> 8)),
                                        static_cast<uint8_t>(previous),
                                        0,
                                        1,
                                        0,
                                        1,
                                        0,
                                        0,
                                        0,
                                        0,
                                        0,
                                        0};
      w.insert(w.end(), rec.begin(), rec.end());
      previous = here;
    }
    return w;
  };
  Message m;
  REQUIRE(Parse(message(16), &m) == ParseError::kOk);
  REQUIRE(m.additionals.size() == 16);
  REQUIRE(m.additionals[15].name.ToString() == "a");
  REQUIRE(Parse(message(17)) == ParseError::kPointerLoop);
}

TEST_CASE("Reserved label types 0x40 and 0x80 are refused") {
  REQUIRE(Parse(Query("41 00 0001 0001")) == ParseError::kBadLabel);
  REQUIRE(Parse(Query("80 00 0001 0001")) == ParseError::kBadLabel);
}

TEST_CASE("Names longer than 255 octets are refused also when built from pointers") {
  const std::string l63 = "3f" + std::string(126, '6') + "";  // 63 bytes of 'f'
  const std::string l61 = "3d" + std::string(122, '6');
  const std::string l62 = "3e" + std::string(124, '6');
  // 3 * 64 + 62 + 1 = 255 octets: the longest legal name.
  Message m;
  REQUIRE(Parse(Query(l63 + l63 + l63 + l61 + "00 0001 0001"), &m) == ParseError::kOk);
  REQUIRE(m.questions[0].name.WireLength() == 255);
  // 256 octets.
  REQUIRE(Parse(Query(l63 + l63 + l63 + l62 + "00 0001 0001")) == ParseError::kNameTooLong);
  // 128 + 1 octets at 12, then a name of two 63-octet labels pointing at it: 128 + 129 > 255.
  const std::string two = l63 + l63;
  std::vector<uint8_t> w =
      Hex("0001 0100 0002 0000 0000 0000" + two + "00 0001 0001" + two + "c00c 0001 0001");
  REQUIRE(Parse(w) == ParseError::kNameTooLong);
}

TEST_CASE("Every truncation of a valid message is refused as short") {
  const std::vector<uint8_t> wire = Hex(kCompressedResponse);
  for (size_t len = 0; len < wire.size(); ++len) {
    const std::vector<uint8_t> cut(wire.begin(), wire.begin() + len);
    Message m;
    const ParseError e = ParseMessage(cut, &m);
    INFO("length " << len << ": " << dns::ParseErrorName(e));
    REQUIRE(e != ParseError::kOk);
  }
  REQUIRE(Parse(std::vector<uint8_t>(wire.begin(), wire.end() - 1)) == ParseError::kShort);
  REQUIRE(Parse(std::vector<uint8_t>(wire.begin(), wire.begin() + 11)) == ParseError::kShort);
  REQUIRE(Parse({}) == ParseError::kShort);
  // Cut inside the CNAME's rdata: the length prefix runs past the end.
  REQUIRE(Parse(std::vector<uint8_t>(wire.begin(), wire.begin() + 56)) ==
          ParseError::kTooManyRecords);  // too few bytes left for the 4 records announced
  REQUIRE(Parse(std::vector<uint8_t>(wire.begin(), wire.begin() + 100)) == ParseError::kShort);
}

TEST_CASE("Counts larger than the bytes can hold are refused before allocating") {
  std::vector<uint8_t> w = Hex(kDigPlain);
  w[6] = 0xff;  // ancount 65535 in a 40-byte message
  w[7] = 0xff;
  REQUIRE(Parse(w) == ParseError::kTooManyRecords);
  w = Hex(kDigPlain);
  w[5] = 9;  // qdcount 9: 9 * 5 bytes do not fit in 28
  REQUIRE(Parse(w) == ParseError::kTooManyRecords);
  // qdcount 2 fits the bound but the second question is missing: short.
  w = Hex(kDigPlain);
  w[5] = 2;
  w.insert(w.end(), {0, 0, 1, 0});  // 4 more bytes, not a whole question
  REQUIRE(Parse(w) == ParseError::kShort);
}

TEST_CASE("OPT twice, outside the additional section, off the root or with bad options") {
  const std::string header_q = "05 7661756c74 07 6578616d706c65 08 696e7465726e616c 00 0001 0001";
  const std::string opt = "00 0029 04d0 00000000 0000";
  REQUIRE(Parse(Hex("0001 0100 0001 0000 0000 0002" + header_q + opt + opt)) ==
          ParseError::kBadOpt);
  REQUIRE(Parse(Hex("0001 0100 0001 0001 0000 0000" + header_q + opt)) == ParseError::kBadOpt);
  REQUIRE(Parse(Hex("0001 0100 0001 0000 0001 0000" + header_q + opt)) == ParseError::kBadOpt);
  // Owner c00c (vault.example.internal) instead of the root.
  REQUIRE(Parse(Hex("0001 0100 0001 0000 0000 0001" + header_q + "c00c 0029 04d0 00000000 0000")) ==
          ParseError::kBadOpt);
  // An option whose length runs past the rdata.
  REQUIRE(Parse(Hex("0001 0100 0001 0000 0000 0001" + header_q +
                    "00 0029 04d0 00000000 0006 000a 0008 0102")) == ParseError::kBadOpt);
  // A lone byte after the last option.
  REQUIRE(Parse(Hex("0001 0100 0001 0000 0000 0001" + header_q +
                    "00 0029 04d0 00000000 0005 000a 0000 01")) == ParseError::kBadOpt);
  // The DO bit, version and extended rcode are read from the TTL.
  Message m;
  REQUIRE(Parse(Hex("0001 0100 0001 0000 0000 0001" + header_q + "00 0029 0200 01028000 0000"),
                &m) == ParseError::kOk);
  REQUIRE(m.edns->extended_rcode == 1);
  REQUIRE(m.edns->version == 2);
  REQUIRE(m.edns->dnssec_ok);
  REQUIRE(m.edns->udp_payload_size == 512);
}

TEST_CASE("Bytes after the last record are refused") {
  std::vector<uint8_t> w = Hex(kDigEdns);
  w.push_back(0);
  REQUIRE(Parse(w) == ParseError::kTrailingBytes);
}

TEST_CASE("Rdata that does not hold exactly its names is refused") {
  const std::string q = "0001 8000 0001 0001 0000 0000 01 61 00 0001 0001";
  // CNAME rdata "b." plus one extra byte.
  REQUIRE(Parse(Hex(q + "c00c 0005 0001 00000000 0004 01 62 00 ff")) == ParseError::kBadRdata);
  // CNAME whose name runs past rdlength.
  REQUIRE(Parse(Hex(q + "c00c 0005 0001 00000000 0002 01 62 00")) == ParseError::kBadRdata);
  // MX without its name; SOA without its 20 bytes.
  REQUIRE(Parse(Hex(q + "c00c 000f 0001 00000000 0002 000a")) == ParseError::kBadRdata);
  REQUIRE(Parse(Hex(q + "c00c 0006 0001 00000000 0002 00 00")) == ParseError::kBadRdata);
  // A pointer inside rdata is checked like any other.
  REQUIRE(Parse(Hex(q + "c00c 0005 0001 00000000 0002 c01f")) == ParseError::kPointerLoop);
  // Other types are opaque.
  Message m;
  REQUIRE(Parse(Hex(q + "c00c 0010 0001 00000000 0003 02 6869"), &m) == ParseError::kOk);
  REQUIRE(m.answers[0].rdata == Hex("02 6869"));
}

TEST_CASE("PeekHeader reads the id of a message it cannot parse") {
  std::vector<uint8_t> w = Hex(kDigPlain);
  w[6] = 0xff;
  dns::Header h;
  REQUIRE(dns::PeekHeader(w, &h));
  REQUIRE(h.id == 0xe3ce);
  REQUIRE(h.rd);
  REQUIRE_FALSE(dns::PeekHeader(std::vector<uint8_t>(w.begin(), w.begin() + 11), &h));
}

TEST_CASE("BuildMessage drops records from the end sets TC and fits max_len") {
  Message m;
  m.header.id = 7;
  m.header.qr = true;
  m.questions.push_back({N("many.example.internal"), dns::kTypeA, dns::kClassIn});
  for (int i = 0; i < 60; ++i) {
    m.answers.push_back(dns::MakeA(N("many.example.internal"), 60,
                                   IpAddress::V4(10, 0, 0, static_cast<uint8_t>(i))));
  }
  m.additionals.push_back(dns::MakeA(N("extra.example.internal"), 60, IpAddress::V4(1, 2, 3, 4)));
  m.edns.emplace();
  m.edns->udp_payload_size = 1232;

  std::vector<uint8_t> wire;
  REQUIRE(BuildMessage(m, 65535, &wire));
  Message full;
  REQUIRE(ParseMessage(wire, &full) == ParseError::kOk);
  REQUIRE_FALSE(full.header.tc);
  RequireSame(m, full);

  // Each A answer takes 16 bytes here (a pointer owner); 512 cannot hold 60 of them.
  REQUIRE(BuildMessage(m, 512, &wire));
  REQUIRE(wire.size() <= 512);
  Message cut;
  REQUIRE(ParseMessage(wire, &cut) == ParseError::kOk);
  REQUIRE(cut.header.tc);
  REQUIRE(cut.header.id == 7);
  REQUIRE(cut.edns.has_value());     // OPT is kept
  REQUIRE(cut.additionals.empty());  // dropped first
  REQUIRE(cut.answers.size() > 20);
  REQUIRE(cut.answers.size() < 60);
  for (size_t i = 0; i < cut.answers.size(); ++i)
    REQUIRE(cut.answers[i].rdata == m.answers[i].rdata);
  // As many as fit: one more would not.
  REQUIRE(wire.size() + 16 > 512);

  // Room for every answer but not the additional: only the additional goes.
  REQUIRE(BuildMessage(m, full.answers.size() * 16 + 39 + 11 + 16, &wire));
  REQUIRE(ParseMessage(wire, &cut) == ParseError::kOk);
  REQUIRE(cut.header.tc);
  REQUIRE(cut.answers.size() == 60);
  REQUIRE(cut.additionals.empty());

  // Header, question and OPT alone (12 + 27 + 11 = 50) must fit.
  REQUIRE(BuildMessage(m, 50, &wire));
  REQUIRE(ParseMessage(wire, &cut) == ParseError::kOk);
  REQUIRE(cut.answers.empty());
  REQUIRE(cut.header.tc);
  REQUIRE_FALSE(BuildMessage(m, 49, &wire));
}

TEST_CASE("BuildMessage refuses names that cannot be encoded") {
  Message m;
  m.questions.push_back({Name::FromLabels({"a", ""}), dns::kTypeA, dns::kClassIn});
  std::vector<uint8_t> wire;
  REQUIRE_FALSE(BuildMessage(m, 512, &wire));
  m.questions[0].name = Name::FromLabels({std::string(64, 'x')});
  REQUIRE_FALSE(BuildMessage(m, 512, &wire));
  m.questions[0].name = Name::FromLabels(
      {std::string(63, 'x'), std::string(63, 'x'), std::string(63, 'x'), std::string(62, 'x')});
  REQUIRE_FALSE(BuildMessage(m, 512, &wire));
}

TEST_CASE("Name parses presentation text and says what is wrong") {
  REQUIRE(N("Vault.Example.Internal.").ToString() == "Vault.Example.Internal");
  REQUIRE(N("vault.example.internal") == N("VAULT.EXAMPLE.INTERNAL."));
  REQUIRE(N(".").is_root());
  REQUIRE(N(".").ToString() == ".");
  REQUIRE(N(".").WireLength() == 1);
  REQUIRE(N("vault.example.internal").WireLength() == 24);
  REQUIRE(N("*.apps.example.internal").labels()[0] == "*");
  REQUIRE(N("a\\.b.c").labels() == std::vector<std::string>{"a.b", "c"});
  REQUIRE(N("a\\.b.c").ToString() == "a\\.b.c");
  REQUIRE(N("x\\032y\\000").labels()[0] == std::string("x y\0", 4));
  REQUIRE(N("x\\032y\\000").ToString() == "x\\032y\\000");
  REQUIRE(N(N("x\\032y\\\\.z").ToString()) == N("x\\032y\\\\.z"));

  auto error = [](const std::string& text) {
    auto n = Name::Parse(text);
    REQUIRE_FALSE(n.ok());
    return std::string(n.status().message());
  };
  REQUIRE_THAT(error(""), Catch::Contains("empty"));
  REQUIRE_THAT(error("a..b"), Catch::Contains("empty label"));
  REQUIRE_THAT(error(".a"), Catch::Contains("empty label"));
  REQUIRE_THAT(error(std::string(64, 'a') + ".b"), Catch::Contains("at most 63"));
  REQUIRE(Name::Parse(std::string(63, 'a') + ".b").ok());
  std::string long_name = std::string(63, 'a') + "." + std::string(63, 'a') + "." +
                          std::string(63, 'a') + "." + std::string(61, 'a');
  REQUIRE(Name::Parse(long_name).ok());
  REQUIRE_THAT(error(long_name + "a"), Catch::Contains("255"));
  REQUIRE_THAT(error("a*.b"), Catch::Contains("whole label"));
  REQUIRE_THAT(error("a b"), Catch::Contains("space"));
  REQUIRE_THAT(error("a\\25"), Catch::Contains("3 digits"));
  REQUIRE_THAT(error("a\\256"), Catch::Contains("255"));
  REQUIRE_THAT(error("a\\"), Catch::Contains("lone"));
}

TEST_CASE("Name subdomains ignore case and stop at label boundaries") {
  REQUIRE(N("Vault.Example.Internal").IsSubdomainOf(N("example.INTERNAL")));
  REQUIRE(N("example.internal").IsSubdomainOf(N("example.internal")));
  REQUIRE(N("example.internal").IsSubdomainOf(N(".")));
  REQUIRE_FALSE(N("badexample.internal").IsSubdomainOf(N("example.internal")));
  REQUIRE_FALSE(N("internal").IsSubdomainOf(N("example.internal")));
  REQUIRE(N("a.b.c").Parent() == N("b.c"));
  REQUIRE(N("b.c").Child("A").ToString() == "A.b.c");
  REQUIRE(N("a.b") != N("a.b.c"));
}

TEST_CASE("Reverse names map to IPv4 addresses and back") {
  const IpAddress a = IpAddress::V4(100, 96, 128, 20);
  REQUIRE(dns::ReverseName(a).ToString() == "20.128.96.100.in-addr.arpa");
  REQUIRE(dns::FromReverseName(N("20.128.96.100.IN-ADDR.ARPA")) == a);
  REQUIRE(dns::FromReverseName(N("0.0.0.0.in-addr.arpa")) == IpAddress::V4(0, 0, 0, 0));
  REQUIRE_FALSE(dns::FromReverseName(N("128.96.100.in-addr.arpa")).has_value());
  REQUIRE_FALSE(dns::FromReverseName(N("1.20.128.96.100.in-addr.arpa")).has_value());
  REQUIRE_FALSE(dns::FromReverseName(N("020.128.96.100.in-addr.arpa")).has_value());
  REQUIRE_FALSE(dns::FromReverseName(N("256.128.96.100.in-addr.arpa")).has_value());
  REQUIRE_FALSE(dns::FromReverseName(N("x.128.96.100.in-addr.arpa")).has_value());
  REQUIRE_FALSE(dns::FromReverseName(N("20.128.96.100.ip6.arpa")).has_value());
}

TEST_CASE("ParseErrorName gives stable counter names") {
  REQUIRE(std::string(dns::ParseErrorName(ParseError::kOk)) == "ok");
  REQUIRE(std::string(dns::ParseErrorName(ParseError::kShort)) == "short");
  REQUIRE(std::string(dns::ParseErrorName(ParseError::kTrailingBytes)) == "trailing_bytes");
  REQUIRE(std::string(dns::ParseErrorName(ParseError::kPointerLoop)) == "pointer_loop");
  REQUIRE(std::string(dns::ParseErrorName(ParseError::kTooManyRecords)) == "too_many_records");
}
