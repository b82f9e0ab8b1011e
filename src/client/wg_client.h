// wg_client.h: the client's WireGuard device, configured from a wg-quick style file (static
// mode) or from the node's enrollment and the server's snapshots (managed mode), and managed
// through the UAPI, as wireguard-go is. Its packets come from and go to either a kernel TUN
// interface (TUN mode, needs CAP_NET_ADMIN) or a userspace TCP/IP stack (lwIP) inside the
// process (userspace mode, no privilege): local proxies then dial through stack().
#ifndef P2PROXY_CLIENT_WG_CLIENT_H_
#define P2PROXY_CLIENT_WG_CLIENT_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "base/ip_prefix.h"
#include "client/peer_plan.h"
#include "client/site_selector.h"
#include "crypto/secret.h"
#include "net/loop.h"
#include "net/timer.h"
#include "net/tun.h"
#include "stack/netstack.h"
#include "tunnel/uapi_server.h"
#include "tunnel/wg_transport.h"
#include "wg/constants.h"
#include "wg/wg_quick_config.h"

namespace p2proxy::client {

// ManagedClient is what a managed client knows of itself beside the snapshot: its WireGuard
// key (state dir) and node address (enrollment).
struct ManagedClient {
  crypto::Key private_key;
  base::IpAddress node_address;  // IPv4; goes on the TUN as a /32
  uint16_t listen_port = 0;      // 0: any port (the client only dials out)
  uint32_t mtu = wg::kDefaultMtu;
};

class WgClient {
 public:
  struct Options {
    std::string interface_name = "p2p0";
    std::string uapi_dir = "/var/run/wireguard";
    bool install_routes = true;  // a route per peer allowed IP, as wg-quick adds
    // userspace: no TUN, no routes, no privilege: the node address lives on a userspace stack
    // (stack()) and only connections the process makes through it reach the overlay.
    // interface_name then only names the UAPI socket (empty uapi_dir: no UAPI socket).
    bool userspace = false;
  };

  // Create brings the interface up: TUN, MTU, addresses, routes, UDP socket, peers, UAPI.
  // Errors name the step that failed and what to do.
  static absl::StatusOr<std::unique_ptr<WgClient>> Create(net::Loop& loop, base::Clock& clock,
                                                          const wg::WgQuickConfig& config,
                                                          const Options& options);
  // CreateManaged brings the interface up for managed mode, without a wg-quick file: the
  // node's key, its node address as a /32, the listen port and MTU of |self|, then |peers|
  // (the stored or first snapshot's; may be empty) with their routes, as ApplyPeers makes
  // them. Errors as Create's.
  static absl::StatusOr<std::unique_ptr<WgClient>> CreateManaged(net::Loop& loop, base::Clock& clock,
                                                                 const ManagedClient& self,
                                                                 const std::vector<ClientPeer>& peers,
                                                                 const Options& options);
  // Destruction removes the interface (and its routes) and the UAPI socket.
  ~WgClient();

  tunnel::WgTransport& transport() { return *transport_; }
  // stack is the userspace stack (Options::userspace), else null.
  stack::NetStack* stack() { return stack_.get(); }
  bool userspace() const { return tun_ == nullptr; }
  // AddLocalAddress assigns one more address (a /32) to the interface, such as the resolver's
  // 100.96.128.1, so that local sockets can bind it; it goes with the interface.
  absl::Status AddLocalAddress(const base::IpAddress& address);
  // interface_name is the TUN's name, or in userspace mode Options::interface_name.
  const std::string& interface_name() const { return tun_ ? tun_->name() : options_.interface_name; }

  // ApplyResult counts what ApplyPeers changed.
  struct ApplyResult {
    size_t peers_added = 0;
    size_t peers_removed = 0;
    size_t peers_updated = 0;    // allowed IPs, endpoint, keepalive or preshared key changed
    size_t peers_unchanged = 0;  // not touched: sessions, endpoint and timers as they were
    size_t routes_added = 0;
    size_t routes_removed = 0;
  };

  // ApplyPeers makes |peers| the device's peers, diffed by public key against the last peers
  // given (Create's, CreateManaged's or ApplyPeers'): new peers are added, gone ones removed
  // with their sessions, changed ones updated in place (sessions kept; an endpoint the peer
  // roamed to is kept unless the configured endpoint changed), unchanged ones not touched.
  // With install_routes, a route through the interface is added for each prefix no peer had,
  // and removed for each prefix no peer has any more (only routes this client added: one that
  // existed already is left alone); routes that stay are not touched. Peers changed through
  // the UAPI (`wg set`) meanwhile are not part of the diff.
  //
  // Refused before anything changes (InvalidArgument): a peer with the client's own key, or
  // two with one key. A route the kernel refuses is logged and the rest still applied; the
  // first such error is returned ("interface p2p0: route 100.96.128.20/32: ...").
  absl::StatusOr<ApplyResult> ApplyPeers(const std::vector<ClientPeer>& peers);
  // peers is what the last apply configured.
  const std::vector<ClientPeer>& peers() const { return peers_; }

  // SetSharedResources gives the site selector (site_selector.h) the resources served by
  // several of the peers (after ApplyPeers with the same snapshot's peers): it probes those
  // sites through the tunnel and picks the site per flow. Empty: routing alone decides, and
  // nothing is probed. Needs the node address (managed mode).
  void SetSharedResources(const std::vector<SharedResource>& shared);
  const SiteSelector& selector() const { return selector_; }

 private:
  WgClient() = default;
  // Start opens the UDP side and the TUN and configures the interface and the private key.
  static absl::StatusOr<std::unique_ptr<WgClient>> Start(net::Loop& loop, base::Clock& clock,
                                                         const crypto::Key& private_key,
                                                         const std::vector<base::IpPrefix>& addresses,
                                                         uint16_t listen_port, uint32_t mtu,
                                                         const Options& options);
  // Finish serves the UAPI and logs that the interface is up.
  absl::Status Finish(net::Loop& loop, const Options& options);
  absl::Status Step(const absl::Status& st, absl::string_view what) const;
  void LogUp() const;
  // FromTun sends packets the TUN read: by the site selector for shared resources, else by
  // the routing table.
  void FromTun(absl::Span<const base::ByteSpan> packets);
  void SelectorTick();
  // QueueInput / InputPending: userspace mode hands the packets of one device batch to the
  // stack together, so its answers leave in one sendmmsg (as the site does).
  void QueueInput(base::ByteSpan pkt);
  void InputPending();

  Options options_;
  std::unique_ptr<net::TunDevice> tun_;
  std::unique_ptr<stack::NetStack> stack_;
  static constexpr size_t kInSlots = 64;
  static constexpr size_t kInSlotSize = 2048;
  std::vector<uint8_t> in_arena_;
  std::vector<base::ByteSpan> in_batch_;
  size_t in_count_ = 0;
  std::unique_ptr<tunnel::WgTransport> transport_;
  std::unique_ptr<tunnel::UapiServer> uapi_;
  std::vector<ClientPeer> peers_;  // as last applied
  std::set<std::string> own_routes_;  // prefixes (text) whose route this client added
  base::Clock* clock_ = nullptr;
  base::IpAddress node_address_;  // managed mode: the probes' source
  SiteSelector selector_;
  std::unique_ptr<net::Timer> selector_timer_;
  std::vector<base::ByteSpan> routed_batch_;  // FromTun's scratch
};

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_WG_CLIENT_H_
