// wg_client.h: the client's WireGuard mode: a kernel TUN interface carried by a userspace
// WireGuard device, configured from a wg-quick style file and managed through the UAPI, as
// wireguard-go is.
#ifndef P2PROXY_CLIENT_WG_CLIENT_H_
#define P2PROXY_CLIENT_WG_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "net/loop.h"
#include "net/tun.h"
#include "tunnel/uapi_server.h"
#include "tunnel/wg_transport.h"
#include "wg/wg_quick_config.h"

namespace p2proxy::client {

class WgClient {
 public:
  struct Options {
    std::string interface_name = "p2p0";
    std::string uapi_dir = "/var/run/wireguard";
    bool install_routes = true;  // a route per peer allowed IP, as wg-quick adds
  };

  // Create brings the interface up: TUN, MTU, addresses, routes, UDP socket, peers, UAPI.
  // Errors name the step that failed and what to do.
  static absl::StatusOr<std::unique_ptr<WgClient>> Create(net::Loop& loop, base::Clock& clock,
                                                          const wg::WgQuickConfig& config,
                                                          const Options& options);
  // Destruction removes the interface (and its routes) and the UAPI socket.
  ~WgClient();

  tunnel::WgTransport& transport() { return *transport_; }
  // AddLocalAddress assigns one more address (a /32) to the interface, such as the resolver's
  // 100.96.128.1, so that local sockets can bind it; it goes with the interface.
  absl::Status AddLocalAddress(const base::IpAddress& address);
  const std::string& interface_name() const { return tun_->name(); }

 private:
  WgClient() = default;
  std::unique_ptr<net::TunDevice> tun_;
  std::unique_ptr<tunnel::WgTransport> transport_;
  std::unique_ptr<tunnel::UapiServer> uapi_;
};

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_WG_CLIENT_H_
