// message.cc: the DNS message parser (strict, for untrusted bytes) and builder (compression,
// truncation). The name rules follow c-ares' ares_dns_name.c in spirit.
#include "dns/message.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace p2proxy::dns {

namespace {

using base::ByteReader;
using base::ByteSpan;

// A message is at most 65535 bytes on every transport, but a parser of untrusted input must not
// rely on that: every bound below holds for any |wire| size.

// kMaxIndirections caps the pointers followed in one name. With pointers strictly backwards a
// loop is impossible already; the cap bounds the work per name (a legitimate message never
// chains more than a few), as c-ares and BIND do.
constexpr int kMaxIndirections = 16;
// The smallest question is the root name and type and class; the smallest record is the root
// name, type, class, TTL and rdlength. Counts are checked against these before anything is
// allocated, so "ancount 65535" in a 40-byte message is refused without reserving 65535 records.
constexpr size_t kMinQuestionLen = 1 + 4;
constexpr size_t kMinRecordLen = 1 + 10;
// Compression pointers carry a 14-bit offset.
constexpr size_t kMaxPointerTarget = 0x3fff;

// RdataLayout describes the rdata of the types whose rdata holds names: |prefix_len| fixed
// bytes, |num_names| names, then |suffix_len| fixed bytes. These are the names that are
// decompressed on parse (so rdata is usable outside its message) and may be compressed on build.
struct RdataLayout {
  size_t prefix_len = 0;
  int num_names = 0;
  size_t suffix_len = 0;
  bool compress = false;  // whether a builder may compress these names (RFC 3597 4)
};

std::optional<RdataLayout> LayoutOf(uint16_t type) {
  switch (type) {
    case kTypeNs:
    case kTypeCname:
    case kTypePtr:
      return RdataLayout{0, 1, 0, true};
    case kTypeMx:
      return RdataLayout{2, 1, 0, true};  // preference, exchange
    case kTypeSoa:
      return RdataLayout{0, 2, 20, true};  // mname, rname, five 32-bit fields
    case kTypeSrv:
      // priority, weight, port, target. RFC 2782 forbids compressing the target, but servers
      // do it anyway, so it is decompressed on parse and written uncompressed.
      return RdataLayout{6, 1, 0, false};
    default:
      return std::nullopt;
  }
}

void AppendName(const Name& name, std::vector<uint8_t>* out) {
  for (const std::string& l : name.labels()) {
    out->push_back(static_cast<uint8_t>(l.size()));
    out->insert(out->end(), l.begin(), l.end());
  }
  out->push_back(0);
}

// ReadPlainName reads an uncompressed name (as Record::rdata keeps them): plain labels only.
bool ReadPlainName(ByteReader* r, Name* out) {
  std::vector<std::string> labels;
  size_t wire_len = 1;
  for (;;) {
    uint8_t len;
    if (!r->ReadU8(&len)) return false;
    if (len == 0) break;
    if (len > kMaxLabelLen) return false;  // a pointer or a reserved label type
    ByteSpan label;
    if (!r->ReadBytes(len, &label)) return false;
    wire_len += 1 + len;
    if (wire_len > kMaxNameWireLen) return false;
    labels.emplace_back(label.begin(), label.end());
  }
  *out = Name::FromLabels(std::move(labels));
  return true;
}

uint16_t EncodeFlags(const Header& h, bool tc) {
  return static_cast<uint16_t>((h.qr ? 0x8000 : 0) | ((h.opcode & 0xf) << 11) |
                               (h.aa ? 0x0400 : 0) | (tc ? 0x0200 : 0) | (h.rd ? 0x0100 : 0) |
                               (h.ra ? 0x0080 : 0) | (h.ad ? 0x0020 : 0) | (h.cd ? 0x0010 : 0) |
                               (h.rcode & 0xf));
}

void DecodeFlags(uint16_t f, Header* h) {
  h->qr = f & 0x8000;
  h->opcode = (f >> 11) & 0xf;
  h->aa = f & 0x0400;
  h->tc = f & 0x0200;
  h->rd = f & 0x0100;
  h->ra = f & 0x0080;
  // 0x0040 is Z: must be zero, ignored on receipt (RFC 1035 4.1.1).
  h->ad = f & 0x0020;
  h->cd = f & 0x0010;
  h->rcode = f & 0xf;
}

// Parser reads one message. Readers are views into |wire_|; a reader's absolute offset (needed
// for compression pointers) is where its unread bytes start.
class Parser {
 public:
  explicit Parser(ByteSpan wire) : wire_(wire) {}

