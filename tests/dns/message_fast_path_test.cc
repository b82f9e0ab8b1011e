// Tests for AnswerFast: for the queries it takes, its bytes are the general path's (ParseMessage,
// ZoneTable::Answer, BuildMessage within the UDP limit); everything unusual falls back.
#include "dns/fast_path.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_replace.h"
#include "base/encoding.h"
#include "dns/message.h"
#include "dns/name.h"
#include "dns/name_key.h"
#include "dns/zone.h"

namespace {

using p2proxy::base::IpAddress;
using p2proxy::base::IpPrefix;
using p2proxy::dns::Message;
using p2proxy::dns::Name;
using p2proxy::dns::ParseError;
using p2proxy::dns::ZoneTable;
namespace dns = p2proxy::dns;

using Bytes = std::vector<uint8_t>;

Bytes Hex(const std::string& dump) {
  auto bytes = p2proxy::base::HexDecode(absl::StrReplaceAll(dump, {{" ", ""}}));
  REQUIRE(bytes.ok());
  return *bytes;
}

Name N(const std::string& text) {
  auto n = Name::Parse(text);
  REQUIRE(n.ok());
  return *n;
}

// MakeZone configures the zone in mixed case and with trailing dots, as a config may: the
// answers' SOA names keep that spelling, so compressing them against the question is
// case-sensitive and exercised both ways.
ZoneTable MakeZone() {
  ZoneTable z(60);
  REQUIRE(z.AddZone("example.internal.").ok());
  REQUIRE(z.AddZone("Corp.Example.").ok());
  REQUIRE(z.AddRecord("vault.example.internal.", IpAddress::V4(100, 96, 128, 20)).ok());
  REQUIRE(z.AddRecord("*.apps.example.internal", IpAddress::V4(100, 96, 128, 30)).ok());
  REQUIRE(z.AddRecord("db.apps.example.internal", IpAddress::V4(100, 96, 128, 40)).ok());
  REQUIRE(z.AddRecord("corp.example", IpAddress::V4(100, 96, 128, 50)).ok());
  REQUIRE(z.AddRecord("Wiki.Corp.Example", IpAddress::V4(100, 96, 128, 51)).ok());
  REQUIRE(z.AddReverse(*IpPrefix::Parse("100.64.0.0/10")).ok());
  return z;
}

Bytes Query(const std::string& name, uint16_t type, bool edns, uint16_t payload = 4096,
            bool dnssec_ok = false) {
  Message q;
  q.header.id = 0x4242;
  q.header.rd = true;
  q.header.cd = dnssec_ok;
  q.questions.push_back({N(name), type, dns::kClassIn});
  if (edns) {
    q.edns.emplace();
    q.edns->udp_payload_size = payload;
    q.edns->dnssec_ok = dnssec_ok;
  }
  Bytes wire;
  REQUIRE(dns::BuildMessage(q, 65535, &wire));
  return wire;
}

// General is what the resolver's general path sends over UDP for a private name: empty if the
// zone does not answer it locally or nothing can be built.
Bytes General(const ZoneTable& z, const Bytes& wire) {
  Message query;
  if (dns::ParseMessage(wire, &query) != ParseError::kOk || query.header.qr) return {};
  Message response;
  if (!z.Answer(query, &response)) return {};
  const size_t limit = dns::UdpAnswerLimit(query.edns.has_value(),
                                           query.edns ? query.edns->udp_payload_size : 0);
  Bytes out;
  if (!dns::BuildMessage(response, limit, &out)) return {};
  return out;
}

Bytes Fast(const ZoneTable& z, const Bytes& wire) {
  Bytes out(dns::kMaxFastAnswerLen);
  const size_t len = dns::AnswerFast(z, wire, absl::MakeSpan(out));
  out.resize(len);
  return out;
}

// RequireSame: the fast path takes |wire| and gives the general path's bytes.
void RequireSame(const ZoneTable& z, const Bytes& wire) {
  const Bytes general = General(z, wire);
  REQUIRE_FALSE(general.empty());
  REQUIRE(Fast(z, wire) == general);
}

// RequireFallback: the fast path leaves |wire| to the general path.
void RequireFallback(const ZoneTable& z, const Bytes& wire) { REQUIRE(Fast(z, wire).empty()); }

}  // namespace

