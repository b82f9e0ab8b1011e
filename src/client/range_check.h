// range_check.h: the client's start-up check of its overlay ranges against the machine's own
// routes and interface addresses (another VPN on 100.64.0.0/10, a Docker network), so a clash is
// refused with a message naming both sides and the setting that fixes it, or warned about where
// the overlay still works. Reading the system (ReadSystemRoutes, ReadSystemAddresses) is kept
// apart from the pure rule (CheckRanges), which the unit tests drive with made-up tables.
#ifndef P2PROXY_CLIENT_RANGE_CHECK_H_
#define P2PROXY_CLIENT_RANGE_CHECK_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/ip_prefix.h"

namespace p2proxy::client {

// SystemRoute is one IPv4 route of the main routing table.
struct SystemRoute {
  base::IpPrefix prefix;  // canonical (host bits zero)
  std::string interface;  // "*" for a route without a device (unreachable, blackhole)
  bool is_default = false;  // prefix is 0.0.0.0/0
};

// SystemAddress is one IPv4 address of an interface.
struct SystemAddress {
  // prefix is the address itself with its netmask length ("192.168.1.5/24"): NOT canonical,
  // the host bits are the address. base::IpPrefix::Make(prefix.address, prefix.length) is the
  // interface's network.
  base::IpPrefix prefix;
  std::string interface;
};

// kMaxRouteLines bounds how much of a route file ReadSystemRoutes reads (header included).
inline constexpr size_t kMaxRouteLines = 100000;

// ReadSystemRoutes parses |path| in the format of /proc/net/route (the IPv4 main table): a
// header line, then one line of 11 whitespace-separated fields per route, Destination and Mask
// as 8 hex digits of the address in the kernel's byte order (little-endian on x86 and arm).
// Fails if the file cannot be read, has more than kMaxRouteLines lines, or has a malformed line;
// the error names the path and the 1-based line number. Blank lines are skipped.
absl::StatusOr<std::vector<SystemRoute>> ReadSystemRoutes(absl::string_view path = "/proc/net/route");

// ReadSystemAddresses lists the IPv4 addresses of all interfaces (getifaddrs), lo included.
// Fails only if getifaddrs does.
absl::StatusOr<std::vector<SystemAddress>> ReadSystemAddresses();

// OverlayRange is one range the client routes into the overlay, and how a user changes it.
struct OverlayRange {
  std::string setting;  // "resource_range", "node_range": named in messages as "resource range"
  base::IpPrefix prefix;
  // fix is what to do about a clash, as a clause that ends a message, e.g. "choose another range
  // with resource_range (client config) / the server's --resource_range".
  std::string fix;
};

// RangeCheck is the outcome: any refusal means the client should not start; warnings are
// logged. Each message is one line.
struct RangeCheck {
  std::vector<std::string> refusals;
  std::vector<std::string> warnings;
};

// CheckRanges compares each of |ranges| with |routes| and |addrs|, ignoring everything on
// |own_interface| (the client's TUN) and routes on "lo":
//   - a default route: nothing (the overlay's more specific routes win);
//   - a route equal to or inside an overlay range: a refusal (its addresses would leave through
//     the other interface);
//   - a route strictly less specific than an overlay range: a warning (the overlay wins for its
//     range; the other network loses those addresses);
//   - an interface address inside an overlay range: a refusal (packets to it would stay local);
//   - an interface whose network strictly contains an overlay range (its address outside): a
//     warning, unless a route with that same network and interface already gave one.
// Messages come in the order of |ranges|, then routes, then addresses.
RangeCheck CheckRanges(const std::vector<OverlayRange>& ranges, const std::vector<SystemRoute>& routes,
                       const std::vector<SystemAddress>& addrs, absl::string_view own_interface);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_RANGE_CHECK_H_
