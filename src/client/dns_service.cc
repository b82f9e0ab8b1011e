// dns_service.cc: the client's private DNS: zones, resolver, OS hook.
#include "client/dns_service.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace p2proxy::client {
namespace {

dns::OsHook::Mode ToHookMode(DnsHookMode m) {
  switch (m) {
    case DnsHookMode::kResolved:
      return dns::OsHook::Mode::kResolved;
    case DnsHookMode::kResolvConf:
      return dns::OsHook::Mode::kResolvConf;
    case DnsHookMode::kNone:
      return dns::OsHook::Mode::kNone;
    case DnsHookMode::kAuto:
      break;
  }
  return dns::OsHook::Mode::kAuto;
}

}  // namespace

absl::StatusOr<dns::ZoneTable> BuildZoneTable(const ClientConfig& config) {
  dns::ZoneTable zones(config.dns.ttl);
  for (const std::string& z : config.zones) {
    P2P_RETURN_IF_ERROR(zones.AddZone(z));
  }
  for (const ClientResource& r : config.resources) {
    P2P_RETURN_IF_ERROR(zones.AddRecord(r.name, r.address));
  }
  P2P_RETURN_IF_ERROR(zones.AddReverse(config.resource_range));
  return zones;
}

dns::OsHook::Options HookOptions(const ClientConfig& config, const base::SocketAddress& listen,
                                 const std::string& interface_name) {
  dns::OsHook::Options o;
  o.mode = ToHookMode(config.dns.hook);
  o.interface_name = interface_name;
  if (auto ip = base::IpAddress::Parse(listen.IpString()); ip.ok()) o.resolver = *ip;
  o.resolver_port = listen.port();
  o.routing_domains = config.zones;
  o.state_dir = config.dns.state_dir;
  return o;
}

absl::StatusOr<std::unique_ptr<DnsService>> DnsService::Start(net::Loop& loop, const base::Clock& clock,
                                                              const ClientConfig& config,
                                                              const base::SocketAddress& listen,
                                                              const std::string& interface_name) {
  return Start(loop, clock, config, listen, interface_name, Options());
}

absl::StatusOr<std::unique_ptr<DnsService>> DnsService::Start(net::Loop& loop, const base::Clock& clock,
                                                              const ClientConfig& config,
                                                              const base::SocketAddress& listen,
                                                              const std::string& interface_name,
                                                              const Options& options) {
  P2P_ASSIGN_OR_RETURN(dns::ZoneTable zones, BuildZoneTable(config));
  std::unique_ptr<DnsService> s(new DnsService());
  s->config_ = config;
  s->options_ = options;
  dns::OsHook::Options hook = HookOptions(config, listen, interface_name);
  if (options.live_zones) hook.routing_domains.clear();  // every name to the resolver
  P2P_ASSIGN_OR_RETURN(s->hook_, dns::OsHook::Install(hook));
  dns::Resolver::Options ro;
  ro.listen = listen;
  ro.upstreams = config.dns.upstreams.empty() ? s->hook_->upstreams() : config.dns.upstreams;
  ro.cache_entries = config.dns.cache_entries;
  if (ro.upstreams.empty()) {
    P2P_LOG(kWarn, "client.dns_no_upstream")
        .Kv("why", "the original resolv.conf named no resolver; only private names resolve");
  }
  auto resolver = dns::Resolver::Create(loop, clock, std::move(zones), ro);
  if (!resolver.ok()) return resolver.status();  // ~DnsService restores the hook
  s->resolver_ = std::move(*resolver);
  std::string ups;
  for (const auto& u : ro.upstreams) absl::StrAppend(&ups, ups.empty() ? "" : ",", u.ToString());
  P2P_LOG(kInfo, "client.dns_ready")
      .Kv("listen", s->resolver_->local_address().ToString())
      .Kv("hook", dns::OsHook::ModeName(s->hook_->mode()))
      .Kv("upstreams", ups)
      .Kv("zones", config.zones.size())
      .Kv("resources", config.resources.size());
  return s;
}

absl::Status DnsService::ApplyNames(const std::vector<std::string>& zones,
                                    const std::vector<ClientResource>& resources) {
  ClientConfig next = config_;
  next.zones = zones;
  next.resources = resources;
  if (!options_.live_zones && hook_ && hook_->mode() == dns::OsHook::Mode::kResolved && next.zones != config_.zones) {
    return absl::FailedPreconditionError(
        "dns: the zones cannot change while systemd-resolved routes only the start zones to the "
        "resolver; restart the client (or start it with live zones)");
  }
  P2P_ASSIGN_OR_RETURN(dns::ZoneTable table, BuildZoneTable(next));
  // The resolver answers each query from the table in one turn of the loop and keeps no
  // reference to it across turns, so swapping it here breaks no query in flight.
  resolver_->ReplaceZones(std::move(table));
  config_ = std::move(next);
  P2P_LOG(kInfo, "client.dns_applied").Kv("zones", config_.zones.size()).Kv("resources", config_.resources.size());
  return absl::OkStatus();
}

DnsService::~DnsService() {
  resolver_.reset();
  if (hook_) {
    absl::Status st = hook_->Restore();
    if (!st.ok()) {
      P2P_LOG(kError, "client.dns_restore_failed").Kv("error", st.message());
    }
  }
}

}  // namespace p2proxy::client
