// client_node.h: the client role as one object: the WireGuard device (TUN or userspace), the
// control channel in managed mode, private DNS, the local proxies, site health reports and the
// status file. p2proxy-client parses its flags into ClientNodeOptions and runs one; a program
// that embeds a client does the same.
#ifndef P2PROXY_CLIENT_CLIENT_NODE_H_
#define P2PROXY_CLIENT_CLIENT_NODE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client_config.h"
#include "client/client_status.pb.h"
#include "client/dns_service.h"
#include "client/local_proxy.h"
#include "client/overlay.h"
#include "client/status_report.h"
#include "client/wg_client.h"
#include "control/node_agent.h"
#include "net/loop.h"
#include "net/timer.h"
#include "uplink/server_uplink.h"
#include "wg/wg_quick_config.h"

namespace p2proxy::client {

struct ClientNodeOptions {
  // Managed mode: the state dir (keys, certificate, last snapshot); enrolls once with server
  // and token. Exclusive with wg_config.
  std::string state_dir;
  std::string server;          // HOST:PORT, needed to enroll
  std::string token;           // one-time enrollment token, first start only
  std::string requested_name;  // the device's name at enrollment ("": its id)
  uint16_t listen_port = 0;    // WireGuard UDP port (0: ephemeral)
  absl::Duration enroll_limit = absl::Seconds(60);
  // Static mode: a parsed wg-quick file (wg_config_path names it in messages and gives the
  // default interface name).
  std::optional<wg::WgQuickConfig> wg_config;
  std::string wg_config_path;
  // config: the local JSON config (zones, resources, resolver). Alone (no state dir, no
  // wg-quick file): only the resolver runs.
  std::optional<ClientConfig> config;
  // userspace: no TUN, no routes, no root (WgClient::Options::userspace).
  bool userspace = false;
  std::string interface_name;                  // "": p2p0, or the wg-quick file's name
  std::string uapi_dir = "/var/run/wireguard";  // "": no UAPI socket
  bool install_routes = true;
  LocalProxyOptions proxies;
  // embedded: a program dials through Dial itself (the public API), so userspace mode needs no
  // local proxy.
  bool embedded = false;
  // status_file: written every second (status_report.h), removed at Stop. "": none.
  std::string status_file;
};

class ClientNode {
 public:
  // Start brings everything up in order (enrollment, range check, device, resolver, proxies,
  // status), or fails with a message naming what to fix, leaving nothing changed.
  static absl::StatusOr<std::unique_ptr<ClientNode>> Start(net::Loop& loop, ClientNodeOptions options);
  // Destruction is Stop.
  ~ClientNode();
  ClientNode(const ClientNode&) = delete;
  ClientNode& operator=(const ClientNode&) = delete;

  // Stop takes everything down, undoing what Start changed on the machine (status file, DNS
  // configuration, interface and routes). Idempotent.
  void Stop();

  // Dial connects to |host| (a private name or an IPv4 literal) at |port| through the overlay.
  // |done| runs once, on a later turn. NotFound: not a private name.
  void Dial(absl::string_view host, uint16_t port, Overlay::ConnectFn done);
  // overlay: the node's way into the overlay (null when not running), for UDP flows.
  Overlay* overlay() { return overlay_.get(); }

  const PrivateNames& names() const { return names_; }
  // has_config: managed mode has a snapshot (stored or received); static mode always.
  // synced: the server's current snapshot arrived in this run (static mode: always). A start
  // from the stored snapshot may lack resources added since.
  bool synced() const { return !agent_ || agent_->applied_version() > 0; }
  bool has_config() const {
    return !agent_ || agent_->stored_snapshot().has_value() || agent_->applied_version() > 0;
  }
  WgClient* wg() { return wg_.get(); }
  LocalProxies* proxies() { return proxies_.get(); }
  control::NodeAgent* agent() { return agent_.get(); }
  status::ClientStatus Status();

 private:
  explicit ClientNode(net::Loop& loop) : loop_(loop), status_timer_(loop) {}
  absl::Status StartManaged();
  absl::Status StartStatic();
  absl::Status StartResolverOnly();
  absl::Status StartProxies();
  void NoteSites(const control::wire::Snapshot& snapshot);
  void Tick();
  void ReportHealth();
  // UpdatePaths (each second, managed mode): a site peer that has an endpoint but no session
  // after kTicksBeforeRelay seconds, or whose session's direct path has left data unanswered
  // for kSilentDirect, moves onto the server's relay; a relayed one probes its
  // direct endpoint every kProbeInterval, and WireGuard's roaming takes it back when the site
  // answers from there.
  void UpdatePaths();
  void OnUplinkChanged(bool over_tls);

  net::Loop& loop_;
  ClientNodeOptions options_;
  PrivateNames names_;
  StatusInputs status_inputs_;
  std::map<crypto::PublicKey, std::string> site_ids_;  // managed: node id by site key
  // SitePath: what UpdatePaths knows of a site peer.
  struct SitePath {
    base::IpAddress address;                    // the site's node address
    std::optional<base::SocketAddress> direct;  // its endpoint as the server heard it
    int stuck_ticks = 0;
    absl::Time next_probe;
    bool relayed = false;  // as last seen, for the log of each change
  };
  static constexpr int kTicksBeforeRelay = 2;
  // kSilentDirect: how long data to a site over its direct path may go unanswered before the
  // client moves it onto the relay (a live TCP flow is answered within a round trip).
  static constexpr absl::Duration kSilentDirect = absl::Seconds(4);
  static constexpr absl::Duration kProbeInterval = absl::Seconds(10);
  std::map<crypto::PublicKey, SitePath> site_paths_;
  std::optional<base::SocketAddress> relay_server_;  // the server's WireGuard endpoint
  std::optional<crypto::PublicKey> server_key_;      // the server's WireGuard key
  std::unique_ptr<control::NodeAgent> agent_;
  std::unique_ptr<WgClient> wg_;
  std::unique_ptr<uplink::ServerUplink> uplink_;  // UDP or TLS to the server (after wg_: uses it)
  std::unique_ptr<DnsService> dns_;
  std::unique_ptr<Overlay> overlay_;
  std::unique_ptr<LocalProxies> proxies_;
  net::Timer status_timer_;
  bool status_warned_ = false;
  bool status_written_ = false;  // Stop removes only a status file this node wrote
  bool health_reported_ = false;
  bool stopped_ = false;
};

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_CLIENT_NODE_H_
