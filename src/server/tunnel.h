// tunnel.h: the server's own WireGuard interface (DESIGN.md §5). The server is a peer of every
// enrolled node at its overlay address (100.96.0.1); each node keeps a persistent keepalive to
// it, so the server hears every node from the address the node's NAT maps it to and learns its
// public endpoint from that, not from what the node says of itself. At its address it answers
// ICMP echo (people check the path with ping); it forwards nothing else. On the same UDP port
// the relay (relay.h) forwards relay frames between nodes whose endpoints this tunnel
// authenticated. Nodes whose UDP gets no answer reach the same tunnel over TLS on the control
// port (wg_over_tls.h): each such connection is one more endpoint of the device.
#ifndef P2PROXY_SERVER_TUNNEL_H_
#define P2PROXY_SERVER_TUNNEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "base/address.h"
#include "base/clock.h"
#include "base/ip_prefix.h"
#include "crypto/x25519.h"
#include "net/loop.h"
#include "server/relay.h"
#include "server/snapshots.h"
#include "server/wg_over_tls.h"
#include "tunnel/wg_transport.h"

namespace p2proxy::server {

class ServerTunnel {
 public:
  // EndpointFn: the node |node_id| was heard from |endpoint| (the first time, or after it moved).
  using EndpointFn = absl::AnyInvocable<void(const std::string& node_id, const base::SocketAddress& endpoint)>;

  struct Counters {
    uint64_t endpoint_changes = 0;
    uint64_t echo_replies = 0;
    uint64_t dropped = 0;  // packets to anything but the server's own address, or not ICMP echo
  };

  // Start binds |listen| (UDP) with the server's WireGuard key; |self| is its overlay address.
  static absl::StatusOr<std::unique_ptr<ServerTunnel>> Start(net::Loop& loop, base::Clock& clock,
                                                             const base::SocketAddress& listen,
                                                             const crypto::Key& private_key,
                                                             const base::IpAddress& self, EndpointFn on_endpoint,
                                                             Relay::Options relay = {});

  // Sync makes the device's peers exactly the deployment's nodes that are not revoked (sites
  // and devices), each with its overlay address as its only allowed IP. Peers that stay keep
  // their sessions and endpoints; a node removed or revoked loses its peer at once.
  void Sync(const Deployment& d);

  uint16_t port() const { return transport_->listen_port(); }
  size_t peer_count() const { return nodes_.size(); }
  // EndpointOf: where the node was last heard from, or null.
  const base::SocketAddress* EndpointOf(const std::string& node_id) const;
  const Counters& counters() const { return counters_; }
  const wg::DeviceCounters& device_counters() const { return transport_->device().counters(); }
  const Relay::Counters& relay_counters() const { return relay_->counters(); }
  // WireGuard over TLS: the listener's hook for ALPN p2proxy-wg/1, its certificate, its state.
  void AcceptWgTls(std::unique_ptr<net::TcpStream> tcp, std::vector<uint8_t> peeked) {
    wg_tls_->Accept(std::move(tcp), std::move(peeked));
  }
  void SetWgTlsCertificate(std::shared_ptr<const tls::ServerCertificate> cert) { wg_tls_->SetCertificate(std::move(cert)); }
  const WgOverTls::Counters& wg_tls_counters() const { return wg_tls_->counters(); }
  size_t wg_tls_streams() const { return wg_tls_->open_streams(); }
  // TlsRemoteOf: for an endpoint that is a WireGuard-over-TLS stream, the TCP address of its
  // connection; an invalid address otherwise.
  base::SocketAddress TlsRemoteOf(const base::SocketAddress& endpoint) const { return wg_tls_->RemoteOf(endpoint); }
  // RelayTrafficOf: what the relay forwarded for node |node_id| (zeros if nothing).
  Relay::NodeTraffic RelayTrafficOf(const std::string& node_id) const;

 private:
  struct Node {
    std::string id;
    std::string address;
  };
  ServerTunnel(base::IpAddress self, EndpointFn on_endpoint) : self_(self), on_endpoint_(std::move(on_endpoint)) {}
  void OnPacket(wg::Peer& from, base::ByteSpan packet);
  void OnEndpoint(wg::Peer& peer);
  void SendReplies();

  base::IpAddress self_;
  EndpointFn on_endpoint_;
  std::unique_ptr<Relay> relay_;
  std::unique_ptr<tunnel::WgTransport> transport_;
  std::unique_ptr<WgOverTls> wg_tls_;
  // By public key (32 raw bytes).
  std::map<std::string, Node, std::less<>> nodes_;
  std::map<std::string, std::string, std::less<>> key_of_;  // node id -> public key
  // Echo replies wait for the end of the device's batch (never sent from inside its delivery).
  static constexpr size_t kMaxRepliesPerBatch = 64;
  std::vector<std::pair<wg::Peer*, std::vector<uint8_t>>> replies_;
  Counters counters_;
};

// EchoReply turns an IPv4 ICMP echo request addressed to |self| into its reply in place
// (addresses swapped, type 0, checksums fixed). Returns false, leaving |packet| as it was, for
// anything else: not IPv4, fragmented, options, not to |self|, not an echo request, truncated.
bool EchoReply(const base::IpAddress& self, absl::Span<uint8_t> packet);

}  // namespace p2proxy::server

#endif  // P2PROXY_SERVER_TUNNEL_H_
