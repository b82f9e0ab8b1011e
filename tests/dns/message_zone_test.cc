// Tests for ZoneTable: setup errors, which names are private, and every kind of answer.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "base/encoding.h"
#include "dns/message.h"
#include "dns/name.h"
#include "dns/zone.h"

namespace {

using p2proxy::base::IpAddress;
using p2proxy::base::IpPrefix;
using p2proxy::dns::Message;
using p2proxy::dns::Name;
using p2proxy::dns::ParseError;
using p2proxy::dns::Record;
using p2proxy::dns::ZoneTable;
namespace dns = p2proxy::dns;

const IpAddress kVault = IpAddress::V4(100, 96, 128, 20);
const IpAddress kApps = IpAddress::V4(100, 96, 128, 30);
const IpAddress kDb = IpAddress::V4(100, 96, 128, 40);

Name N(const std::string& text) {
  auto n = Name::Parse(text);
  REQUIRE(n.ok());
  return *n;
}

std::vector<uint8_t> Hex(const std::string& dump) {
  auto bytes = p2proxy::base::HexDecode(absl::StrReplaceAll(dump, {{" ", ""}}));
  REQUIRE(bytes.ok());
  return *bytes;
}

ZoneTable MakeZone() {
  ZoneTable z(60);
  REQUIRE(z.AddZone("example.internal").ok());
  REQUIRE(z.AddRecord("vault.example.internal", kVault).ok());
  REQUIRE(z.AddRecord("*.apps.example.internal", kApps).ok());
  REQUIRE(z.AddRecord("db.apps.example.internal", kDb).ok());
  REQUIRE(z.AddReverse(*IpPrefix::Parse("100.64.0.0/10")).ok());
  return z;
}

Message Query(const std::string& name, uint16_t type, bool edns = true) {
  Message q;
  q.header.id = 0x4242;
  q.header.rd = true;
  q.questions.push_back({N(name), type, dns::kClassIn});
  if (edns) {
    q.edns.emplace();
    q.edns->udp_payload_size = 4096;
  }
  return q;
}

// Answer answers |query| through the wire: build, parse, answer, build, parse, so every answer
// is also checked to encode and decode.
Message Answer(const ZoneTable& z, const Message& query) {
  std::vector<uint8_t> wire;
  REQUIRE(dns::BuildMessage(query, 512, &wire));
  Message parsed;
  REQUIRE(dns::ParseMessage(wire, &parsed) == ParseError::kOk);
  Message response;
  REQUIRE(z.Answer(parsed, &response));
  REQUIRE(dns::BuildMessage(response, 1232, &wire));
  Message back;
  REQUIRE(dns::ParseMessage(wire, &back) == ParseError::kOk);
  REQUIRE_FALSE(back.header.tc);
  return back;
}

void RequireSoaOf(const Message& r, const std::string& zone) {
  REQUIRE(r.answers.empty());
  REQUIRE(r.authorities.size() == 1);
  const Record& soa = r.authorities[0];
  REQUIRE(soa.type == dns::kTypeSoa);
  REQUIRE(soa.name == N(zone));
  const Record want =
      dns::MakeSoa(N(zone), 60, N("ns." + zone), N("hostmaster." + zone), 1, 3600, 600, 86400, 60);
  REQUIRE(soa.rdata == want.rdata);
  REQUIRE(soa.ttl == 60);
}

}  // namespace

TEST_CASE("ZoneTable setup refuses records outside zones, duplicates and bad wildcards") {
  ZoneTable z;
  REQUIRE(z.AddZone("example.internal").ok());
  REQUIRE(z.AddZone("EXAMPLE.internal.").code() == absl::StatusCode::kAlreadyExists);
  REQUIRE_FALSE(z.AddZone(".").ok());
  REQUIRE_FALSE(z.AddZone("*.internal").ok());
  REQUIRE_FALSE(z.AddZone("a..b").ok());
  REQUIRE(z.AddRecord("vault.example.internal", kVault).ok());
  const absl::Status dup = z.AddRecord("Vault.Example.Internal.", kDb);
  REQUIRE(dup.code() == absl::StatusCode::kAlreadyExists);
  REQUIRE_THAT(std::string(dup.message()), Catch::Contains("100.96.128.20"));
  const absl::Status outside = z.AddRecord("vault.example.com", kVault);
  REQUIRE_FALSE(outside.ok());
  REQUIRE_THAT(std::string(outside.message()), Catch::Contains("not inside an added zone"));
  REQUIRE_FALSE(z.AddRecord("a.*.example.internal", kVault).ok());
  REQUIRE_FALSE(z.AddRecord("x*.example.internal", kVault).ok());
  REQUIRE_FALSE(z.AddRecord("*.internal", kVault).ok());  // the wildcard's parent is outside
  REQUIRE(z.AddRecord("*.example.internal", kApps).ok());
  REQUIRE_FALSE(z.AddRecord("*.example.internal", kApps).ok());
  REQUIRE_FALSE(z.AddRecord("v6.example.internal", *IpAddress::Parse("fd00::1")).ok());
  REQUIRE_FALSE(z.AddReverse(*IpPrefix::Parse("fd00::/8")).ok());
  REQUIRE(z.AddReverse(*IpPrefix::Parse("100.64.0.0/10")).ok());
  REQUIRE_FALSE(z.AddReverse(*IpPrefix::Parse("100.64.0.0/10")).ok());
  REQUIRE(z.num_records() == 2);
}