  ParseError Parse(Message* out) {
    *out = Message();
    ByteReader r(wire_);
    uint16_t flags, qdcount, ancount, nscount, arcount;
    if (!r.ReadU16(&out->header.id) || !r.ReadU16(&flags) || !r.ReadU16(&qdcount) ||
        !r.ReadU16(&ancount) || !r.ReadU16(&nscount) || !r.ReadU16(&arcount)) {
      return ParseError::kShort;
    }
    DecodeFlags(flags, &out->header);
    const size_t num_records = size_t{ancount} + nscount + arcount;
    if (qdcount * kMinQuestionLen + num_records * kMinRecordLen > r.remaining()) {
      return ParseError::kTooManyRecords;
    }
    out->questions.resize(qdcount);
    for (Question& q : out->questions) {
      if (ParseError e = ReadName(&r, &q.name); e != ParseError::kOk) return e;
      if (!r.ReadU16(&q.type) || !r.ReadU16(&q.klass)) return ParseError::kShort;
    }
    const std::pair<std::vector<Record>*, uint16_t> sections[] = {
        {&out->answers, ancount}, {&out->authorities, nscount}, {&out->additionals, arcount}};
    for (const auto& [records, count] : sections) {
      records->reserve(count);
      for (uint16_t i = 0; i < count; ++i) {
        Record rec;
        if (ParseError e = ReadRecord(&r, &rec); e != ParseError::kOk) return e;
        if (rec.type != kTypeOpt) {
          records->push_back(std::move(rec));
          continue;
        }
        // RFC 6891 6.1.1: one OPT at most, in the additional section, owned by the root. A
        // second OPT or one elsewhere is FORMERR there; accepting it would let two parts of a
        // resolver disagree about which payload size or flags apply.
        if (records != &out->additionals || out->edns || !rec.name.is_root()) {
          return ParseError::kBadOpt;
        }
        if (ParseError e = ReadOpt(rec, &out->edns.emplace()); e != ParseError::kOk) return e;
      }
    }
    // A message is exactly its records: trailing bytes are either an attack on a parser that
    // stops early or a framing bug, and there is no extension that puts data there.
    if (!r.empty()) return ParseError::kTrailingBytes;
    return ParseError::kOk;
  }

 private:
  size_t OffsetOf(const ByteReader& r) const {
    return static_cast<size_t>(r.rest().data() - wire_.data());
  }

  // ReadName reads a possibly compressed name from |r| (RFC 1035 4.1.4), leaving |r| after the
  // name's bytes in place (after the first pointer, if any).
  ParseError ReadName(ByteReader* r, Name* out) {
    std::vector<std::string> labels;
    size_t wire_len = 1;  // the root octet
    ByteReader cur = *r;
    // seq_start is where the label sequence being read began: a pointer must go strictly before
    // it. RFC 1035 says a pointer replaces labels with "a prior occurrence", and only backwards
    // pointers make loops impossible: each jump lands strictly earlier, so the walk ends.
    size_t seq_start = OffsetOf(cur);
    int jumps = 0;
    bool jumped = false;
    for (;;) {
      uint8_t len;
      if (!cur.ReadU8(&len)) return ParseError::kShort;
      const uint8_t kind = len & 0xc0;
      if (kind == 0xc0) {
        uint8_t low;
        if (!cur.ReadU8(&low)) return ParseError::kShort;
        const size_t pointer_at = OffsetOf(cur) - 2;
        const size_t target = (size_t{len & 0x3fu} << 8) | low;
        // Forwards (or past the end): not a prior occurrence. Into the header: no name starts
        // there, so such a pointer only serves to make header bytes read as labels.
        if (target > pointer_at || target < kHeaderLen) return ParseError::kBadPointer;
        // Back into the name being read (including the pointer itself): a loop.
        if (target >= seq_start) return ParseError::kPointerLoop;
        if (++jumps > kMaxIndirections) return ParseError::kPointerLoop;
        if (!jumped) {
          *r = cur;
          jumped = true;
        }
        cur = ByteReader(wire_.subspan(target));
        seq_start = target;
        continue;
      }
      // 0x40 (extended labels, RFC 6891 5 deprecated them) and 0x80 are reserved: nothing sends
      // them and their lengths are undefined, so the rest of the message cannot be read.
      if (kind != 0) return ParseError::kBadLabel;
      if (len == 0) break;
      ByteSpan label;
      if (!cur.ReadBytes(len, &label)) return ParseError::kShort;
      // 255 octets is the limit of RFC 1035 2.3.4, checked on the decompressed name: a
      // compressed name could otherwise expand well past every buffer sized for a name.
      wire_len += 1 + len;
      if (wire_len > kMaxNameWireLen) return ParseError::kNameTooLong;
      labels.emplace_back(label.begin(), label.end());
    }
    if (!jumped) *r = cur;
    *out = Name::FromLabels(std::move(labels));
    return ParseError::kOk;
  }

