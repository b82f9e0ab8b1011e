// client_config.h: the static configuration of p2proxy-client (its private DNS zones, names and
// resolver), read from JSON whose schema is client/client_config.proto, validated, and given as
// plain structs that do not mention protobuf.
#ifndef P2PROXY_CLIENT_CLIENT_CONFIG_H_
#define P2PROXY_CLIENT_CLIENT_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/address.h"
#include "base/ip_prefix.h"

namespace p2proxy::client {

// kDefaultDnsPort is the port of an upstream given as a bare IP, and of the default listener.
inline constexpr uint16_t kDefaultDnsPort = 53;
// The limits and defaults of client_config.proto's Dns message.
inline constexpr uint32_t kDefaultCacheEntries = 10000;
inline constexpr uint32_t kMaxCacheEntries = 1000000;
inline constexpr uint32_t kDefaultTtl = 60;  // seconds
inline constexpr uint32_t kMaxTtl = 86400;   // seconds, one day
inline constexpr char kDefaultStateDir[] = "/var/lib/p2proxy/client";

// ResolverAddress is 100.96.128.1, where the resolver listens in TUN mode (DESIGN.md §3); it is
// never a resource's address.
base::IpAddress ResolverAddress();
// DefaultResourceRange is 100.96.128.0/18, the range resource addresses come from by default.
base::IpPrefix DefaultResourceRange();
// DefaultNodeRange is 100.96.0.0/17, the range node addresses come from by default.
base::IpPrefix DefaultNodeRange();
// ResolverAddressIn is the resolver's address for a resource range: its second address
// (100.96.128.1 for the default range).
base::IpAddress ResolverAddressIn(const base::IpPrefix& resource_range);

// DnsHookMode is how the machine's DNS is pointed at the resolver (dns.hook in the config).
enum class DnsHookMode { kAuto, kResolved, kResolvConf, kNone };

// DnsHookModeName gives the config's spelling: "auto", "resolved", "resolv.conf" or "none".
absl::string_view DnsHookModeName(DnsHookMode mode);

// ClientResource is one private name and its address.
struct ClientResource {
  // name: a DNS name or a wildcard ("*.apps.example.internal"), kept as written (case included),
  // inside one of the config's zones.
  std::string name;
  base::IpAddress address;  // IPv4, inside resource_range, never ResolverAddress() nor ResolverAddressIn(resource_range)
};

// ClientDnsConfig is the resolver's part of the config.
struct ClientDnsConfig {
  // listen: where the resolver listens; unset: ResolverAddress():53 in TUN mode (managed mode: ResolverAddressIn of the deployment's range).
  std::optional<base::SocketAddress> listen;
  DnsHookMode hook = DnsHookMode::kAuto;
  // upstreams: resolvers for names outside the zones, unique; empty: the machine's original
  // resolvers.
  std::vector<base::SocketAddress> upstreams;
  std::string state_dir = kDefaultStateDir;       // absolute
  uint32_t cache_entries = kDefaultCacheEntries;  // 0 disables the cache; at most 1000000
  uint32_t ttl = kDefaultTtl;                     // seconds for private answers, 1 to 86400
};

// ClientConfig is a whole validated config. A default-constructed one is the config of an
// empty file ("{}"): no private names, every default.
struct ClientConfig {
  ClientDnsConfig dns;
  // zones: private zones ("example.internal"), valid DNS names, unique ignoring case, kept as
  // written. At least one when resources is non-empty.
  std::vector<std::string> zones;
  // resources: names unique ignoring case, each inside one of zones.
  std::vector<ClientResource> resources;
  // resource_range: an IPv4 prefix; every resource address lies inside it.
  base::IpPrefix resource_range = DefaultResourceRange();
};

// ParseClientConfigJson parses and validates a config (UTF-8 JSON, at most 1 MiB) against
// client/client_config.proto, whose field comments give every default and rule. Field names may
// be written as in the .proto ("cache_entries") or in protobuf's JSON spelling ("cacheEntries");
// integers may be JSON numbers or decimal strings. The JSON must be strict, as
// config::ParseStrictJson (config/json_proto.h) describes: no comments or trailing commas, each
// field once, lists exactly where the schema has them, no null in a list.
//
// Failure: InvalidArgument with one error, starting "config: " and naming the field by its JSON
// path with indexes, e.g. "config: resources[1].address: \"100.96.0.5\" is not inside
// resource_range 100.96.128.0/18", or for a syntax error its line and column.
absl::StatusOr<ClientConfig> ParseClientConfigJson(absl::string_view text);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_CLIENT_CONFIG_H_
