// dns_service.h: the client's private DNS as one piece: the zone table from the config, the
// resolver on 100.96.128.1 (or the configured address), and the OS hook that points the machine
// at it and guarantees the original configuration comes back.
#ifndef P2PROXY_CLIENT_DNS_SERVICE_H_
#define P2PROXY_CLIENT_DNS_SERVICE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "client/client_config.h"
#include "dns/os_hook.h"
#include "dns/resolver.h"
#include "dns/zone.h"
#include "net/loop.h"

namespace p2proxy::client {

// kDefaultResolver is where the resolver listens in TUN mode (DESIGN.md §3).
inline constexpr const char* kDefaultResolver = "100.96.128.1:53";

// BuildZoneTable turns the config's zones and resources into the resolver's table; PTR names
// of the whole resource range are private too.
absl::StatusOr<dns::ZoneTable> BuildZoneTable(const ClientConfig& config);

// HookOptions is the OS hook's view of the config (|interface_name| for systemd-resolved).
dns::OsHook::Options HookOptions(const ClientConfig& config, const base::SocketAddress& listen,
                                 const std::string& interface_name);

class DnsService {
 public:
  // Start installs the OS hook (first restoring what a crashed run left behind), then starts
  // the resolver with the configured upstreams or, by default, the machine's original ones.
  // |listen| must already be an address of this machine (the caller adds 100.96.128.1 to the
  // TUN interface). On failure nothing is left changed.
  static absl::StatusOr<std::unique_ptr<DnsService>> Start(net::Loop& loop, const base::Clock& clock,
                                                           const ClientConfig& config,
                                                           const base::SocketAddress& listen,
                                                           const std::string& interface_name);
  // Destruction stops the resolver and restores the OS configuration.
  ~DnsService();

  dns::Resolver& resolver() { return *resolver_; }

 private:
  DnsService() = default;
  std::unique_ptr<dns::OsHook> hook_;
  std::unique_ptr<dns::Resolver> resolver_;
};

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_DNS_SERVICE_H_