  ParseError ReadRecord(ByteReader* r, Record* out) {
    if (ParseError e = ReadName(r, &out->name); e != ParseError::kOk) return e;
    ByteReader rdata(ByteSpan{});
    if (!r->ReadU16(&out->type) || !r->ReadU16(&out->klass) || !r->ReadU32(&out->ttl) ||
        !r->ReadU16LengthPrefixed(&rdata)) {
      return ParseError::kShort;
    }
    const std::optional<RdataLayout> layout = LayoutOf(out->type);
    if (!layout) {
      const ByteSpan raw = rdata.rest();
      out->rdata.assign(raw.begin(), raw.end());
      return ParseError::kOk;
    }
    // Names inside rdata may point anywhere earlier in the message but must end inside the
    // rdata: |rdata| is bounded by rdlength, and a name running past it is bad rdata.
    ByteSpan fixed;
    if (!rdata.ReadBytes(layout->prefix_len, &fixed)) return ParseError::kBadRdata;
    out->rdata.assign(fixed.begin(), fixed.end());
    for (int i = 0; i < layout->num_names; ++i) {
      Name n;
      ParseError e = ReadName(&rdata, &n);
      if (e == ParseError::kShort) return ParseError::kBadRdata;
      if (e != ParseError::kOk) return e;
      AppendName(n, &out->rdata);
    }
    if (!rdata.ReadBytes(layout->suffix_len, &fixed)) return ParseError::kBadRdata;
    out->rdata.insert(out->rdata.end(), fixed.begin(), fixed.end());
    if (!rdata.empty()) return ParseError::kBadRdata;
    return ParseError::kOk;
  }

  // ReadOpt decodes OPT (RFC 6891 6.1.2): CLASS is the payload size, TTL holds the extended
  // rcode, version and DO, and rdata is a run of option TLVs that must fill it exactly.
  static ParseError ReadOpt(const Record& rec, Edns* out) {
    out->udp_payload_size = rec.klass;
    out->extended_rcode = static_cast<uint8_t>(rec.ttl >> 24);
    out->version = static_cast<uint8_t>(rec.ttl >> 16);
    out->dnssec_ok = rec.ttl & 0x8000;
    ByteReader options(rec.rdata);
    while (!options.empty()) {
      uint16_t code;
      ByteReader body(ByteSpan{});
      if (!options.ReadU16(&code) || !options.ReadU16LengthPrefixed(&body)) {
        return ParseError::kBadOpt;
      }
    }
    out->options = rec.rdata;
    return ParseError::kOk;
  }

  ByteSpan wire_;
};

// Builder writes a message into a vector. It does not use CBB because compression needs the
// absolute offset of every name and truncation rewinds to an earlier record boundary.
class Builder {
 public:
  explicit Builder(std::vector<uint8_t>* out) : out_(out) { out_->clear(); }

  size_t size() const { return out_->size(); }
  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) {
    out_->push_back(static_cast<uint8_t>(v >> 8));
    out_->push_back(static_cast<uint8_t>(v));
  }
  void U32(uint32_t v) {
    U16(static_cast<uint16_t>(v >> 16));
    U16(static_cast<uint16_t>(v));
  }
  void Bytes(ByteSpan b) { out_->insert(out_->end(), b.begin(), b.end()); }
  void PatchU16(size_t at, uint16_t v) {
    (*out_)[at] = static_cast<uint8_t>(v >> 8);
    (*out_)[at + 1] = static_cast<uint8_t>(v);
  }
  void Rewind(size_t len) { out_->resize(len); }

