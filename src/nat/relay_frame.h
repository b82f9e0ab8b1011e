// relay_frame.h: relay frames (DESIGN.md §5), our extension on the server's WireGuard UDP port.
// When two nodes cannot reach each other directly (a symmetric NAT, a firewall), each sends its
// WireGuard messages to the server wrapped in a relay frame naming the destination node; the
// server checks the sender (the endpoint it authenticated over WireGuard must be the node the
// frame names as its source) and forwards the frame, unchanged, to the destination's endpoint.
// The server reads only this header: the payload is WireGuard ciphertext it has no keys for.
//
//   0       4           8           12
//   +-------+-----------+-----------+----------------------------+
//   | type  | dst node  | src node  | one WireGuard message      |
//   | 0x50 0 0 0 (LE u32, unused by WireGuard's 1-4) | IPv4 node addresses, network order  |
//
// A node gives the device relayed datagrams as coming from a pseudo endpoint, [100::a.b.c.d]:1
// (RFC 6666's discard prefix, never a real peer), so WireGuard's roaming moves a peer onto the
// relay and back by itself; sending to such an endpoint wraps the datagram.
#ifndef P2PROXY_NAT_RELAY_FRAME_H_
#define P2PROXY_NAT_RELAY_FRAME_H_

#include <cstddef>
#include <cstdint>

#include "base/address.h"
#include "base/bytes.h"
#include "base/ip_prefix.h"

namespace p2proxy::nat {

inline constexpr uint8_t kRelayType = 0x50;
inline constexpr size_t kRelayHeaderSize = 12;
// kMinRelayPayload: WireGuard's smallest message (a keepalive: 32 bytes); kMaxRelayPayload: a
// full-size transport message at the largest MTU a node uses, with room to spare.
inline constexpr size_t kMinRelayPayload = 32;
inline constexpr size_t kMaxRelayPayload = 1600;

struct RelayFrame {
  base::IpAddress dst;  // IPv4 node addresses
  base::IpAddress src;
  base::ByteSpan payload;  // points into the parsed datagram
};

// IsRelayFrame: whether |datagram| starts like a relay frame (the type word), whatever follows.
bool IsRelayFrame(base::ByteSpan datagram);
// ParseRelayFrame checks and splits a frame: the type word, both addresses IPv4 and not
// unspecified, and a payload of kMinRelayPayload to kMaxRelayPayload bytes whose first byte is
// a WireGuard message type (1-4). False for anything else.
bool ParseRelayFrame(base::ByteSpan datagram, RelayFrame* out);
// WriteRelayHeader writes the 12-byte header to |out|.
void WriteRelayHeader(const base::IpAddress& dst, const base::IpAddress& src, uint8_t* out);

// RelayEndpoint: the pseudo endpoint standing for node |node| reached through the relay.
base::SocketAddress RelayEndpoint(const base::IpAddress& node);
// RelayNodeOf: the node of a pseudo endpoint; false if |endpoint| is not one.
bool RelayNodeOf(const base::SocketAddress& endpoint, base::IpAddress* node);

}  // namespace p2proxy::nat

#endif  // P2PROXY_NAT_RELAY_FRAME_H_
