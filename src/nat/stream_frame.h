// stream_frame.h: WireGuard over TLS (DESIGN.md §5), for nodes whose UDP gets no answer. A
// node opens TLS 1.3 to the server's TCP 443 with ALPN "p2proxy-wg/1" and its node
// certificate; on that stream each WireGuard message (or relay frame, relay_frame.h) travels
// as a 16-bit big-endian length and the message. Nothing else is said on it: the server treats
// each message as a datagram the connection's pseudo endpoint sent on its WireGuard UDP port,
// so the same tunnel, roaming and relay serve both transports.
//
//   +--------+---------+--------------------------------------------+
//   | len hi | len lo  | len bytes: one WireGuard message or relay frame |
//
// A length outside kMinStreamMessage..kMaxStreamMessage ends the connection: no WireGuard
// message is shorter than a keepalive (32), none longer than a relay frame of a full message.
//
// Pseudo endpoints [100::1:0:0:ID]:2 (RFC 6666's discard prefix, like relay endpoints, with a
// different port) name one stream: on the server each accepted connection gets an ID; a node
// calls its own stream to the server ID 0.
#ifndef P2PROXY_NAT_STREAM_FRAME_H_
#define P2PROXY_NAT_STREAM_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "base/address.h"
#include "base/bytes.h"
#include "nat/relay_frame.h"

namespace p2proxy::nat {

inline constexpr std::string_view kWgTlsAlpn = "p2proxy-wg/1";
inline constexpr size_t kStreamLengthSize = 2;
inline constexpr size_t kMinStreamMessage = kMinRelayPayload;
inline constexpr size_t kMaxStreamMessage = kRelayHeaderSize + kMaxRelayPayload;

// AppendStreamFrame appends the length and |message| to |out|; false (nothing appended) if the
// message's size is outside the bounds.
bool AppendStreamFrame(base::ByteSpan message, std::vector<uint8_t>* out);

// StreamFrameReader splits a byte stream into messages. Feed may be given the stream in any
// pieces; each complete message goes to |on_message|. Its span stays valid until the next
// call of Feed (it points into |data| or into the reader's own buffer), so a caller may collect
// a call's messages and hand them on as one batch.
class StreamFrameReader {
 public:
  enum class Result { kOk, kBadLength };
  // Feed returns kBadLength, and stops, at a length outside the bounds; the stream is then
  // unusable (every later Feed returns kBadLength).
  Result Feed(base::ByteSpan data, absl::FunctionRef<void(base::ByteSpan message)> on_message);
  // buffered: bytes of an incomplete frame held between calls (at most 2 + kMaxStreamMessage).
  size_t buffered() const { return partial_.size(); }
  uint64_t messages() const { return messages_; }

 private:
  std::vector<uint8_t> partial_;
  std::vector<uint8_t> held_;  // the message completed from partial_, kept until the next Feed
  uint64_t messages_ = 0;
  bool failed_ = false;
};

// StreamEndpoint: the pseudo endpoint of stream |id|; StreamIdOf: the id of one (false if
// |endpoint| is not a stream endpoint).
base::SocketAddress StreamEndpoint(uint32_t id);
bool StreamIdOf(const base::SocketAddress& endpoint, uint32_t* id);
// IsPseudoEndpoint: a relay or stream endpoint, never a place to send a UDP datagram.
bool IsPseudoEndpoint(const base::SocketAddress& endpoint);

}  // namespace p2proxy::nat

#endif  // P2PROXY_NAT_STREAM_FRAME_H_