  // WriteName writes |name|, ending in a pointer to an earlier copy of its longest known suffix
  // if |compress|. Suffixes are matched byte for byte, not ignoring case, so every name keeps
  // the case it was given (a response echoes the client's 0x20 mix). False if the name cannot
  // be encoded.
  bool WriteName(const Name& name, bool compress) {
    const std::vector<std::string>& labels = name.labels();
    if (name.WireLength() > kMaxNameWireLen) return false;
    // keys[i] is the wire form of labels[i..], the key of that suffix in |offsets_|.
    std::vector<std::string> keys(labels.size());
    for (size_t i = labels.size(); i-- > 0;) {
      if (labels[i].empty() || labels[i].size() > kMaxLabelLen) return false;
      keys[i].reserve(1 + labels[i].size() + (i + 1 < labels.size() ? keys[i + 1].size() : 0));
      keys[i].push_back(static_cast<char>(labels[i].size()));
      keys[i].append(labels[i]);
      if (i + 1 < labels.size()) keys[i].append(keys[i + 1]);
    }
    for (size_t i = 0; i < labels.size(); ++i) {
      if (compress) {
        auto it = offsets_.find(keys[i]);
        if (it != offsets_.end()) {
          U16(static_cast<uint16_t>(0xc000 | it->second));
          return true;
        }
      }
      if (size() <= kMaxPointerTarget) {
        offsets_.emplace(keys[i], static_cast<uint16_t>(size()));
      }
      U8(static_cast<uint8_t>(labels[i].size()));
      out_->insert(out_->end(), labels[i].begin(), labels[i].end());
    }
    U8(0);
    return true;
  }

  bool WriteRecord(const Record& rec) {
    if (!WriteName(rec.name, /*compress=*/true)) return false;
    U16(rec.type);
    U16(rec.klass);
    U32(rec.ttl);
    const size_t len_at = size();
    U16(0);
    WriteRdata(rec);
    const size_t rdata_len = size() - len_at - 2;
    if (rdata_len > 0xffff) return false;
    PatchU16(len_at, static_cast<uint16_t>(rdata_len));
    return true;
  }

 private:
  // WriteRdata writes the names of the types in LayoutOf() through WriteName; rdata that does
  // not hold its layout (a caller's own bytes) is written as given.
  void WriteRdata(const Record& rec) {
    const std::optional<RdataLayout> layout = LayoutOf(rec.type);
    if (!layout) {
      Bytes(rec.rdata);
      return;
    }
    ByteReader r(rec.rdata);
    ByteSpan prefix, suffix;
    Name names[2];
    bool ok = r.ReadBytes(layout->prefix_len, &prefix);
    for (int i = 0; ok && i < layout->num_names; ++i) ok = ReadPlainName(&r, &names[i]);
    ok = ok && r.ReadBytes(layout->suffix_len, &suffix) && r.empty();
    if (!ok) {
      Bytes(rec.rdata);
      return;
    }
    const size_t start = size();
    Bytes(prefix);
    for (int i = 0; i < layout->num_names; ++i) {
      if (!WriteName(names[i], layout->compress)) {
        // Cannot happen for names ReadPlainName accepted; keep the bytes as given regardless.
        Rewind(start);
        Bytes(rec.rdata);
        return;
      }
    }
    Bytes(suffix);
  }

  std::vector<uint8_t>* out_;
  std::unordered_map<std::string, uint16_t> offsets_;
};

}  // namespace

const char* ParseErrorName(ParseError e) {
  switch (e) {
    case ParseError::kOk:
      return "ok";
    case ParseError::kShort:
      return "short";
    case ParseError::kTrailingBytes:
      return "trailing_bytes";
    case ParseError::kBadLabel:
      return "bad_label";
    case ParseError::kNameTooLong:
      return "name_too_long";
    case ParseError::kBadPointer:
      return "bad_pointer";
    case ParseError::kPointerLoop:
      return "pointer_loop";
    case ParseError::kBadRdata:
      return "bad_rdata";
    case ParseError::kBadOpt:
      return "bad_opt";
    case ParseError::kTooManyRecords:
      return "too_many_records";
  }
  return "unknown";
}

ParseError ParseMessage(base::ByteSpan wire, Message* out) { return Parser(wire).Parse(out); }

bool PeekHeader(base::ByteSpan wire, Header* out) {
  ByteReader r(wire);
  uint16_t id, flags;
  if (wire.size() < kHeaderLen || !r.ReadU16(&id) || !r.ReadU16(&flags)) return false;
  *out = Header();
  out->id = id;
  DecodeFlags(flags, out);
  return true;
}

