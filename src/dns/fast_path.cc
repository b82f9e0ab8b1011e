// fast_path.cc: AnswerFast: strict parse of a plain query, lookup by NameKey, and an answer
// written with the general builder's compression rules into a fixed buffer.
#include "dns/fast_path.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "dns/message.h"
#include "dns/name_key.h"

namespace p2proxy::dns {
namespace {

using base::ByteReader;
using base::ByteSpan;

// Header flag bits (RFC 1035 4.1.1).
constexpr uint16_t kFlagQr = 0x8000, kFlagOpcode = 0x7800, kFlagAa = 0x0400, kFlagRd = 0x0100,
                   kFlagRa = 0x0080, kFlagCd = 0x0010;
// Offsets of the header fields the answer patches.
constexpr size_t kFlagsAt = 2, kAnCountAt = 6, kNsCountAt = 8;
// kMaxSuffixes bounds the compression table. A plain answer remembers the question's labels
// and a few of the SOA's; a question with more labels than fit makes the writer fail, and the
// general path answers it.
constexpr size_t kMaxSuffixes = 64;
// Pointers in our own output only go back to earlier labels, so a walk ends; this is a guard.
constexpr int kMaxHops = 128;

// Writer appends to a fixed buffer. Once a write does not fit, ok() is false for good and the
// content is garbage. Name() compresses as the general Builder (message.cc) does, so that both
// paths give the same bytes: each suffix written out in full is remembered at its offset, and
// a name is written label by label until its remaining suffix equals a remembered one (byte
// for byte, case included: a response keeps the client's 0x20 spelling), which becomes a
// pointer.
class Writer {
 public:
  Writer(uint8_t* buf, size_t cap) : buf_(buf), cap_(cap) {}

  bool ok() const { return ok_; }
  size_t size() const { return len_; }

  void U8(uint8_t v) {
    if (Room(1)) buf_[len_++] = v;
  }
  void U16(uint16_t v) {
    if (!Room(2)) return;
    buf_[len_++] = static_cast<uint8_t>(v >> 8);
    buf_[len_++] = static_cast<uint8_t>(v);
  }
  void U32(uint32_t v) {
    U16(static_cast<uint16_t>(v >> 16));
    U16(static_cast<uint16_t>(v));
  }
  void Bytes(const uint8_t* p, size_t n) {
    if (!Room(n)) return;
    std::memcpy(buf_ + len_, p, n);
    len_ += n;
  }
  void PatchU16(size_t at, uint16_t v) {
    if (!ok_ || at + 2 > len_) return;
    buf_[at] = static_cast<uint8_t>(v >> 8);
    buf_[at + 1] = static_cast<uint8_t>(v);
  }

  // Name writes |wire|, an uncompressed name already checked to be plain labels ending in the
  // root octet within 255 octets (the query's question, or a name of the zone table).
  void Name(const uint8_t* wire) {
    for (const uint8_t* p = wire; *p != 0; p += 1 + *p) {
      // Past a failed write the table may name bytes never written: stop reading it.
      if (!ok_) return;
      for (size_t i = 0; i < num_suffixes_; ++i) {
        if (Matches(suffix_at_[i], p)) {
          U16(static_cast<uint16_t>(0xc000 | suffix_at_[i]));
          return;
        }
      }
      if (num_suffixes_ == kMaxSuffixes || len_ > 0x3fff) {
        ok_ = false;
        return;
      }
      const size_t at = len_;
      Bytes(p, 1 + size_t{*p});
      if (ok_) suffix_at_[num_suffixes_++] = static_cast<uint16_t>(at);
    }
    U8(0);
  }

 private:
  bool Room(size_t n) {
    if (ok_ && cap_ - len_ >= n) return true;
    ok_ = false;
    return false;
  }

  // Matches says whether the name written at |at| (following our own pointers) is |s|. It
  // reads only what was written.
  bool Matches(size_t at, const uint8_t* s) const {
    int hops = 0;
    for (;;) {
      if (at >= len_) return false;
      const uint8_t len = buf_[at];
      if ((len & 0xc0) == 0xc0) {
        if (++hops > kMaxHops || at + 1 >= len_) return false;
        at = (size_t{len & 0x3fu} << 8) | buf_[at + 1];
        continue;
      }
      if (len != *s) return false;
      if (len == 0) return true;
      if (at + 1 + len > len_ || std::memcmp(buf_ + at + 1, s + 1, len) != 0) return false;
      at += 1 + size_t{len};
      s += 1 + size_t{len};
    }
  }