TEST_CASE("AnswerFast gives the general path's bytes for A, AAAA, PTR, NXDOMAIN, SOA and ANY") {
  const ZoneTable z = MakeZone();
  const char* const names[] = {
      "vault.example.internal",      "VAULT.Example.INTERNAL", "x.apps.example.internal",
      "a.b.apps.example.internal",   "*.apps.example.internal", "db.apps.example.internal",
      "apps.example.internal",       "missing.example.internal", "x.vault.example.internal",
      "example.internal",            "Example.Internal",        "corp.example",
      "Corp.Example",                "wiki.corp.example",       "nope.CORP.example",
      "20.128.96.100.in-addr.arpa",  "20.128.96.100.IN-ADDR.ARPA",
      "40.128.96.100.in-addr.arpa",  "30.128.96.100.in-addr.arpa",
      "128.96.100.in-addr.arpa",     "7.96.100.in-addr.arpa",   "64.100.in-addr.arpa"};
  const uint16_t types[] = {dns::kTypeA,   dns::kTypeAaaa, dns::kTypePtr, dns::kTypeSoa,
                            dns::kTypeAny, dns::kTypeTxt,  dns::kTypeMx};
  for (const char* name : names) {
    for (const uint16_t type : types) {
      INFO(name << " type " << type);
      RequireSame(z, Query(name, type, /*edns=*/false));
      RequireSame(z, Query(name, type, /*edns=*/true));
      RequireSame(z, Query(name, type, /*edns=*/true, 512, /*dnssec_ok=*/true));
    }
  }
}

TEST_CASE("AnswerFast compresses as the builder does: pointers to the question, case kept") {
  const ZoneTable z = MakeZone();
  // An A answer's owner is a pointer to the question at offset 12.
  Bytes a = Fast(z, Query("Vault.Example.Internal", dns::kTypeA, false));
  REQUIRE(a.size() == 12 + 28 + 16);
  REQUIRE(Bytes(a.end() - 16, a.end()) == Hex("c00c 0001 0001 0000003c 0004 64608014"));
  // "Corp.Example" is configured so: the SOA owner of a query in that spelling points at the
  // question, one in another spelling is written out in full.
  const Bytes same = Fast(z, Query("nope.Corp.Example", dns::kTypeA, false));
  const Bytes other = Fast(z, Query("nope.corp.example", dns::kTypeA, false));
  REQUIRE_FALSE(same.empty());
  REQUIRE(other.size() > same.size());
  REQUIRE(Bytes(same.begin() + 35, same.begin() + 37) == Hex("c011"));
}

TEST_CASE("AnswerFast answers real dig queries, cookie option and all") {
  const ZoneTable z = MakeZone();
  // From message_test.cc: `dig vault.example.internal`, `... Vault.Example.Internal AAAA`,
  // `... -x 100.96.128.20` (DiG 9.18, with an 8-byte client cookie), and +noedns.
  for (const char* dump :
       {"d602 0120 0001 0000 0000 0001 05 7661756c74 07 6578616d706c65 08 696e7465726e616c 00"
        " 0001 0001 00 0029 04d0 00000000 000c 000a 0008 437aeeb2636859f4",
        "3f61 0120 0001 0000 0000 0001 05 5661756c74 07 4578616d706c65 08 496e7465726e616c 00"
        " 001c 0001 00 0029 04d0 00000000 000c 000a 0008 c65d615a32e11ca6",
        "3436 0120 0001 0000 0000 0001 02 3230 03 313238 02 3936 03 313030 07 696e2d61646472"
        " 04 61727061 00 000c 0001 00 0029 04d0 00000000 000c 000a 0008 e462e105c72942db",
        "e3ce 0120 0001 0000 0000 0000 05 7661756c74 07 6578616d706c65 08 696e7465726e616c 00"
        " 0001 0001"}) {
    INFO(dump);
    RequireSame(z, Hex(dump));
  }
}

