// wg_quick_config.h: the wg-quick(8) configuration file (/etc/wireguard/NAME.conf), parsed
// into one struct so a node can be brought up from the same file a user would give wg-quick.
#ifndef P2PROXY_WG_WG_QUICK_CONFIG_H_
#define P2PROXY_WG_WG_QUICK_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/address.h"
#include "base/ip_prefix.h"
#include "crypto/secret.h"

namespace p2proxy::wg {

// WgQuickPeer is one [Peer] section.
struct WgQuickPeer {
  crypto::PublicKey public_key{};
  std::optional<crypto::Key> preshared_key;
  std::vector<base::IpPrefix> allowed_ips;  // canonical (host bits cleared), file order
  std::optional<base::SocketAddress> endpoint;
  uint16_t persistent_keepalive = 0;  // seconds; 0: off
};

// WgQuickConfig is a whole file.
struct WgQuickConfig {
  crypto::Key private_key;
  // addresses are the interface's own addresses, so unlike allowed IPs they keep their host
  // bits: "Address = 10.0.0.2/24" gives 10.0.0.2 with length 24 (IpPrefix::Contains does not
  // apply to these). A bare address gets /32 or /128, as `ip address add` does.
  std::vector<base::IpPrefix> addresses;
  std::optional<uint16_t> listen_port;
  std::optional<uint32_t> mtu;
  // dns: DNS servers and search domains as written, for the caller to interpret.
  std::vector<std::string> dns;
  uint32_t fwmark = 0;  // 0: none
  std::vector<WgQuickPeer> peers;
  // warnings: one line per key that wg-quick understands but p2proxy ignores (Table, PreUp,
  // PostUp, PreDown, PostDown, SaveConfig), e.g. "line 6: [Interface] PostUp: wg-quick only,
  // ignored". They never contain the ignored value.
  std::vector<std::string> warnings;
};

// ParseWgQuickConfig parses wg-quick's INI dialect: "[Interface]" once, then any number of
// "[Peer]" sections; "Key = Value" lines; '#' starts a comment anywhere; whitespace around
// keys, values and list items is ignored; section and key names are case-insensitive; CRLF
// line ends and a UTF-8 byte order mark are accepted. Keys are wg's base64. Lists (Address,
// DNS, AllowedIPs) are comma-separated and may repeat over several lines, which append. Other
// keys may appear once per section.
//
// [Interface]: PrivateKey (required), Address, ListenPort, MTU (68 to 65535), DNS, FwMark
// (number, 0x-hex, or "off"), and the ignored wg-quick keys above.
// [Peer]: PublicKey (required, unique across peers), PresharedKey, AllowedIPs, Endpoint (an IP
// literal and port; host names are not resolved yet), PersistentKeepalive (seconds or "off").
//
// Failure: InvalidArgument naming the line, section and key, e.g.
// "line 7: [Peer] AllowedIPs: '10.0.0.0/33': prefix length must be 0 to 32". Key material
// (PrivateKey, PresharedKey, PublicKey values, or a line that might be a pasted key) is never
// part of a message.
absl::StatusOr<WgQuickConfig> ParseWgQuickConfig(absl::string_view text);

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_WG_QUICK_CONFIG_H_
