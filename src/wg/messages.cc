// messages.cc: parsing and serializing WireGuard messages with ByteReader/ByteWriter.
#include "wg/messages.h"

namespace p2proxy::wg {
namespace {

bool ReadType(base::ByteReader& r, MessageType want) {
  uint32_t type;
  return r.ReadU32Le(&type) && type == static_cast<uint32_t>(want);
}

template <size_t N>
bool ReadArray(base::ByteReader& r, std::array<uint8_t, N>* out) {
  return r.CopyBytes(absl::MakeSpan(*out));
}

template <size_t N>
bool AddArray(base::ByteWriter& w, const std::array<uint8_t, N>& a) {
  return w.AddBytes(a);
}

}  // namespace

MessageType Classify(base::ByteSpan datagram) {
  base::ByteReader r(datagram);
  uint32_t type;
  if (!r.ReadU32Le(&type)) return MessageType::kInvalid;
  switch (type) {
    case 1: return datagram.size() == kInitiationSize ? MessageType::kInitiation : MessageType::kInvalid;
    case 2: return datagram.size() == kResponseSize ? MessageType::kResponse : MessageType::kInvalid;
    case 3: return datagram.size() == kCookieReplySize ? MessageType::kCookieReply : MessageType::kInvalid;
    case 4: return datagram.size() >= kTransportMinSize ? MessageType::kTransport : MessageType::kInvalid;
    default: return MessageType::kInvalid;
  }
}

bool ParseInitiation(base::ByteSpan in, Initiation* out) {
  if (in.size() != kInitiationSize) return false;
  base::ByteReader r(in);
  return ReadType(r, MessageType::kInitiation) && r.ReadU32Le(&out->sender) &&
         ReadArray(r, &out->ephemeral) && ReadArray(r, &out->encrypted_static) &&
         ReadArray(r, &out->encrypted_timestamp) && ReadArray(r, &out->mac1) &&
         ReadArray(r, &out->mac2) && r.empty();
}

bool ParseResponse(base::ByteSpan in, Response* out) {
  if (in.size() != kResponseSize) return false;
  base::ByteReader r(in);
  return ReadType(r, MessageType::kResponse) && r.ReadU32Le(&out->sender) &&
         r.ReadU32Le(&out->receiver) && ReadArray(r, &out->ephemeral) &&
         ReadArray(r, &out->encrypted_nothing) && ReadArray(r, &out->mac1) &&
         ReadArray(r, &out->mac2) && r.empty();
}

bool ParseCookieReply(base::ByteSpan in, CookieReply* out) {
  if (in.size() != kCookieReplySize) return false;
  base::ByteReader r(in);
  return ReadType(r, MessageType::kCookieReply) && r.ReadU32Le(&out->receiver) &&
         ReadArray(r, &out->nonce) && ReadArray(r, &out->encrypted_cookie) && r.empty();
}

bool ParseTransportHeader(base::ByteSpan in, TransportHeader* out) {
  if (in.size() < kTransportMinSize) return false;
  base::ByteReader r(in);
  return ReadType(r, MessageType::kTransport) && r.ReadU32Le(&out->receiver) &&
         r.ReadU64Le(&out->counter);
}

size_t SerializeInitiation(const Initiation& m, base::MutableByteSpan out) {
  base::ByteWriter w(out);
  bool ok = w.AddU32Le(1) && w.AddU32Le(m.sender) && AddArray(w, m.ephemeral) &&
            AddArray(w, m.encrypted_static) && AddArray(w, m.encrypted_timestamp) &&
            AddArray(w, m.mac1) && AddArray(w, m.mac2);
  return ok ? w.size() : 0;
}

size_t SerializeResponse(const Response& m, base::MutableByteSpan out) {
  base::ByteWriter w(out);
  bool ok = w.AddU32Le(2) && w.AddU32Le(m.sender) && w.AddU32Le(m.receiver) &&
            AddArray(w, m.ephemeral) && AddArray(w, m.encrypted_nothing) && AddArray(w, m.mac1) &&
            AddArray(w, m.mac2);
  return ok ? w.size() : 0;
}

size_t SerializeCookieReply(const CookieReply& m, base::MutableByteSpan out) {
  base::ByteWriter w(out);
  bool ok = w.AddU32Le(3) && w.AddU32Le(m.receiver) && AddArray(w, m.nonce) &&
            AddArray(w, m.encrypted_cookie);
  return ok ? w.size() : 0;
}

size_t SerializeTransportHeader(const TransportHeader& m, base::MutableByteSpan out) {
  base::ByteWriter w(out);
  bool ok = w.AddU32Le(4) && w.AddU32Le(m.receiver) && w.AddU64Le(m.counter);
  return ok ? w.size() : 0;
}

}  // namespace p2proxy::wg
