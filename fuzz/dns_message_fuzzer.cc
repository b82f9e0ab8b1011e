// dns_message_fuzzer: ParseMessage on arbitrary bytes. Whatever parses must build again, and
// the built bytes must parse to the same message (or, if the rebuilt message is too large, a
// TC-flagged prefix of it); a query for a small fixed zone must get an answer that builds and
// parses. AnswerFast runs on every input: whatever it answers must be a message the general
// path answers locally, with exactly the bytes the general path builds for UDP.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

#include "base/bytes.h"
#include "base/ip_prefix.h"
#include "dns/fast_path.h"
#include "dns/message.h"
#include "dns/name.h"
#include "dns/zone.h"

namespace {

using p2proxy::dns::Message;
using p2proxy::dns::ParseError;
using p2proxy::dns::Record;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool SameName(const p2proxy::dns::Name& a, const p2proxy::dns::Name& b) {
  return a == b && a.labels() == b.labels();
}

bool SameRecord(const Record& a, const Record& b) {
  return SameName(a.name, b.name) && a.type == b.type && a.klass == b.klass && a.ttl == b.ttl &&
         a.rdata == b.rdata;
}

// CheckRoundTrip: |b| is |a| rebuilt and parsed; records may only be missing from the end
// (answers, then authorities, then additionals in order), and then TC is set.
void CheckRoundTrip(const Message& a, const Message& b) {
  const auto& ha = a.header;
  const auto& hb = b.header;
  Check(ha.id == hb.id && ha.qr == hb.qr && ha.opcode == hb.opcode && ha.aa == hb.aa &&
        ha.rd == hb.rd && ha.ra == hb.ra && ha.ad == hb.ad && ha.cd == hb.cd &&
        ha.rcode == hb.rcode);
  Check(a.questions.size() == b.questions.size());
  for (size_t i = 0; i < a.questions.size(); ++i) {
    Check(SameName(a.questions[i].name, b.questions[i].name));
    Check(a.questions[i].type == b.questions[i].type);
    Check(a.questions[i].klass == b.questions[i].klass);
  }
  std::vector<const Record*> ra, rb;
  for (const auto* s : {&a.answers, &a.authorities, &a.additionals}) {
    for (const Record& r : *s) ra.push_back(&r);
  }
  for (const auto* s : {&b.answers, &b.authorities, &b.additionals}) {
    for (const Record& r : *s) rb.push_back(&r);
  }
  Check(rb.size() <= ra.size());
  for (size_t i = 0; i < rb.size(); ++i) Check(SameRecord(*ra[i], *rb[i]));
  // The sections are a prefix in order: a section can be short only if all after it are empty.
  Check(b.answers.size() <= a.answers.size());
  if (b.answers.size() < a.answers.size()) Check(b.authorities.empty() && b.additionals.empty());
  Check(b.authorities.size() <= a.authorities.size());
  if (b.authorities.size() < a.authorities.size()) Check(b.additionals.empty());
  const bool dropped = rb.size() < ra.size();
  Check(hb.tc == (ha.tc || dropped));
  Check(a.edns.has_value() == b.edns.has_value());
  if (a.edns) {
    Check(a.edns->udp_payload_size == b.edns->udp_payload_size);
    Check(a.edns->extended_rcode == b.edns->extended_rcode);
    Check(a.edns->version == b.edns->version);
    Check(a.edns->dnssec_ok == b.edns->dnssec_ok);
    Check(a.edns->options == b.edns->options);
  }
}

// BuildOrTooLarge builds |m| into |out| within 65535 bytes; if that fails, it checks that the
// failure is legitimate: the header, questions and OPT alone exceed 65535 bytes (compression
// can expand a message whose pointers aimed into non-name bytes).
bool BuildOrTooLarge(const Message& m, std::vector<uint8_t>* out) {
  if (p2proxy::dns::BuildMessage(m, 65535, out)) {
    Check(out->size() <= 65535);
    return true;
  }
  Message bare;
  bare.header = m.header;
  bare.questions = m.questions;
  bare.edns = m.edns;
  std::vector<uint8_t> big;
  Check(p2proxy::dns::BuildMessage(bare, std::numeric_limits<size_t>::max(), &big));
  Check(big.size() > 65535);
  return false;
}

const p2proxy::dns::ZoneTable& Zone() {
  static const p2proxy::dns::ZoneTable* const kZone = [] {
    auto* z = new p2proxy::dns::ZoneTable(60);
    using p2proxy::base::IpAddress;
    Check(z->AddZone("example.internal").ok());
    // In mixed case, so that compressing its SOA names against the question is case-sensitive.
    Check(z->AddZone("Corp.Example.").ok());
    Check(z->AddRecord("Wiki.Corp.Example", IpAddress::V4(100, 96, 128, 50)).ok());
    Check(z->AddRecord("vault.example.internal", IpAddress::V4(100, 96, 128, 20)).ok());
    Check(z->AddRecord("*.apps.example.internal", IpAddress::V4(100, 96, 128, 30)).ok());
    Check(z->AddRecord("db.apps.example.internal", IpAddress::V4(100, 96, 128, 40)).ok());
    Check(z->AddReverse(*p2proxy::base::IpPrefix::Parse("100.64.0.0/10")).ok());
    return z;
  }();
  return *kZone;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const p2proxy::base::ByteSpan wire(data, size);
  uint8_t fast[p2proxy::dns::kMaxFastAnswerLen];
  const size_t fast_len = p2proxy::dns::AnswerFast(Zone(), wire, absl::MakeSpan(fast));
  p2proxy::dns::Header peeked;
  const bool has_header = p2proxy::dns::PeekHeader(wire, &peeked);
  Message msg;
  if (p2proxy::dns::ParseMessage(wire, &msg) != ParseError::kOk) {
    Check(fast_len == 0);
    return 0;
  }
  Check(has_header && peeked.id == msg.header.id);
  if (fast_len > 0) {
    // What the resolver's general path sends for it over UDP.
    Check(!msg.header.qr);
    Message general;
    Check(Zone().Answer(msg, &general));
    std::vector<uint8_t> general_wire;
    const size_t limit = p2proxy::dns::UdpAnswerLimit(
        msg.edns.has_value(), msg.edns ? msg.edns->udp_payload_size : 0);
    Check(p2proxy::dns::BuildMessage(general, limit, &general_wire));
    Check(general_wire.size() == fast_len &&
          std::equal(general_wire.begin(), general_wire.end(), fast));
  }

  std::vector<uint8_t> out;
  if (BuildOrTooLarge(msg, &out)) {
    Message again;
    Check(p2proxy::dns::ParseMessage(out, &again) == ParseError::kOk);
    CheckRoundTrip(msg, again);
    // Building is deterministic: the reparsed message builds to the same bytes.
    std::vector<uint8_t> out2;
    Check(p2proxy::dns::BuildMessage(again, 65535, &out2) && out2 == out);
  }

  Message response;
  if (Zone().Answer(msg, &response)) {
    Check(response.header.id == msg.header.id && response.header.qr);
    std::vector<uint8_t> answer_wire;
    if (BuildOrTooLarge(response, &answer_wire)) {
      Message parsed;
      Check(p2proxy::dns::ParseMessage(answer_wire, &parsed) == ParseError::kOk);
      CheckRoundTrip(response, parsed);
    }
  }
  return 0;
}