TEST_CASE("ZoneTable IsPrivate covers zones and reverse names inside the prefixes") {
  const ZoneTable z = MakeZone();
  REQUIRE(z.IsPrivate(N("example.internal")));
  REQUIRE(z.IsPrivate(N("Nope.EXAMPLE.internal")));
  REQUIRE_FALSE(z.IsPrivate(N("internal")));
  REQUIRE_FALSE(z.IsPrivate(N("badexample.internal")));
  REQUIRE_FALSE(z.IsPrivate(N("example.com")));
  REQUIRE(z.IsPrivate(N("20.128.96.100.in-addr.arpa")));
  REQUIRE(z.IsPrivate(N("128.96.100.in-addr.arpa")));  // a /24 inside 100.64.0.0/10
  REQUIRE(z.IsPrivate(N("64.100.in-addr.arpa")));      // a /16 inside it
  REQUIRE_FALSE(z.IsPrivate(N("100.in-addr.arpa")));   // a /8: larger than the prefix
  REQUIRE_FALSE(z.IsPrivate(N("in-addr.arpa")));
  REQUIRE_FALSE(z.IsPrivate(N("20.128.96.10.in-addr.arpa")));
  REQUIRE_FALSE(z.IsPrivate(N("1.0.0.128.100.in-addr.arpa")));
  REQUIRE_FALSE(z.IsPrivate(N("020.128.96.100.in-addr.arpa")));
}

TEST_CASE("ZoneTable answers a real dig query with the address and echoes EDNS") {
  const ZoneTable z = MakeZone();
  // `dig @127.0.0.1 -p 25353 vault.example.internal` (see message_test.cc).
  const std::vector<uint8_t> wire =
      Hex("d602 0120 0001 0000 0000 0001"
          "05 7661756c74 07 6578616d706c65 08 696e7465726e616c 00 0001 0001"
          "00 0029 04d0 00000000 000c 000a 0008 437aeeb2636859f4");
  Message query;
  REQUIRE(dns::ParseMessage(wire, &query) == ParseError::kOk);
  Message r;
  REQUIRE(z.Answer(query, &r));
  REQUIRE(r.header.id == 0xd602);
  REQUIRE(r.header.qr);
  REQUIRE(r.header.aa);
  REQUIRE(r.header.rd);
  REQUIRE(r.header.ra);
  REQUIRE_FALSE(r.header.ad);
  REQUIRE(r.header.rcode == dns::kRcodeNoError);
  REQUIRE(r.questions.size() == 1);
  REQUIRE(r.questions[0].name == N("vault.example.internal"));
  REQUIRE(r.answers.size() == 1);
  REQUIRE(r.answers[0].type == dns::kTypeA);
  REQUIRE(r.answers[0].ttl == 60);
  REQUIRE(r.answers[0].rdata == Hex("64608014"));
  REQUIRE(r.authorities.empty());
  REQUIRE(r.edns.has_value());
  REQUIRE(r.edns->udp_payload_size == 1232);
  REQUIRE(r.edns->options.empty());  // we do not do cookies, so we do not echo one
  std::vector<uint8_t> out;
  REQUIRE(dns::BuildMessage(r, r.edns->udp_payload_size, &out));
  Message parsed;
  REQUIRE(dns::ParseMessage(out, &parsed) == ParseError::kOk);
  REQUIRE(parsed.answers.size() == 1);
}

