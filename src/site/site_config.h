// site_config.h: the static-mode configuration of p2proxy-site (its WireGuard interface, peers
// and resources), read from JSON whose schema is site/site_config.proto, validated, and given
// as plain structs that do not mention protobuf.
#ifndef P2PROXY_SITE_SITE_CONFIG_H_
#define P2PROXY_SITE_SITE_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "base/ip_prefix.h"
#include "crypto/secret.h"
#include "http/access.h"

namespace p2proxy::site {

// kDefaultMtu is the tunnel MTU when the config gives none: 1500 minus WireGuard's overhead
// over IPv6 (40 IPv6 + 8 UDP + 32 WireGuard), as wg-quick uses.
inline constexpr size_t kDefaultMtu = 1420;
// kDefaultUdpIdleTimeout is how long an idle UDP session lives when the config gives none.
inline constexpr absl::Duration kDefaultUdpIdleTimeout = absl::Seconds(60);

// SiteWireGuard is the site's own WireGuard interface.
struct SiteWireGuard {
  crypto::Key private_key;
  uint16_t listen_port = 0;  // 0: no fixed port; the site only dials out
  base::IpAddress address;   // the site's node address in the overlay; always IPv4
  size_t mtu = kDefaultMtu;
};

// SitePeer is one WireGuard peer the site accepts packets from.
struct SitePeer {
  crypto::PublicKey public_key{};
  std::vector<base::IpPrefix> allowed_ips;  // canonical (host bits cleared), config order
  std::optional<base::SocketAddress> endpoint;
  uint16_t persistent_keepalive = 0;  // seconds; 0: off
  std::optional<crypto::Key> preshared_key;
  std::string user;                // empty: no user, allowed nowhere
  std::vector<std::string> roles;  // only with a user
};

enum class Protocol { kTcp, kUdp, kHttps };

// kInProcessTarget: the target that names the embedding program instead of a LAN address.
inline constexpr absl::string_view kInProcessTarget = "in-process";

// ProtocolName gives "tcp", "udp" or "https", the config's spelling.
absl::string_view ProtocolName(Protocol protocol);

// SiteResource is one service: connections (kTcp) or datagrams (kUdp) to address:port in the
// overlay are forwarded to target; kHttps ends TLS at the site and proxies each HTTP request to
// target.
struct SiteResource {
  std::string name;         // non-empty, unique, no control characters
  base::IpAddress address;  // always IPv4, never the site's own address
  uint16_t port = 0;        // 1 to 65535
  Protocol protocol = Protocol::kTcp;
  base::SocketAddress target;  // an IP literal and a port of 1 to 65535 (unset when in_process)
  // in_process: the target is "in-process": the program that embeds the site serves the
  // resource through InProcessTargets (site/in_process.h), listening on |port|. tcp and https.
  bool in_process = false;
  // udp_idle_timeout: for kUdp, how long a session lives without traffic. For kTcp it is unused
  // and stays at the default (setting it on a tcp resource is a config error).
  absl::Duration udp_idle_timeout = kDefaultUdpIdleTimeout;
  http::AccessPolicy access;  // empty: nobody (deny by default)
  // kHttps only:
  std::vector<std::string> hostnames;  // lower-cased; exact or "*.zone"
  // The certificate comes from files (static mode: certificate_file, key_file, reread on
  // SIGHUP) or from memory (managed mode: the server pushes certificate_pem and key_pem, which
  // never touch the disk, invariant I6). Exactly one pair is set.
  std::string certificate_file;
  std::string key_file;
  std::string certificate_pem;
  crypto::SecretString key_pem;
  bool default_certificate = false;
  uint16_t redirect_port = 0;  // 0: no plain-HTTP redirect
};

// SiteLimits: what one peer may hold at the site, and deadlines for peers that stall (the
// Limits message of site_config.proto, with its defaults).
struct SiteLimits {
  size_t max_tcp_connections_per_peer = 256;
  size_t max_udp_sessions_per_peer = 256;
  size_t max_http2_streams_per_peer = 256;
  size_t http2_window_budget_bytes = size_t{256} << 20;
  absl::Duration tls_handshake_timeout = absl::Seconds(10);
  absl::Duration first_request_timeout = absl::Seconds(10);
};

// SiteConfig is a whole validated config. It holds the private key: keep it no longer than
// needed (crypto::Key wipes itself when destroyed).
struct SiteConfig {
  SiteWireGuard wireguard;
  std::vector<SitePeer> peers;          // at least one; public keys unique
  std::vector<SiteResource> resources;  // names unique; (address, port, protocol) unique
  std::string audit_log = "-";          // a file path, or "-" for stdout
  SiteLimits limits;
};

// ParseSiteConfigJson parses and validates a config (UTF-8 JSON, at most 1 MiB) against
// site/site_config.proto, whose field comments give every default and rule. Field names may be
// written as in the .proto ("listen_port") or in protobuf's JSON spelling ("listenPort");
// integers may be JSON numbers or decimal strings, as protobuf's JSON mapping allows.
//
// Stricter than protobuf's JSON parser: the text must be RFC 8259 JSON (no comments, trailing
// commas, single quotes or bare keys; a UTF-8 byte order mark is skipped), a field may appear
// only once in an object (in either spelling), a list must be given exactly where the schema
// has a repeated field, and a list may not contain null.
//
// Failure: InvalidArgument with one error, starting "config: " and naming the field by its JSON
// path with indexes, e.g. "config: resources[2].port: 70000 is not a port (1-65535)", or for a
// syntax error its line and column. Keys are never part of a message: not the key fields, not
// a value of the wrong type, and not any value that looks like a key (a run of 32 base64
// characters); other bad values are repeated, quoted and cut to 64 bytes.
absl::StatusOr<SiteConfig> ParseSiteConfigJson(absl::string_view json);

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_SITE_CONFIG_H_
