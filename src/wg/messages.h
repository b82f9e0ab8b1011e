// messages.h: the four WireGuard messages on the wire. Every field is little-endian at a fixed
// offset; a datagram is classified by its 32-bit type *and* its exact length (transport: at
// least the header plus a tag) before anything else looks at it.
//
//   type 1 initiation  148 bytes: type | sender | ephemeral[32] | static[48] | timestamp[28] | mac1 | mac2
//   type 2 response     92 bytes: type | sender | receiver | ephemeral[32] | empty[16] | mac1 | mac2
//   type 3 cookie reply 64 bytes: type | receiver | nonce[24] | cookie[32]
//   type 4 transport  >= 32 bytes: type | receiver | counter(8) | packet + tag[16]
#ifndef P2PROXY_WG_MESSAGES_H_
#define P2PROXY_WG_MESSAGES_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"

namespace p2proxy::wg {

enum class MessageType : uint32_t {
  kInvalid = 0,
  kInitiation = 1,
  kResponse = 2,
  kCookieReply = 3,
  kTransport = 4,
};

inline constexpr size_t kInitiationSize = 148;
inline constexpr size_t kResponseSize = 92;
inline constexpr size_t kCookieReplySize = 64;
inline constexpr size_t kTransportHeaderSize = 16;
inline constexpr size_t kTransportMinSize = kTransportHeaderSize + 16;
// Offsets of mac1 in the two handshake messages; mac2 follows 16 bytes later and is the last
// field, so "everything before mac1" and "everything before mac2" are prefixes.
inline constexpr size_t kInitiationMac1Offset = 116;
inline constexpr size_t kResponseMac1Offset = 60;

// Classify returns the message type if |datagram| has a known type and a valid length for it,
// kInvalid otherwise. It reads only the first four bytes.
MessageType Classify(base::ByteSpan datagram);

struct Initiation {
  uint32_t sender = 0;
  std::array<uint8_t, 32> ephemeral{};
  std::array<uint8_t, 48> encrypted_static{};
  std::array<uint8_t, 28> encrypted_timestamp{};
  std::array<uint8_t, 16> mac1{};
  std::array<uint8_t, 16> mac2{};
};

struct Response {
  uint32_t sender = 0;
  uint32_t receiver = 0;
  std::array<uint8_t, 32> ephemeral{};
  std::array<uint8_t, 16> encrypted_nothing{};
  std::array<uint8_t, 16> mac1{};
  std::array<uint8_t, 16> mac2{};
};

struct CookieReply {
  uint32_t receiver = 0;
  std::array<uint8_t, 24> nonce{};
  std::array<uint8_t, 32> encrypted_cookie{};
};

struct TransportHeader {
  uint32_t receiver = 0;
  uint64_t counter = 0;
};

// Parse* read a datagram that Classify already accepted as that type; they return false if the
// length or type is wrong (so they are safe on any input).
bool ParseInitiation(base::ByteSpan in, Initiation* out);
bool ParseResponse(base::ByteSpan in, Response* out);
bool ParseCookieReply(base::ByteSpan in, CookieReply* out);
bool ParseTransportHeader(base::ByteSpan in, TransportHeader* out);

// Serialize* write the exact wire form into |out| (which must have room: the message size, or
// the transport header size) and return the bytes written, or 0 if it does not fit.
size_t SerializeInitiation(const Initiation& m, base::MutableByteSpan out);
size_t SerializeResponse(const Response& m, base::MutableByteSpan out);
size_t SerializeCookieReply(const CookieReply& m, base::MutableByteSpan out);
size_t SerializeTransportHeader(const TransportHeader& m, base::MutableByteSpan out);

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_MESSAGES_H_