TEST_CASE("ZoneTable matches names ignoring case and echoes the client's spelling") {
  const ZoneTable z = MakeZone();
  const Message r = Answer(z, Query("VAULT.Example.internal.", dns::kTypeA));
  REQUIRE(r.answers.size() == 1);
  REQUIRE(r.answers[0].name.ToString() == "VAULT.Example.internal");
  REQUIRE(r.questions[0].name.ToString() == "VAULT.Example.internal");
  REQUIRE(r.answers[0].rdata == Hex("64608014"));
}

TEST_CASE("ZoneTable wildcards answer every name below them without an exact record") {
  const ZoneTable z = MakeZone();
  for (const char* name : {"x.apps.example.internal", "a.b.apps.example.internal",
                           "*.apps.example.internal", "X.APPS.example.internal"}) {
    INFO(name);
    const Message r = Answer(z, Query(name, dns::kTypeA));
    REQUIRE(r.header.rcode == dns::kRcodeNoError);
    REQUIRE(r.answers.size() == 1);
    REQUIRE(r.answers[0].name == N(name));
    REQUIRE(r.answers[0].rdata == Hex("6460801e"));
  }
  // The exact record wins over the wildcard.
  Message r = Answer(z, Query("db.apps.example.internal", dns::kTypeA));
  REQUIRE(r.answers.size() == 1);
  REQUIRE(r.answers[0].rdata == Hex("64608028"));
  // The wildcard's parent exists (it has names below it) but has no record: NODATA.
  r = Answer(z, Query("apps.example.internal", dns::kTypeA));
  REQUIRE(r.header.rcode == dns::kRcodeNoError);
  RequireSoaOf(r, "example.internal");
}

TEST_CASE("ZoneTable answers NODATA with the SOA for other types of an existing name") {
  const ZoneTable z = MakeZone();
  // `dig ... Vault.Example.Internal AAAA` (see message_test.cc).
  Message query;
  REQUIRE(dns::ParseMessage(Hex("3f61 0120 0001 0000 0000 0001"
                                "05 5661756c74 07 4578616d706c65 08 496e7465726e616c 00 001c 0001"
                                "00 0029 04d0 00000000 000c 000a 0008 c65d615a32e11ca6"),
                            &query) == ParseError::kOk);
  Message r;
  REQUIRE(z.Answer(query, &r));
  REQUIRE(r.header.id == 0x3f61);
  REQUIRE(r.header.aa);
  REQUIRE(r.header.rcode == dns::kRcodeNoError);
  RequireSoaOf(r, "example.internal");
  for (const uint16_t type : {dns::kTypeTxt, dns::kTypeMx, dns::kTypePtr, dns::kTypeNs}) {
    const Message other = Answer(z, Query("vault.example.internal", type));
    REQUIRE(other.header.rcode == dns::kRcodeNoError);
    RequireSoaOf(other, "example.internal");
  }
}

TEST_CASE("ZoneTable answers NXDOMAIN with the SOA for an absent name") {
  const ZoneTable z = MakeZone();
  for (const uint16_t type : {dns::kTypeA, dns::kTypeAaaa}) {
    const Message r = Answer(z, Query("nope.example.internal", type));
    REQUIRE(r.header.rcode == dns::kRcodeNxDomain);
    REQUIRE(r.header.aa);
    RequireSoaOf(r, "example.internal");
  }
  // Below an exact record, with no wildcard there: absent.
  REQUIRE(Answer(z, Query("x.vault.example.internal", dns::kTypeA)).header.rcode ==
          dns::kRcodeNxDomain);
}

TEST_CASE("ZoneTable answers the SOA and ANY at the apex") {
  const ZoneTable z = MakeZone();
  Message r = Answer(z, Query("example.internal", dns::kTypeSoa));
  REQUIRE(r.header.rcode == dns::kRcodeNoError);
  REQUIRE(r.answers.size() == 1);
  REQUIRE(r.answers[0].type == dns::kTypeSoa);
  REQUIRE(r.authorities.empty());
  r = Answer(z, Query("example.internal", dns::kTypeA));
  RequireSoaOf(r, "example.internal");
  r = Answer(z, Query("vault.example.internal", dns::kTypeAny));
  REQUIRE(r.answers.size() == 1);
  REQUIRE(r.answers[0].type == dns::kTypeA);
}