TEST_CASE("AnswerFast honours the client's payload size within 512..1232") {
  const ZoneTable z = MakeZone();
  for (const uint16_t payload : {0, 100, 511, 512, 513, 1232, 1233, 4096, 65535}) {
    INFO(payload);
    RequireSame(z, Query("vault.example.internal", dns::kTypeA, true, payload));
  }
}

TEST_CASE("AnswerFast leaves unusual queries to the general path") {
  const ZoneTable z = MakeZone();
  const Bytes plain = Query("vault.example.internal", dns::kTypeA, false);
  const Bytes edns = Query("vault.example.internal", dns::kTypeA, true);
  RequireSame(z, plain);
  RequireSame(z, edns);

  // Not a query: a response, another opcode.
  Bytes b = plain;
  b[2] |= 0x80;
  RequireFallback(z, b);
  b = plain;
  b[2] |= 0x10;  // opcode 2, STATUS
  RequireFallback(z, b);
  // Counts: no question, two questions, an answer or authority record.
  for (const int at : {5, 7, 9}) {
    b = plain;
    b[at] = at == 5 ? 0 : 1;
    RequireFallback(z, b);
  }
  Message two;
  REQUIRE(dns::ParseMessage(plain, &two) == ParseError::kOk);
  two.questions.push_back(two.questions[0]);
  REQUIRE(dns::BuildMessage(two, 512, &b));
  RequireFallback(z, b);
  // Class CH: REFUSED by the general path. Class ANY is fine.
  b = plain;
  b[b.size() - 1] = 3;
  RequireFallback(z, b);
  b[b.size() - 1] = 0xff;
  b[b.size() - 2] = 0x00;
  RequireSame(z, b);
  // EDNS version 1 (BADVERS), a malformed option, an OPT not at the root, a second
  // additional record that is not OPT.
  b = edns;
  b[b.size() - 5] = 1;
  RequireFallback(z, b);
  b = edns;
  b[b.size() - 1] = 5;  // rdlength 5: one option, code 10 (a cookie) with 1 byte
  b.insert(b.end(), {0x00, 0x0a, 0x00, 0x01, 0x42});
  RequireSame(z, b);
  b.back() = 0x43;
  b[b.size() - 2] = 0x02;  // the option now claims 2 bytes, of which only 1 is there
  RequireFallback(z, b);
  b = edns;
  b[b.size() - 11] = 1;  // the owner: a label instead of the root
  RequireFallback(z, b);
  Message ar;
  REQUIRE(dns::ParseMessage(plain, &ar) == ParseError::kOk);
  ar.additionals.push_back(dns::MakeA(N("x.example"), 1, IpAddress::V4(1, 2, 3, 4)));
  REQUIRE(dns::BuildMessage(ar, 512, &b));
  RequireFallback(z, b);
  // Trailing bytes, a question cut short, a header alone, a runt.
  b = plain;
  b.push_back(0);
  RequireFallback(z, b);
  b = plain;
  b.resize(b.size() - 1);
  RequireFallback(z, b);
  b.resize(12);
  RequireFallback(z, b);
  b.resize(5);
  RequireFallback(z, b);
  // A compressed question name (a pointer into the header: FORMERR on the general path).
  b = Hex("0001 0100 0001 0000 0000 0000 c00c 0001 0001");
  RequireFallback(z, b);
  // Names that are not private go to the cache or the upstream.
  RequireFallback(z, Query("example.com", dns::kTypeA, true));
  RequireFallback(z, Query("internal", dns::kTypeA, true));
  RequireFallback(z, Query("20.128.96.10.in-addr.arpa", dns::kTypePtr, true));
  RequireFallback(z, Query("020.128.96.100.in-addr.arpa", dns::kTypePtr, true));
  RequireFallback(z, Query("in-addr.arpa", dns::kTypePtr, true));
  RequireFallback(z, Query("100.in-addr.arpa", dns::kTypeSoa, true));  // a /8: larger than the /10
}