  uint8_t* buf_;
  size_t cap_;
  size_t len_ = 0;
  bool ok_ = true;
  uint16_t suffix_at_[kMaxSuffixes];
  size_t num_suffixes_ = 0;
};

// WriteSoa writes the SOA record of |apex|, as ZoneTable::Soa and BuildMessage would.
void WriteSoa(const ZoneTable& zones, const ZoneTable::Apex& apex, Writer& w) {
  w.Name(apex.wire.data());
  w.U16(kTypeSoa);
  w.U16(kClassIn);
  w.U32(zones.ttl());
  const size_t len_at = w.size();
  w.U16(0);
  w.Name(apex.mname_wire.data());
  w.Name(apex.rname_wire.data());
  w.Bytes(zones.soa_fixed().data(), zones.soa_fixed().size());
  w.PatchU16(len_at, static_cast<uint16_t>(w.size() - len_at - 2));
}

}  // namespace

size_t AnswerFast(const ZoneTable& zones, base::ByteSpan query, base::MutableByteSpan out) {
  // The query, read as strictly as ParseMessage reads it; whatever it would refuse, or what
  // needs more than this path knows, goes back to the general path.
  ByteReader r(query);
  uint16_t id, flags, qdcount, ancount, nscount, arcount;
  if (!r.ReadU16(&id) || !r.ReadU16(&flags) || !r.ReadU16(&qdcount) || !r.ReadU16(&ancount) ||
      !r.ReadU16(&nscount) || !r.ReadU16(&arcount)) {
    return 0;
  }
  // A response is never answered; another opcode is NOTIMP.
  if ((flags & (kFlagQr | kFlagOpcode)) != 0) return 0;
  if (qdcount != 1 || ancount != 0 || nscount != 0 || arcount > 1) return 0;
  const uint8_t* const qname = r.rest().data();
  NameKey key;
  uint16_t qtype, qclass;
  if (!key.Read(&r) || !r.ReadU16(&qtype) || !r.ReadU16(&qclass)) return 0;
  // Other classes are REFUSED.
  if (qclass != kClassIn && qclass != kClassAny) return 0;
  bool edns = false;
  bool dnssec_ok = false;
  uint16_t payload = 0;
  if (arcount == 1) {
    // Only OPT, owned by the root, of version 0 (else BADVERS), with options that fill its
    // rdata exactly (they are not echoed, so their content does not matter).
    uint8_t owner;
    uint16_t type;
    uint32_t ttl;
    ByteReader rdata(ByteSpan{});
    if (!r.ReadU8(&owner) || owner != 0 || !r.ReadU16(&type) || type != kTypeOpt ||
        !r.ReadU16(&payload) || !r.ReadU32(&ttl) || !r.ReadU16LengthPrefixed(&rdata) ||
        ((ttl >> 16) & 0xff) != 0) {
      return 0;
    }
    while (!rdata.empty()) {
      uint16_t code;
      ByteReader body(ByteSpan{});
      if (!rdata.ReadU16(&code) || !rdata.ReadU16LengthPrefixed(&body)) return 0;
    }
    edns = true;
    dnssec_ok = (ttl & 0x8000) != 0;
  }
  if (!r.empty()) return 0;

  const ZoneTable::Match m = zones.Lookup(key);
  if (m.apex == nullptr) return 0;  // not private: the cache or the upstream answers it

  // The answer, in the order ZoneTable::Answer puts records and BuildMessage writes them.
  Writer w(out.data(), std::min(out.size(), UdpAnswerLimit(edns, payload)));
  w.U16(id);
  w.U16(0);  // flags, patched below
  w.U16(1);
  w.U16(0);  // answers, patched below
  w.U16(0);  // authorities, patched below
  w.U16(edns ? 1 : 0);
  w.Name(qname);
  w.U16(qtype);
  w.U16(qclass);
  uint16_t num_answers = 0;
  uint16_t num_authorities = 0;
  uint8_t rcode = kRcodeNoError;
  if (!m.exists) {
    rcode = kRcodeNxDomain;
    WriteSoa(zones, *m.apex, w);
    ++num_authorities;
  } else {
    const bool any = qtype == kTypeAny;
    if ((qtype == kTypeA || any) && m.address != nullptr) {
      w.Name(qname);
      w.U16(kTypeA);
      w.U16(kClassIn);
      w.U32(zones.ttl());
      w.U16(4);
      w.Bytes(m.address->bytes.data(), 4);
      ++num_answers;
    }
    if ((qtype == kTypePtr || any) && m.ptr_target != nullptr) {
      w.Name(qname);
      w.U16(kTypePtr);
      w.U16(kClassIn);
      w.U32(zones.ttl());
      const size_t len_at = w.size();
      w.U16(0);
      w.Name(m.ptr_target->wire.data());
      w.PatchU16(len_at, static_cast<uint16_t>(w.size() - len_at - 2));
      ++num_answers;
    }
    if ((qtype == kTypeSoa || any) && m.is_apex) {
      WriteSoa(zones, *m.apex, w);
      ++num_answers;
    }
    // NODATA: the SOA in authority.
    if (num_answers == 0) {
      WriteSoa(zones, *m.apex, w);
      ++num_authorities;
    }
  }
  if (edns) {
    w.U8(0);  // the root
    w.U16(kTypeOpt);
    w.U16(static_cast<uint16_t>(kMaxEdnsUdpPayload));
    w.U32(dnssec_ok ? 0x8000u : 0u);
    w.U16(0);  // no options
  }
  // RFC 4035 3.1.6: CD is copied, as RD is. Local answers are authoritative.
  w.PatchU16(kFlagsAt, static_cast<uint16_t>(kFlagQr | kFlagAa | (flags & kFlagRd) | kFlagRa |
                                             (flags & kFlagCd) | rcode));
  w.PatchU16(kAnCountAt, num_answers);
  w.PatchU16(kNsCountAt, num_authorities);
  return w.ok() ? w.size() : 0;
}

}  // namespace p2proxy::dns