TEST_CASE("ZoneTable answers PTR for addresses in the reverse prefix") {
  const ZoneTable z = MakeZone();
  // `dig ... -x 100.96.128.20` (see message_test.cc).
  Message query;
  REQUIRE(dns::ParseMessage(
              Hex("3436 0120 0001 0000 0000 0001"
                  "02 3230 03 313238 02 3936 03 313030 07 696e2d61646472 04 61727061 00 000c 0001"
                  "00 0029 04d0 00000000 000c 000a 0008 e462e105c72942db"),
              &query) == ParseError::kOk);
  Message r;
  REQUIRE(z.Answer(query, &r));
  REQUIRE(r.header.rcode == dns::kRcodeNoError);
  REQUIRE(r.header.aa);
  REQUIRE(r.answers.size() == 1);
  REQUIRE(r.answers[0].type == dns::kTypePtr);
  REQUIRE(r.answers[0].name == N("20.128.96.100.in-addr.arpa"));
  REQUIRE(dns::ReadRdataName(r.answers[0].rdata) == N("vault.example.internal"));

  // The exact record for .40, not the wildcard's .30, which names no host.
  r = Answer(z, Query("40.128.96.100.in-addr.arpa", dns::kTypePtr));
  REQUIRE(dns::ReadRdataName(r.answers[0].rdata) == N("db.apps.example.internal"));
  r = Answer(z, Query("30.128.96.100.in-addr.arpa", dns::kTypePtr));
  REQUIRE(r.header.rcode == dns::kRcodeNxDomain);
  RequireSoaOf(r, "100.in-addr.arpa");
  // An address with a record, asked for another type: NODATA.
  r = Answer(z, Query("20.128.96.100.in-addr.arpa", dns::kTypeA));
  REQUIRE(r.header.rcode == dns::kRcodeNoError);
  RequireSoaOf(r, "100.in-addr.arpa");
  // A partial name with records below it: NODATA; one without: NXDOMAIN.
  r = Answer(z, Query("128.96.100.in-addr.arpa", dns::kTypePtr));
  REQUIRE(r.header.rcode == dns::kRcodeNoError);
  RequireSoaOf(r, "100.in-addr.arpa");
  r = Answer(z, Query("7.96.100.in-addr.arpa", dns::kTypePtr));
  REQUIRE(r.header.rcode == dns::kRcodeNxDomain);
}

TEST_CASE("ZoneTable leaves names that are not private to the caller") {
  const ZoneTable z = MakeZone();
  Message response;
  response.header.id = 99;
  REQUIRE_FALSE(z.Answer(Query("example.com", dns::kTypeA), &response));
  REQUIRE_FALSE(z.Answer(Query("20.128.96.10.in-addr.arpa", dns::kTypePtr), &response));
  Message empty;
  REQUIRE_FALSE(z.Answer(empty, &response));
  REQUIRE(response.header.id == 99);
  REQUIRE(response.questions.empty());
}

TEST_CASE("ZoneTable answers NOTIMP for other opcodes and FORMERR for two questions") {
  const ZoneTable z = MakeZone();
  Message q = Query("vault.example.internal", dns::kTypeA);
  q.header.opcode = 2;  // STATUS
  Message r = Answer(z, q);
  REQUIRE(r.header.rcode == dns::kRcodeNotImp);
  REQUIRE(r.header.opcode == 2);
  REQUIRE(r.header.id == 0x4242);
  REQUIRE(r.header.qr);
  REQUIRE(r.answers.empty());

  q = Query("vault.example.internal", dns::kTypeA);
  q.questions.push_back({N("db.apps.example.internal"), dns::kTypeA, dns::kClassIn});
  r = Answer(z, q);
  REQUIRE(r.header.rcode == dns::kRcodeFormErr);
  REQUIRE(r.answers.empty());
  REQUIRE(r.edns.has_value());

  q = Query("vault.example.internal", dns::kTypeA);
  q.questions[0].klass = 3;  // CHAOS
  REQUIRE(Answer(z, q).header.rcode == dns::kRcodeRefused);
}

TEST_CASE("ZoneTable puts OPT in the response only if the query had it") {
  const ZoneTable z = MakeZone();
  Message r = Answer(z, Query("vault.example.internal", dns::kTypeA, /*edns=*/false));
  REQUIRE_FALSE(r.edns.has_value());
  REQUIRE(r.answers.size() == 1);

  Message q = Query("vault.example.internal", dns::kTypeA);
  q.edns->dnssec_ok = true;
  r = Answer(z, q);
  REQUIRE(r.edns.has_value());
  REQUIRE(r.edns->udp_payload_size == 1232);
  REQUIRE(r.edns->dnssec_ok);
  REQUIRE(r.edns->version == 0);

  q.edns->version = 1;
  r = Answer(z, q);
  REQUIRE(r.edns->extended_rcode == dns::kExtRcodeBadVers);
  REQUIRE(r.edns->version == 0);
  REQUIRE(r.answers.empty());
}
