// relay.h: the server's blind relay (DESIGN.md §2 path 4, §5 relay frames). Nodes that cannot
// reach each other directly send their WireGuard messages to the server's WireGuard UDP port in
// relay frames (nat/relay_frame.h); the relay forwards a frame, unchanged, to the endpoint of the
// node it names, if and only if:
//   - it parses (type word, IPv4 node addresses, one WireGuard message of sane size);
//   - it comes from an endpoint the server authenticated over WireGuard as a node's (the
//     server's own tunnel heard that node's keepalives from exactly there), and the frame's
//     source is that node: nobody else can send in a node's name;
//   - its destination is a node with an authenticated endpoint;
//   - the sender is within its rate (a token bucket per node: one node's flood is cut without
//     touching the others).
// Every drop is counted by reason. The relay never holds a key of the nodes: what it forwards
// is ciphertext between them.
#ifndef P2PROXY_SERVER_RELAY_H_
#define P2PROXY_SERVER_RELAY_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "base/address.h"
#include "base/bytes.h"
#include "base/clock.h"
#include "base/ip_prefix.h"

namespace p2proxy::server {

class Relay {
 public:
  struct Options {
    // Per sending node: sustained frames per second, and the burst above it.
    double frames_per_second = 50000;
    double burst = 5000;
  };
  struct Counters {
    uint64_t forwarded = 0;
    uint64_t forwarded_bytes = 0;
    uint64_t malformed = 0;            // not a well-formed relay frame
    uint64_t unknown_sender = 0;       // from an endpoint no node was authenticated at
    uint64_t spoofed = 0;              // the frame names another node as its source
    uint64_t unknown_destination = 0;  // no such node, or none of its endpoints is known
    uint64_t rate_limited = 0;         // the sender was over its rate
  };
  using SendFn = std::function<void(const base::SocketAddress& to, base::ByteSpan frame)>;

  Relay(base::Clock& clock, Options options) : clock_(clock), options_(options) {}

  // SetEndpoint: |node| (its overlay address) was authenticated at |endpoint| (it moved there);
  // RemoveNode: it is gone (revoked, removed).
  void SetEndpoint(const base::IpAddress& node, const base::SocketAddress& endpoint);
  void RemoveNode(const base::IpAddress& node);

  // Handle takes a datagram from the server's WireGuard port: false if it is not a relay frame
  // (WireGuard's own, for the server's tunnel); true if it was one, forwarded through |send| or
  // dropped and counted.
  bool Handle(const base::Datagram& d, const SendFn& send);

  const Counters& counters() const { return counters_; }
  size_t nodes() const { return by_node_.size(); }
  // NodeTraffic: the frames forwarded from and to one node, and when the last one went.
  struct NodeTraffic {
    uint64_t frames_from = 0;
    uint64_t frames_to = 0;
    absl::Duration last;  // monotonic; zero: never
  };
  NodeTraffic TrafficOf(const base::IpAddress& node) const;

 private:
  // EndpointKey: an endpoint's family, address and port bytes, fixed size: looked up for every
  // frame without allocating.
  using EndpointKey = std::array<uint8_t, 19>;
  struct NodeState {
    base::SocketAddress endpoint;
    EndpointKey endpoint_key{};
    double tokens = 0;
    absl::Duration refilled;
    NodeTraffic traffic;
  };
  static EndpointKey KeyOf(const base::SocketAddress& a);
  static uint32_t V4(const base::IpAddress& a);

  base::Clock& clock_;
  Options options_;
  absl::flat_hash_map<uint32_t, NodeState> by_node_;
  absl::flat_hash_map<EndpointKey, uint32_t> by_endpoint_;
  Counters counters_;
};

}  // namespace p2proxy::server

#endif  // P2PROXY_SERVER_RELAY_H_