TEST_CASE("AnswerFast leaves answers that need truncation to the general path") {
  ZoneTable z(60);
  // A long zone in lower case and a long question in upper case: nothing compresses, and the
  // NXDOMAIN with its SOA exceeds 512 bytes, so the general path truncates it.
  std::string zone;
  for (int i = 0; i < 3; ++i) zone += std::string(63, 'z') + ".";
  zone += "internal";
  REQUIRE(z.AddZone(zone).ok());
  const std::string upper = std::string(52, 'Q') + "." + absl::AsciiStrToUpper(zone);
  const Bytes plain = Query(upper, dns::kTypeA, false);
  Message general;
  REQUIRE(dns::ParseMessage(General(z, plain), &general) == ParseError::kOk);
  REQUIRE(general.header.tc);
  RequireFallback(z, plain);
  // With EDNS it fits, and the fast path takes it.
  RequireSame(z, Query(upper, dns::kTypeA, true));
}

TEST_CASE("AnswerFast falls back rather than track a question with very many labels") {
  ZoneTable z(60);
  REQUIRE(z.AddZone("internal").ok());
  std::string name;
  for (int i = 0; i < 100; ++i) name += "a.";
  name += "internal";
  const Bytes q = Query(name, dns::kTypeA, true);
  REQUIRE_FALSE(General(z, q).empty());
  RequireFallback(z, q);
}

TEST_CASE("NameKey lower-cases wire names and gives their ancestors as suffixes") {
  dns::NameKey k;
  REQUIRE(k.Set(N("Vault.Example.INTERNAL")));
  REQUIRE(k.key() == absl::string_view("\x05vault\x07" "example\x08internal\x00", 24));
  REQUIRE(k.num_labels() == 3);
  REQUIRE(k.Suffix(1) == absl::string_view("\x07" "example\x08internal\x00", 18));
  REQUIRE(k.Suffix(3) == absl::string_view("\x00", 1));
  REQUIRE(k.Label(0) == "vault");
  REQUIRE(k.IsSubdomainOf(dns::NameKey::Of(N("example.internal")), 2));
  REQUIRE_FALSE(k.IsSubdomainOf(dns::NameKey::Of(N("ample.internal")), 2));
  // What the wire cannot carry has no key.
  REQUIRE_FALSE(k.Set(Name::FromLabels({std::string(64, 'a')})));
  REQUIRE_FALSE(k.Set(Name::FromLabels({"a", ""})));
  REQUIRE(k.num_labels() == 0);
  std::vector<std::string> labels(128, "a");
  REQUIRE_FALSE(k.Set(Name::FromLabels(labels)));
  // Read takes plain labels only.
  const Bytes plain = Hex("01 41 02 6263 00");
  p2proxy::base::ByteReader r(plain);
  REQUIRE(k.Read(&r));
  REQUIRE(r.empty());
  REQUIRE(k.key() == absl::string_view("\x01" "a\x02" "bc\x00", 6));
  for (const char* dump : {"c00c", "4100", "8100", "0141", ""}) {
    const Bytes b = Hex(dump);
    p2proxy::base::ByteReader bad(b);
    REQUIRE_FALSE(k.Read(&bad));
  }
}

// A bug fixed: a name whose write ran out of room was still remembered for compression, and
// later names were compared against bytes never written (past the buffer, under ASan).
TEST_CASE("AnswerFast into a buffer too small fails cleanly at every size") {
  const ZoneTable z = MakeZone();
  for (const char* name : {"nope.example.internal", "20.128.96.100.in-addr.arpa", "corp.example"}) {
    const Bytes q = Query(name, dns::kTypeAny, true);
    const Bytes want = General(z, q);
    REQUIRE_FALSE(want.empty());
    for (size_t cap = 0; cap <= want.size(); ++cap) {
      INFO(name << " cap " << cap);
      Bytes out(cap);
      const size_t len = dns::AnswerFast(z, q, absl::MakeSpan(out));
      if (cap < want.size()) {
        REQUIRE(len == 0);
      } else {
        REQUIRE(len == want.size());
        REQUIRE(out == want);
      }
    }
  }
}
