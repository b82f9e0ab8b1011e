// dns_service.h: the client's private DNS as one piece: the zone table from the config, the
// resolver on 100.96.128.1 (or the configured address), and the OS hook that points the machine
// at it and guarantees the original configuration comes back.
#ifndef P2PROXY_CLIENT_DNS_SERVICE_H_
#define P2PROXY_CLIENT_DNS_SERVICE_H_

#include <memory>
#include <string>
#include <vector>

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
  struct Options {
    // live_zones: the zones may change while the service runs (managed mode: each snapshot).
    // In systemd-resolved mode the hook then routes every name to the resolver ("~.", default
    // route), which answers private zones and forwards the rest, so a zone added later never
    // goes to another link's servers (I2) and no resolvectl runs on the loop. Without it, only
    // the start config's zones are routed to the resolver and ApplyNames cannot change them
    // in that mode.
    bool live_zones = false;
  };

  // Start installs the OS hook (first restoring what a crashed run left behind), then starts
  // the resolver with the configured upstreams or, by default, the machine's original ones.
  // |listen| must already be an address of this machine (the caller adds 100.96.128.1 to the
  // TUN interface). On failure nothing is left changed.
  static absl::StatusOr<std::unique_ptr<DnsService>> Start(net::Loop& loop, const base::Clock& clock,
                                                           const ClientConfig& config,
                                                           const base::SocketAddress& listen,
                                                           const std::string& interface_name);
  static absl::StatusOr<std::unique_ptr<DnsService>> Start(net::Loop& loop, const base::Clock& clock,
                                                           const ClientConfig& config,
                                                           const base::SocketAddress& listen,
                                                           const std::string& interface_name,
                                                           const Options& options);
  // Destruction stops the resolver and restores the OS configuration.
  ~DnsService();

  dns::Resolver& resolver() { return *resolver_; }

  // ApplyNames makes |zones| and |resources| (validated: ClientConfigFromSnapshot or
  // ParseClientConfigJson) the private names, live: the next query sees them; a name removed
  // from a zone that stays answers NXDOMAIN, and a zone removed is no longer private (its
  // names are forwarded upstream again). Queries in flight finish as they started (a forwarded
  // one is answered by its upstream). The TTL, resource range (its PTR names) and upstreams
  // stay as started. Fails, changing nothing, if the table cannot be built or (systemd-resolved
  // hook without Options::live_zones) the set of zones would change.
  absl::Status ApplyNames(const std::vector<std::string>& zones, const std::vector<ClientResource>& resources);
  // config is the configuration in force: the start one with the names last applied.
  const ClientConfig& config() const { return config_; }

 private:
  DnsService() = default;
  ClientConfig config_;
  Options options_;
  std::unique_ptr<dns::OsHook> hook_;
  std::unique_ptr<dns::Resolver> resolver_;
};

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_DNS_SERVICE_H_
