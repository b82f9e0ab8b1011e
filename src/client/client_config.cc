// client_config.cc: the client's JSON config: config::ParseStrictJson (strict JSON, protobuf's
// JSON mapping, errors naming the field's path), then the rules of client_config.proto.
#include "client/client_config.h"

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "client/client_config.pb.h"
#include "client/client_config_internal.h"
#include "config/json_proto.h"

namespace p2proxy::client {
namespace {

// The generic helpers; "config" alone names this file's generated proto package.
using ::p2proxy::config::CheckPlain;
using ::p2proxy::config::ConfigError;
using ::p2proxy::config::IndexPath;
using ::p2proxy::config::JoinPath;
using ::p2proxy::config::ParseHostPort;
using ::p2proxy::config::ParseIpv4;
using ::p2proxy::config::Quote;

// RFC 1035 2.3.4: 255 octets on the wire is 253 characters as text, without the trailing dot.
constexpr size_t kMaxNameLen = 253;
constexpr size_t kMaxLabelLen = 63;
// PATH_MAX on Linux counts the terminating NUL.
constexpr size_t kMaxPathLen = 4095;

// NameProblem says why |name| (non-empty) is not a host name, or gives "" if it is one.
// |wildcard| allows "*" as the whole first label. Host names (RFC 1123 2.1) rather than any DNS
// name: the client's names are typed by people and go into systemd-resolved's routing domains,
// so escapes, spaces and underscores are mistakes to report, not names to serve.
std::string NameProblem(absl::string_view name, bool wildcard) {
  if (absl::EndsWith(name, ".")) return "it ends with '.' (write it without the trailing dot)";
  if (name.size() > kMaxNameLen) return absl::StrCat("longer than ", kMaxNameLen, " characters");
  const std::vector<absl::string_view> labels = absl::StrSplit(name, '.');
  for (size_t i = 0; i < labels.size(); ++i) {
    const absl::string_view label = labels[i];
    if (label.empty()) return "it has an empty label ('..' or a leading '.')";
    if (label == "*") {
      if (!wildcard) return "a zone cannot be a wildcard";
      if (i != 0) return "'*' may only be the first label (\"*.apps.example.internal\")";
      if (labels.size() == 1) return "a wildcard needs a name after \"*.\"";
      continue;
    }
    if (label.size() > kMaxLabelLen) {
      return absl::StrCat("a label is longer than ", kMaxLabelLen, " characters");
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(c) && c != '-') {
        return wildcard ? "labels hold letters, digits and '-' only ('*' only as a whole first "
                          "label)"
                        : "labels hold letters, digits and '-' only";
      }
    }
    if (label.front() == '-' || label.back() == '-') return "a label starts or ends with '-'";
  }
  // An all-numeric last label is what an IPv4 address looks like; no top-level domain is one.
  bool numeric = true;
  for (char c : labels.back()) numeric = numeric && absl::ascii_isdigit(c);
  if (numeric) return "it looks like an IP address";
  return "";
}

absl::Status CheckName(absl::string_view name, absl::string_view path, bool wildcard) {
  const std::string problem = NameProblem(name, wildcard);
  if (problem.empty()) return absl::OkStatus();
  return ConfigError(path, absl::StrCat(Quote(name), " is not a DNS name: ", problem));
}

// InZone: |name| is |zone| or below it, ignoring ASCII case.
bool InZone(absl::string_view name, absl::string_view zone) {
  if (name.size() == zone.size()) return absl::EqualsIgnoreCase(name, zone);
  return name.size() > zone.size() && name[name.size() - zone.size() - 1] == '.' &&
         absl::EndsWithIgnoreCase(name, zone);
}

absl::StatusOr<DnsHookMode> ParseHook(absl::string_view value) {
  for (DnsHookMode mode :
       {DnsHookMode::kAuto, DnsHookMode::kResolved, DnsHookMode::kResolvConf, DnsHookMode::kNone}) {
    if (value == DnsHookModeName(mode)) return mode;
  }
  return ConfigError("dns.hook", absl::StrCat(Quote(value),
                                              " is not a hook (\"auto\", \"resolved\", "
                                              "\"resolv.conf\" or \"none\", lower case)"));
}

// ParseUpstream reads "IP" (port 53), "IPv4:port" or "[IPv6]:port".
absl::StatusOr<base::SocketAddress> ParseUpstream(const std::string& value,
                                                  const std::string& path) {
  P2P_RETURN_IF_ERROR(CheckPlain(value, path, "an address (IP or IP:port)"));
  if (auto ip = base::IpAddress::Parse(value); ip.ok()) {
    return base::SocketAddress::FromIp(value, kDefaultDnsPort);
  }
  if (value.find_first_of(":[") == std::string::npos) {
    return ConfigError(path, absl::StrCat(Quote(value),
                                          " is not an IP address (IP, IPv4:port or "
                                          "[IPv6]:port; host names are not supported)"));
  }
  return ParseHostPort(value, path, "");
}

absl::Status CheckStateDir(const std::string& value) {
  constexpr absl::string_view kPath = "dns.state_dir";
  if (value.size() > kMaxPathLen) {
    return ConfigError(kPath, absl::StrCat("longer than ", kMaxPathLen, " bytes"));
  }
  for (char c : value) {
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7f) {
      return ConfigError(kPath, absl::StrCat(Quote(value), " contains a control character"));
    }
  }
  if (value.front() != '/') {
    return ConfigError(kPath, absl::StrCat(Quote(value), " is not an absolute path"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ClientDnsConfig> ValidateDns(const config::Dns& in) {
  ClientDnsConfig out;
  if (!in.hook().empty()) {
    P2P_ASSIGN_OR_RETURN(out.hook, ParseHook(in.hook()));
  }
  if (!in.listen().empty()) {
    P2P_ASSIGN_OR_RETURN(out.listen, ParseHostPort(in.listen(), "dns.listen", ""));
    if (out.hook == DnsHookMode::kResolvConf && out.listen->port() != kDefaultDnsPort) {
      return ConfigError("dns.listen",
                         absl::StrCat("port ", out.listen->port(),
                                      ": /etc/resolv.conf can only name port 53 (dns.hook is "
                                      "\"resolv.conf\")"));
    }
  }
  // The resolver never forwards to itself: that would loop until the query timed out.
  const base::SocketAddress self =
      out.listen.has_value()
          ? *out.listen
          : *base::SocketAddress::FromIp(ResolverAddress().ToString(), kDefaultDnsPort);
  for (int i = 0; i < in.upstreams_size(); ++i) {
    const size_t index = static_cast<size_t>(i);
    const std::string path = IndexPath("dns.upstreams", index);
    P2P_ASSIGN_OR_RETURN(base::SocketAddress upstream, ParseUpstream(in.upstreams(i), path));
    if (upstream == self) {
      return ConfigError(path, absl::StrCat(upstream.ToString(),
                                            " is the resolver's own address (dns.listen); an "
                                            "upstream must be another resolver"));
    }
    for (size_t j = 0; j < out.upstreams.size(); ++j) {
      if (out.upstreams[j] == upstream) {
        return ConfigError(
            path, absl::StrCat(upstream.ToString(), " is already ", IndexPath("dns.upstreams", j)));
      }
    }
    out.upstreams.push_back(upstream);
  }
  if (!in.state_dir().empty()) {
    P2P_RETURN_IF_ERROR(CheckStateDir(in.state_dir()));
    out.state_dir = in.state_dir();
  }
  if (in.has_cache_entries()) {
    if (in.cache_entries() > kMaxCacheEntries) {
      return ConfigError("dns.cache_entries", absl::StrCat(in.cache_entries(), " is too many (0-",
                                                           kMaxCacheEntries, "; 0: no cache)"));
    }
    out.cache_entries = in.cache_entries();
  }
  if (in.has_ttl()) {
    if (in.ttl() == 0 || in.ttl() > kMaxTtl) {
      return ConfigError("dns.ttl",
                         absl::StrCat(in.ttl(), " is not a TTL (1-", kMaxTtl, " seconds)"));
    }
    out.ttl = in.ttl();
  }
  return out;
}

absl::StatusOr<base::IpPrefix> ParseResourceRange(const std::string& value) {
  constexpr absl::string_view kPath = "resource_range";
  if (value.empty()) return DefaultResourceRange();
  P2P_RETURN_IF_ERROR(CheckPlain(value, kPath, "an IPv4 prefix"));
  const size_t slash = value.find('/');
  if (slash == std::string::npos) {
    return ConfigError(
        kPath, absl::StrCat(Quote(value), " has no prefix length (e.g. \"100.96.128.0/18\")"));
  }
  auto prefix = base::IpPrefix::Parse(value);
  if (!prefix.ok()) return ConfigError(kPath, absl::StrCat(Quote(value), " is not an IPv4 prefix"));
  if (prefix->address.family != base::IpAddress::kV4) {
    return ConfigError(
        kPath, absl::StrCat(Quote(value), " is not an IPv4 prefix (resource addresses are IPv4)"));
  }
  auto written = base::IpAddress::Parse(absl::string_view(value).substr(0, slash));
  if (!written.ok() || *written != prefix->address) {
    return ConfigError(kPath, absl::StrCat(Quote(value), " has host bits set (did you mean ",
                                           prefix->ToString(), "?)"));
  }
  return *prefix;
}

absl::StatusOr<ClientResource> ValidateResource(const config::Resource& in, const std::string& path,
                                                const ClientConfig& config) {
  ClientResource out;
  const std::string name_path = JoinPath(path, "name");
  if (in.name().empty()) {
    return ConfigError(name_path,
                       "missing (a DNS name inside one of zones, e.g. \"vault.example.internal\")");
  }
  P2P_RETURN_IF_ERROR(CheckName(in.name(), name_path, /*wildcard=*/true));
  bool inside = false;
  for (const std::string& zone : config.zones) inside = inside || InZone(in.name(), zone);
  if (!inside) {
    return ConfigError(name_path, absl::StrCat(Quote(in.name()),
                                               " is not inside any of zones (add its zone "
                                               "there)"));
  }
  out.name = in.name();

  const std::string address_path = JoinPath(path, "address");
  P2P_ASSIGN_OR_RETURN(out.address, ParseIpv4(in.address(), address_path,
                                              "missing (the name's address in the overlay, e.g. "
                                              "\"100.96.128.20\")"));
  if (!config.resource_range.Contains(out.address)) {
    return ConfigError(
        address_path, absl::StrCat("\"", out.address.ToString(), "\" is not inside resource_range ",
                                   config.resource_range.ToString()));
  }
  if (out.address == ResolverAddress() || out.address == ResolverAddressIn(config.resource_range)) {
    return ConfigError(address_path,
                       absl::StrCat(out.address.ToString(),
                                    " is the resolver's address; give the resource another"));
  }
  if (config.dns.listen.has_value() && out.address.ToString() == config.dns.listen->IpString()) {
    return ConfigError(address_path,
                       absl::StrCat(out.address.ToString(),
                                    " is the resolver's address (dns.listen); give the resource "
                                    "another"));
  }
  return out;
}

absl::StatusOr<ClientConfig> Validate(const config::ClientConfig& in) {
  ClientConfig out;
  P2P_ASSIGN_OR_RETURN(out.dns, ValidateDns(in.dns()));

  P2P_RETURN_IF_ERROR(ValidateZoneList(in.zones(), "zones", &out));
  P2P_ASSIGN_OR_RETURN(out.resource_range, ParseResourceRange(in.resource_range()));
  P2P_RETURN_IF_ERROR(ValidateResourceList(in.resources(), "resources", "zones", &out));
  return out;
}

}  // namespace

absl::Status ValidateZoneList(const google::protobuf::RepeatedPtrField<std::string>& zones,
                              absl::string_view zones_path, ClientConfig* out) {
  out->zones.clear();
  for (int i = 0; i < zones.size(); ++i) {
    const size_t index = static_cast<size_t>(i);
    const std::string path = IndexPath(zones_path, index);
    const std::string& zone = zones.Get(i);
    if (zone.empty()) return ConfigError(path, "empty (a private zone, e.g. \"example.internal\")");
    P2P_RETURN_IF_ERROR(CheckName(zone, path, /*wildcard=*/false));
    for (size_t j = 0; j < out->zones.size(); ++j) {
      if (absl::EqualsIgnoreCase(out->zones[j], zone)) {
        return ConfigError(path, absl::StrCat(Quote(zone), " is already ", IndexPath(zones_path, j)));
      }
    }
    out->zones.push_back(zone);
  }
  return absl::OkStatus();
}

absl::Status ValidateResourceList(const google::protobuf::RepeatedPtrField<config::Resource>& resources,
                                  absl::string_view resources_path, absl::string_view zones_path,
                                  ClientConfig* out) {
  out->resources.clear();
  if (!resources.empty() && out->zones.empty()) {
    return ConfigError(zones_path,
                       "none given (each resource's name must be inside a private zone; add one, "
                       "e.g. \"example.internal\")");
  }
  for (int i = 0; i < resources.size(); ++i) {
    const size_t index = static_cast<size_t>(i);
    const std::string path = IndexPath(resources_path, index);
    P2P_ASSIGN_OR_RETURN(ClientResource resource, ValidateResource(resources.Get(i), path, *out));
    for (size_t j = 0; j < out->resources.size(); ++j) {
      if (absl::EqualsIgnoreCase(out->resources[j].name, resource.name)) {
        return ConfigError(JoinPath(path, "name"),
                           absl::StrCat(Quote(resource.name), " is already the name of ",
                                        IndexPath(resources_path, j)));
      }
    }
    out->resources.push_back(std::move(resource));
  }
  return absl::OkStatus();
}

base::IpAddress ResolverAddress() { return base::IpAddress::V4(100, 96, 128, 1); }

base::IpPrefix DefaultResourceRange() {
  return base::IpPrefix::Make(base::IpAddress::V4(100, 96, 128, 0), 18);
}

base::IpPrefix DefaultNodeRange() { return base::IpPrefix::Make(base::IpAddress::V4(100, 96, 0, 0), 17); }

base::IpAddress ResolverAddressIn(const base::IpPrefix& resource_range) {
  const uint32_t second = resource_range.address.v4() + 1;
  return base::IpAddress::V4(static_cast<uint8_t>(second >> 24), static_cast<uint8_t>(second >> 16),
                             static_cast<uint8_t>(second >> 8), static_cast<uint8_t>(second));
}

absl::string_view DnsHookModeName(DnsHookMode mode) {
  switch (mode) {
    case DnsHookMode::kAuto:
      return "auto";
    case DnsHookMode::kResolved:
      return "resolved";
    case DnsHookMode::kResolvConf:
      return "resolv.conf";
    case DnsHookMode::kNone:
      return "none";
  }
  return "auto";
}

absl::StatusOr<ClientConfig> ParseClientConfigJson(absl::string_view text) {
  config::ClientConfig message;
  P2P_RETURN_IF_ERROR(::p2proxy::config::ParseStrictJson(text, &message));
  return Validate(message);
}

}  // namespace p2proxy::client