bool BuildMessage(const Message& msg, size_t max_len, std::vector<uint8_t>* out) {
  const size_t opt_count = msg.edns ? 1 : 0;
  if (msg.questions.size() > 0xffff || msg.answers.size() > 0xffff ||
      msg.authorities.size() > 0xffff || msg.additionals.size() + opt_count > 0xffff) {
    return false;
  }
  if (msg.edns && msg.edns->options.size() > 0xffff) return false;
  const size_t opt_len = msg.edns ? kMinRecordLen + msg.edns->options.size() : 0;

  Builder b(out);
  b.U16(msg.header.id);
  b.U16(0);                              // flags, patched once TC is known
  for (int i = 0; i < 4; ++i) b.U16(0);  // counts, patched below
  for (const Question& q : msg.questions) {
    if (!b.WriteName(q.name, /*compress=*/true)) return false;
    b.U16(q.type);
    b.U16(q.klass);
  }
  if (b.size() + opt_len > max_len) return false;

  // Records go in order; compression only points backwards, so the bytes of the first k records
  // do not depend on the ones after them, and truncating is rewinding to a record boundary.
  const std::vector<Record>* sections[] = {&msg.answers, &msg.authorities, &msg.additionals};
  size_t kept_end = b.size();
  size_t num_kept = 0;
  bool truncated = false;
  for (const std::vector<Record>* records : sections) {
    for (const Record& rec : *records) {
      if (!b.WriteRecord(rec)) return false;
      if (b.size() + opt_len > max_len) {
        truncated = true;
        break;
      }
      kept_end = b.size();
      ++num_kept;
    }
    if (truncated) break;
  }
  b.Rewind(kept_end);

  if (msg.edns) {
    const Edns& e = *msg.edns;
    b.U8(0);  // the root
    b.U16(kTypeOpt);
    b.U16(e.udp_payload_size);
    b.U32((uint32_t{e.extended_rcode} << 24) | (uint32_t{e.version} << 16) |
          (e.dnssec_ok ? 0x8000u : 0u));
    b.U16(static_cast<uint16_t>(e.options.size()));
    b.Bytes(e.options);
  }

  const size_t num_an = std::min(num_kept, msg.answers.size());
  const size_t num_ns = std::min(num_kept - num_an, msg.authorities.size());
  const size_t num_ar = num_kept - num_an - num_ns + opt_count;
  b.PatchU16(2, EncodeFlags(msg.header, msg.header.tc || truncated));
  b.PatchU16(4, static_cast<uint16_t>(msg.questions.size()));
  b.PatchU16(6, static_cast<uint16_t>(num_an));
  b.PatchU16(8, static_cast<uint16_t>(num_ns));
  b.PatchU16(10, static_cast<uint16_t>(num_ar));
  return true;
}

Record MakeA(const Name& name, uint32_t ttl, const base::IpAddress& v4) {
  Record r{name, kTypeA, kClassIn, ttl, {}};
  r.rdata.assign(v4.bytes.begin(), v4.bytes.begin() + 4);
  return r;
}

Record MakePtr(const Name& name, uint32_t ttl, const Name& target) {
  Record r{name, kTypePtr, kClassIn, ttl, {}};
  AppendName(target, &r.rdata);
  return r;
}

Record MakeSoa(const Name& zone, uint32_t ttl, const Name& mname, const Name& rname,
               uint32_t serial, uint32_t refresh, uint32_t retry, uint32_t expire,
               uint32_t minimum) {
  Record r{zone, kTypeSoa, kClassIn, ttl, {}};
  AppendName(mname, &r.rdata);
  AppendName(rname, &r.rdata);
  for (const uint32_t v : {serial, refresh, retry, expire, minimum}) {
    for (int shift = 24; shift >= 0; shift -= 8)
      r.rdata.push_back(static_cast<uint8_t>(v >> shift));
  }
  return r;
}

Name ReverseName(const base::IpAddress& v4) {
  return Name::FromLabels({absl::StrCat(v4.bytes[3]), absl::StrCat(v4.bytes[2]),
                           absl::StrCat(v4.bytes[1]), absl::StrCat(v4.bytes[0]), "in-addr",
                           "arpa"});
}

std::optional<base::IpAddress> FromReverseName(const Name& n) {
  const std::vector<std::string>& l = n.labels();
  if (l.size() != 6 || !absl::EqualsIgnoreCase(l[4], "in-addr") ||
      !absl::EqualsIgnoreCase(l[5], "arpa")) {
    return std::nullopt;
  }
  uint8_t octets[4];
  for (int i = 0; i < 4; ++i) {
    const std::string& s = l[i];
    uint32_t v;
    // One canonical spelling per address: "020" or "+20" would be a second name for one PTR.
    if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0') ||
        !std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); }) ||
        !absl::SimpleAtoi(s, &v) || v > 255) {
      return std::nullopt;
    }
    octets[3 - i] = static_cast<uint8_t>(v);
  }
  return base::IpAddress::V4(octets[0], octets[1], octets[2], octets[3]);
}

std::optional<Name> ReadRdataName(base::ByteSpan rdata, size_t* name_len) {
  ByteReader r(rdata);
  Name n;
  if (!ReadPlainName(&r, &n)) return std::nullopt;
  if (name_len != nullptr) *name_len = rdata.size() - r.remaining();
  return n;
}

}  // namespace p2proxy::dns
