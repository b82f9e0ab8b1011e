// site_config.cc: the site's JSON config: config::ParseStrictJson (strict JSON, protobuf's JSON
// mapping into the generated message, errors naming the field's path), then the rules of
// site_config.proto (Validate).
#include "site/site_config.h"

#include <openssl/mem.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "config/json_proto.h"
#include "crypto/keys.h"
#include "crypto/x25519.h"
#include "site/site_config.pb.h"
#include "site/site_config_internal.h"

namespace p2proxy::site {
namespace {

// The generic helpers; "config" alone names this file's generated proto package.
using ::p2proxy::config::CheckPlain;
using ::p2proxy::config::ConfigError;
using ::p2proxy::config::JoinPath;
using ::p2proxy::config::ParseHostPort;
using ::p2proxy::config::ParseIpv4;
using ::p2proxy::config::Quote;

// kMaxNameLen bounds a resource name, which goes into every log line about the resource.
constexpr size_t kMaxNameLen = 64;
// kMinMtu: the smallest datagram every IPv4 host must accept (RFC 791).
constexpr uint32_t kMinMtu = 576;

// KeyWiper overwrites the key strings of a parsed message when it goes out of scope. Best
// effort: protobuf's parser made copies on the way that we cannot reach.
class KeyWiper {
 public:
  explicit KeyWiper(config::SiteConfig* message) : message_(message) {}
  ~KeyWiper() {
    Wipe(message_->mutable_wireguard()->mutable_private_key());
    for (config::Peer& peer : *message_->mutable_peers()) Wipe(peer.mutable_preshared_key());
  }
  KeyWiper(const KeyWiper&) = delete;
  KeyWiper& operator=(const KeyWiper&) = delete;

