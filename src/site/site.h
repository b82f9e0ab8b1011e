// site.h: the site role in static mode. A userspace WireGuard device carries the overlay into
// a userspace TCP/IP stack (lwIP) that accepts connections for the site's resource addresses;
// each accepted connection is spliced to its target on the LAN, each UDP flow relayed. The site
// listens on no host socket (I1): its WireGuard UDP socket can sit on an ephemeral port and
// only dial out to its peers.
#ifndef P2PROXY_SITE_SITE_H_
#define P2PROXY_SITE_SITE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "net/loop.h"
#include "proxy/splice.h"
#include "proxy/udp_relay.h"
#include "site/site_config.h"
#include "stack/netstack.h"
#include "stack/tcp_stream.h"
#include "stack/udp_endpoint.h"
#include "tunnel/uapi_server.h"
#include "tunnel/wg_transport.h"

namespace p2proxy::site {

class Site {
 public:
  struct Options {
    // The UAPI socket (`wg show NAME`) is a local unix socket; off unless asked for.
    bool uapi = false;
    std::string uapi_name = "p2p-site";
    std::string uapi_dir = "/var/run/wireguard";
    size_t max_udp_sessions_per_resource = 1024;
  };
  struct Counters {
    uint64_t tcp_accepted = 0;
    uint64_t tcp_target_failed = 0;  // the target refused or could not be reached
    uint64_t tcp_completed = 0;
    uint64_t tcp_failed = 0;         // ended with an error on either side
    uint64_t bytes_to_targets = 0;
    uint64_t bytes_from_targets = 0;
  };

  static absl::StatusOr<std::unique_ptr<Site>> Create(net::Loop& loop, base::Clock& clock,
                                                      const SiteConfig& config, const Options& options);
  ~Site();

  tunnel::WgTransport& transport() { return *transport_; }
  stack::NetStack& netstack() { return *stack_; }
  const Counters& counters() const { return counters_; }
  size_t active_connections() const { return splices_.size() + dialing_.size(); }

 private:
  explicit Site(net::Loop& loop)
      : loop_(loop), alive_(std::make_shared<bool>(true)), in_arena_(kInSlots * kInSlotSize),
        in_batch_(kInSlots) {}
  void QueueInput(base::ByteSpan pkt);
  void InputPending();
  void OnAccept(const SiteResource& r, std::unique_ptr<net::Stream> conn, const base::IpAddress& peer,
                uint16_t peer_port);

  net::Loop& loop_;
  std::shared_ptr<bool> alive_;  // lets callbacks that outlive the site notice
  std::unique_ptr<tunnel::WgTransport> transport_;
  std::unique_ptr<stack::NetStack> stack_;
  std::unique_ptr<tunnel::UapiServer> uapi_;
  std::vector<SiteResource> resources_;
  std::vector<std::unique_ptr<stack::TcpListener>> tcp_listeners_;
  struct UdpResource {
    std::unique_ptr<stack::UdpEndpoint> endpoint;
    std::unique_ptr<proxy::UdpRelay> relay;
  };
  std::vector<std::unique_ptr<UdpResource>> udp_;
  std::map<proxy::Splice*, std::unique_ptr<proxy::Splice>> splices_;
  std::map<uint64_t, std::unique_ptr<net::Stream>> dialing_;  // accepted, target not yet connected
  uint64_t next_dial_id_ = 0;
  Counters counters_;
  // Packets the device decrypted in the current batch, waiting for InputPending.
  static constexpr size_t kInSlots = 64;
  static constexpr size_t kInSlotSize = 1536;
  std::vector<uint8_t> in_arena_;
  std::vector<base::ByteSpan> in_batch_;
  size_t in_count_ = 0;
};

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_SITE_H_