 private:
  static void Wipe(std::string* s) { OPENSSL_cleanse(s->data(), s->size()); }
  config::SiteConfig* message_;
};

// CheckLabel validates a user or role name: 1 to 64 bytes, no control characters, no ','
// (audit events join roles with commas).
absl::Status CheckLabel(const std::string& value, const std::string& path, absl::string_view what) {
  if (value.empty()) return ConfigError(path, absl::StrCat("empty (", what, ")"));
  if (value.size() > kMaxNameLen) {
    return ConfigError(path, absl::StrCat(Quote(value), " is longer than ", kMaxNameLen, " bytes"));
  }
  for (char c : value) {
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7f) {
      return ConfigError(path, absl::StrCat(Quote(value), " contains a control character"));
    }
    if (c == ',') return ConfigError(path, absl::StrCat(Quote(value), " contains ','"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ParseLabels(
    const google::protobuf::RepeatedPtrField<std::string>& in, const std::string& path,
    absl::string_view what, bool allow_star) {
  std::vector<std::string> out;
  for (int i = 0; i < in.size(); ++i) {
    const std::string item_path = absl::StrCat(path, "[", i, "]");
    if (!(allow_star && in.Get(i) == "*")) P2P_RETURN_IF_ERROR(CheckLabel(in.Get(i), item_path, what));
    for (const auto& seen : out) {
      if (seen == in.Get(i)) return ConfigError(item_path, absl::StrCat(Quote(seen), " is listed twice"));
    }
    out.push_back(in.Get(i));
  }
  return out;
}

// ParseHostname checks one https server name: DNS labels of letters, digits and '-', optionally
// one leading "*." wildcard label; stored lower case.
absl::StatusOr<std::string> ParseHostname(const std::string& in, const std::string& path) {
  std::string name = absl::AsciiStrToLower(in);
  absl::string_view rest = name;
  const bool wildcard = absl::ConsumePrefix(&rest, "*.");
  if (rest.empty() || rest.size() > 253) {
    return ConfigError(path, absl::StrCat(Quote(in), " is not a host name"));
  }
  for (absl::string_view label : absl::StrSplit(rest, '.')) {
    bool ok = !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-';
    for (char c : label) ok = ok && (absl::ascii_isalnum(c) || c == '-');
    if (!ok) {
      return ConfigError(path, absl::StrCat(Quote(in), " is not a host name",
                                            wildcard || in.find('*') == std::string::npos
                                                ? ""
                                                : " (a wildcard is allowed only as the whole leftmost label, \"*.example.internal\")"));
    }
  }
  if (wildcard && rest.find('.') == absl::string_view::npos) {
    return ConfigError(path, absl::StrCat(Quote(in), " is a wildcard over a top-level name; use at least two labels after \"*.\""));
  }
  return name;
}

absl::StatusOr<http::AccessPolicy> ValidateAccess(const config::Access& in, const std::string& path, bool https) {
  http::AccessPolicy out;
  P2P_ASSIGN_OR_RETURN(out.grant.users, ParseLabels(in.users(), JoinPath(path, "users"), "a user name or \"*\"", true));
  P2P_ASSIGN_OR_RETURN(out.grant.roles, ParseLabels(in.roles(), JoinPath(path, "roles"), "a role name", false));
  if (!https && in.paths_size() > 0) {
    return ConfigError(JoinPath(path, "paths"), "only https resources have path rules");
  }
  if (!https && in.case_insensitive_paths()) {
    return ConfigError(JoinPath(path, "case_insensitive_paths"), "only https resources have paths");
  }
  out.case_insensitive_paths = in.case_insensitive_paths();
  for (int i = 0; i < in.paths_size(); ++i) {
    const std::string rule_path = absl::StrCat(path, ".paths[", i, "]");
    const config::PathRule& r = in.paths(i);
    http::PathRule rule;
    if (r.prefix().empty() || r.prefix().front() != '/') {
      return ConfigError(JoinPath(rule_path, "prefix"),
                         r.prefix().empty() ? std::string("missing (a path prefix such as \"/admin\")")
                                            : absl::StrCat(Quote(r.prefix()), " does not start with '/'"));
    }
    if (r.prefix().find(';') != std::string::npos) {
      return ConfigError(JoinPath(rule_path, "prefix"),
                         absl::StrCat(Quote(r.prefix()), " holds ';' (requests are matched with ';' parameters removed)"));
    }
    // Requests are matched in normalized form, so a prefix that is not normalized could never
    // match what it seems to name.
    auto normal = http::NormalizePath(r.prefix(), out.case_insensitive_paths);
    if (!normal || *normal != r.prefix()) {
      return ConfigError(JoinPath(rule_path, "prefix"),
                         absl::StrCat(Quote(r.prefix()), " is not a normalized path (no escapes, '.', '..' or '//')"));
    }
    rule.prefix = r.prefix();
    // Two prefixes that cover the same paths ("/a" and "/a/", or "/a" and "/A" without case)
    // would leave the choice between their grants to the order of the list.
    const absl::string_view key = absl::StripSuffix(rule.prefix, "/");
    for (const auto& other : out.paths) {
      const absl::string_view other_key = absl::StripSuffix(other.prefix, "/");
      if (out.case_insensitive_paths ? absl::EqualsIgnoreCase(key, other_key) : key == other_key) {
        return ConfigError(JoinPath(rule_path, "prefix"),
                           other.prefix == rule.prefix
                               ? absl::StrCat(Quote(rule.prefix), " has a rule already")
                               : absl::StrCat(Quote(rule.prefix), " covers the same paths as ", Quote(other.prefix)));
      }
    }
    P2P_ASSIGN_OR_RETURN(rule.grant.users, ParseLabels(r.users(), JoinPath(rule_path, "users"), "a user name or \"*\"", true));
    P2P_ASSIGN_OR_RETURN(rule.grant.roles, ParseLabels(r.roles(), JoinPath(rule_path, "roles"), "a role name", false));
    out.paths.push_back(std::move(rule));
  }
  return out;
}

absl::StatusOr<crypto::Key> ParseKeyField(const std::string& value, const std::string& path,
                                          absl::string_view missing) {
  if (value.empty()) return ConfigError(path, missing);
  auto key = crypto::ParseKey(value);
  // ParseKey's messages never contain the key; drop their "key: " since the path says it.
  if (!key.ok()) return ConfigError(path, absl::StripPrefix(key.status().message(), "key: "));
  return key;
}

absl::StatusOr<SiteWireGuard> ValidateWireGuard(const config::WireGuard& in) {
  SiteWireGuard out;
  P2P_ASSIGN_OR_RETURN(out.private_key, ParseKeyField(in.private_key(), "wireguard.private_key",
                                                      "missing (generate one with `wg genkey`)"));
  if (in.listen_port() > 65535) {
    return ConfigError(
        "wireguard.listen_port",
        absl::StrCat(in.listen_port(), " is not a port (0-65535; 0: dial out only)"));
  }
  out.listen_port = static_cast<uint16_t>(in.listen_port());
  P2P_ASSIGN_OR_RETURN(out.address,
                       ParseIpv4(in.address(), "wireguard.address",
                                 "missing (the site's node address in the overlay, e.g. "
                                 "\"100.96.0.10\")"));
  if (in.mtu() != 0 && (in.mtu() < kMinMtu || in.mtu() > 65535)) {
    return ConfigError("wireguard.mtu", absl::StrCat(in.mtu(), " is not an MTU (", kMinMtu,
                                                     "-65535, or 0 for ", kDefaultMtu, ")"));
  }
  if (in.mtu() != 0) out.mtu = in.mtu();
  return out;
}

absl::StatusOr<SitePeer> ValidatePeer(const config::Peer& in, const std::string& path) {
  SitePeer out;
  const std::string key_path = JoinPath(path, "public_key");
  if (in.public_key().empty()) {
    return ConfigError(key_path, "missing (the peer's key, as `wg pubkey` prints it)");
  }
  auto key = crypto::ParsePublicKey(in.public_key());
  if (!key.ok()) return ConfigError(key_path, absl::StripPrefix(key.status().message(), "key: "));
  out.public_key = *key;
  for (int i = 0; i < in.allowed_ips_size(); ++i) {
    const std::string item_path = absl::StrCat(path, ".allowed_ips[", i, "]");
    P2P_RETURN_IF_ERROR(CheckPlain(in.allowed_ips(i), item_path, "an IP prefix"));
    auto prefix = base::IpPrefix::Parse(in.allowed_ips(i));
    if (!prefix.ok()) return ConfigError(item_path, prefix.status().message());
    out.allowed_ips.push_back(*prefix);
  }
  if (!in.endpoint().empty()) {
    P2P_ASSIGN_OR_RETURN(out.endpoint,
                         ParseHostPort(in.endpoint(), JoinPath(path, "endpoint"), ""));
  }
  if (in.persistent_keepalive() > 65535) {
    return ConfigError(
        JoinPath(path, "persistent_keepalive"),
        absl::StrCat(in.persistent_keepalive(), " is not a number of seconds (0-65535; 0: off)"));
  }
  out.persistent_keepalive = static_cast<uint16_t>(in.persistent_keepalive());
  if (!in.preshared_key().empty()) {
    P2P_ASSIGN_OR_RETURN(out.preshared_key,
                         ParseKeyField(in.preshared_key(), JoinPath(path, "preshared_key"), ""));
  }
  if (!in.user().empty()) P2P_RETURN_IF_ERROR(CheckLabel(in.user(), JoinPath(path, "user"), "a user name"));
  out.user = in.user();
  if (out.user.empty() && in.roles_size() > 0) {
    return ConfigError(JoinPath(path, "roles"), "given without a user; set user too");
  }
  P2P_ASSIGN_OR_RETURN(out.roles, ParseLabels(in.roles(), JoinPath(path, "roles"), "a role name", false));
  return out;
}

absl::StatusOr<SiteResource> ValidateResource(const config::Resource& in, const std::string& path,
                                              const base::IpAddress& node_address) {
  SiteResource out;
  const std::string name_path = JoinPath(path, "name");
  if (in.name().empty()) {
    return ConfigError(name_path, "missing (a label for logs, e.g. \"vault\")");
  }
  if (in.name().size() > kMaxNameLen) {
    return ConfigError(name_path,
                       absl::StrCat(Quote(in.name()), " is longer than ", kMaxNameLen, " bytes"));
  }
  for (char c : in.name()) {
    if (static_cast<uint8_t>(c) < 0x20 || c == 0x7f) {
      return ConfigError(name_path,
                         absl::StrCat(Quote(in.name()), " contains a control character"));
    }
  }
  out.name = in.name();

  const std::string address_path = JoinPath(path, "address");
  P2P_ASSIGN_OR_RETURN(out.address,
                       ParseIpv4(in.address(), address_path,
                                 "missing (the resource's address in the overlay, e.g. "
                                 "\"100.96.128.20\")"));
  if (out.address == node_address) {
    return ConfigError(address_path,
                       absl::StrCat(out.address.ToString(),
                                    " is the site's own node address (wireguard.address); give "
                                    "the resource an address of its own"));
  }

  const std::string port_path = JoinPath(path, "port");
  if (in.port() == 0) return ConfigError(port_path, "missing or 0 (the port to serve, 1-65535)");
  if (in.port() > 65535) {
    return ConfigError(port_path, absl::StrCat(in.port(), " is not a port (1-65535)"));
  }
  out.port = static_cast<uint16_t>(in.port());

  const std::string protocol_path = JoinPath(path, "protocol");
  if (in.protocol() == "tcp") {
    out.protocol = Protocol::kTcp;
  } else if (in.protocol() == "udp") {
    out.protocol = Protocol::kUdp;
  } else if (in.protocol() == "https") {
    out.protocol = Protocol::kHttps;
  } else if (in.protocol().empty()) {
    return ConfigError(protocol_path, "missing (\"tcp\", \"udp\" or \"https\")");
  } else {
    return ConfigError(protocol_path, absl::StrCat(Quote(in.protocol()),
                                                   " is not a protocol (\"tcp\", \"udp\" or "
                                                   "\"https\", lower case)"));
  }
  const bool https = out.protocol == Protocol::kHttps;

  if (in.target() == kInProcessTarget) {
    if (out.protocol == Protocol::kUdp) {
      return ConfigError(JoinPath(path, "target"),
                         "\"in-process\" serves tcp and https resources only (this one is udp)");
    }
    out.in_process = true;
  } else {
    P2P_ASSIGN_OR_RETURN(out.target, ParseHostPort(in.target(), JoinPath(path, "target"),
                                                   "missing (where to forward, IP:port, e.g. "
                                                   "\"10.0.10.15:8080\", or \"in-process\")"));
  }

  if (in.udp_idle_timeout_seconds() != 0) {
    if (out.protocol != Protocol::kUdp) {
      return ConfigError(JoinPath(path, "udp_idle_timeout_seconds"),
                         "only udp resources have one (this one is tcp)");
    }
    out.udp_idle_timeout = absl::Seconds(in.udp_idle_timeout_seconds());
  }

  P2P_ASSIGN_OR_RETURN(out.access, ValidateAccess(in.access(), JoinPath(path, "access"), https));
  if (!https) {
    // The TLS fields mean nothing on a tcp or udp resource: name the first one given.
    const char* stray = in.hostnames_size() > 0         ? "hostnames"
                        : !in.certificate_file().empty() ? "certificate_file"
                        : !in.key_file().empty()         ? "key_file"
                        : in.default_certificate()       ? "default_certificate"
                        : in.redirect_port() != 0        ? "redirect_port"
                                                         : nullptr;
    if (stray != nullptr) {
      return ConfigError(JoinPath(path, stray), absl::StrCat("only https resources have one (this one is ",
                                                             ProtocolName(out.protocol), ")"));
    }
    return out;
  }
  if (in.hostnames_size() == 0) {
    return ConfigError(JoinPath(path, "hostnames"),
                       "none given (the TLS server names to answer, e.g. [\"vault.example.internal\"])");
  }
  for (int i = 0; i < in.hostnames_size(); ++i) {
    const std::string item_path = absl::StrCat(path, ".hostnames[", i, "]");
    P2P_ASSIGN_OR_RETURN(std::string name, ParseHostname(in.hostnames(i), item_path));
    for (const auto& seen : out.hostnames) {
      if (seen == name) return ConfigError(item_path, absl::StrCat(Quote(in.hostnames(i)), " is listed twice"));
    }
    out.hostnames.push_back(std::move(name));
  }
  if (in.certificate_file().empty()) {
    return ConfigError(JoinPath(path, "certificate_file"), "missing (a PEM file with the certificate chain, leaf first)");
  }
  if (in.key_file().empty()) {
    return ConfigError(JoinPath(path, "key_file"), "missing (a PEM file with the certificate's private key)");
  }
  out.certificate_file = in.certificate_file();
  out.key_file = in.key_file();
  out.default_certificate = in.default_certificate();
  if (in.redirect_port() > 65535) {
    return ConfigError(JoinPath(path, "redirect_port"), absl::StrCat(in.redirect_port(), " is not a port (1-65535; 0: off)"));
  }
  if (in.redirect_port() == in.port()) {
    return ConfigError(JoinPath(path, "redirect_port"), absl::StrCat(in.redirect_port(), " is the resource's own port"));
  }
  out.redirect_port = static_cast<uint16_t>(in.redirect_port());
  return out;
}

// TcpPorts: the overlay TCP ports a resource listens on.
std::vector<uint16_t> TcpPorts(const SiteResource& r) {
  std::vector<uint16_t> out;
  if (r.protocol == Protocol::kUdp) return out;
  out.push_back(r.port);
  if (r.redirect_port != 0) out.push_back(r.redirect_port);
  return out;
}

std::string PeerPath(size_t i) { return absl::StrCat("peers[", i, "]"); }
std::string ResourcePath(size_t i) { return absl::StrCat("resources[", i, "]"); }

// ValidateLimits applies the defaults of site_config.proto's Limits and checks each range.
absl::StatusOr<SiteLimits> ValidateLimits(const config::Limits& in) {
  SiteLimits out;
  auto take = [](uint32_t value, const char* field, uint32_t max, auto apply) -> absl::Status {
    if (value == 0) return absl::OkStatus();
    if (value > max) {
      return ConfigError(JoinPath("limits", field),
                         absl::StrCat(value, " is too large (1-", max, ", or 0 for the default)"));
    }
    apply(value);
    return absl::OkStatus();
  };
  P2P_RETURN_IF_ERROR(take(in.max_tcp_connections_per_peer(), "max_tcp_connections_per_peer", 4096,
                           [&](uint32_t v) { out.max_tcp_connections_per_peer = v; }));
  P2P_RETURN_IF_ERROR(take(in.max_udp_sessions_per_peer(), "max_udp_sessions_per_peer", 1024,
                           [&](uint32_t v) { out.max_udp_sessions_per_peer = v; }));
  P2P_RETURN_IF_ERROR(take(in.max_http2_streams_per_peer(), "max_http2_streams_per_peer", 65536,
                           [&](uint32_t v) { out.max_http2_streams_per_peer = v; }));
  P2P_RETURN_IF_ERROR(take(in.http2_window_budget_mib(), "http2_window_budget_mib", 65536,
                           [&](uint32_t v) { out.http2_window_budget_bytes = size_t{v} << 20; }));
  P2P_RETURN_IF_ERROR(take(in.tls_handshake_timeout_seconds(), "tls_handshake_timeout_seconds", 300,
                           [&](uint32_t v) { out.tls_handshake_timeout = absl::Seconds(v); }));
  P2P_RETURN_IF_ERROR(take(in.first_request_timeout_seconds(), "first_request_timeout_seconds", 300,
                           [&](uint32_t v) { out.first_request_timeout = absl::Seconds(v); }));
  return out;
}

absl::StatusOr<SiteConfig> Validate(const config::SiteConfig& in) {
  SiteConfig out;
  P2P_ASSIGN_OR_RETURN(out.wireguard, ValidateWireGuard(in.wireguard()));
  const crypto::PublicKey own_key = crypto::PublicFromPrivate(out.wireguard.private_key);

  if (in.peers().empty()) {
    return ConfigError("peers",
                       "none given (the site accepts packets only from its peers; add "
                       "at least one)");
  }
  for (int i = 0; i < in.peers_size(); ++i) {
    const size_t index = static_cast<size_t>(i);
    P2P_ASSIGN_OR_RETURN(SitePeer peer, ValidatePeer(in.peers(i), PeerPath(index)));
    const std::string key_path = JoinPath(PeerPath(index), "public_key");
    if (peer.public_key == own_key) {
      return ConfigError(key_path,
                         "the site's own public key (of wireguard.private_key); a site "
                         "is not its own peer");
    }
    for (size_t j = 0; j < out.peers.size(); ++j) {
      if (out.peers[j].public_key == peer.public_key) {
        return ConfigError(key_path, absl::StrCat("same key as ", PeerPath(j)));
      }
    }
    out.peers.push_back(std::move(peer));
  }

  for (int i = 0; i < in.resources_size(); ++i) {
    const size_t index = static_cast<size_t>(i);
    P2P_ASSIGN_OR_RETURN(
        SiteResource resource,
        ValidateResource(in.resources(i), ResourcePath(index), out.wireguard.address));
    for (size_t j = 0; j < out.resources.size(); ++j) {
      const SiteResource& other = out.resources[j];
      if (other.name == resource.name) {
        return ConfigError(
            JoinPath(ResourcePath(index), "name"),
            absl::StrCat(Quote(resource.name), " is already the name of ", ResourcePath(j)));
      }
      if (other.address == resource.address && other.port == resource.port &&
          other.protocol == resource.protocol) {
        return ConfigError(
            ResourcePath(index),
            absl::StrCat("duplicate of ", ResourcePath(j), " (", resource.address.ToString(), ":",
                         resource.port, "/", ProtocolName(resource.protocol), ")"));
      }
      // https rides TCP, and a redirect takes a second TCP port: compare what is listened on.
      for (uint16_t port : TcpPorts(resource)) {
        for (uint16_t other_port : TcpPorts(other)) {
          if (other.address == resource.address && port == other_port) {
            return ConfigError(ResourcePath(index),
                               absl::StrCat("uses ", resource.address.ToString(), ":", port, "/tcp, as ",
                                            ResourcePath(j), " does"));
          }
        }
      }
    }
    out.resources.push_back(std::move(resource));
  }
  out.audit_log = in.audit_log().empty() ? "-" : in.audit_log();
  P2P_ASSIGN_OR_RETURN(out.limits, ValidateLimits(in.limits()));
  return out;
}

}  // namespace

absl::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kUdp: return "udp";
    case Protocol::kHttps: return "https";
    case Protocol::kTcp: break;
  }
  return "tcp";
}

absl::StatusOr<SiteConfig> ValidateSiteConfigMessage(const config::SiteConfig& message) { return Validate(message); }

absl::StatusOr<SiteConfig> ParseSiteConfigJson(absl::string_view json) {
  config::SiteConfig message;
  KeyWiper wiper(&message);
  P2P_RETURN_IF_ERROR(::p2proxy::config::ParseStrictJson(json, &message));
  return Validate(message);
}

}  // namespace p2proxy::site
