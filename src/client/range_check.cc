// range_check.cc: ReadSystemRoutes, ReadSystemAddresses and CheckRanges.
#include "client/range_check.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "base/errno_text.h"

namespace p2proxy::client {
namespace {

// The columns of /proc/net/route (net/ipv4/fib_trie.c, fib_route_seq_show).
constexpr size_t kRouteFields = 11;
constexpr size_t kIfaceField = 0;
constexpr size_t kDestinationField = 1;
constexpr size_t kGatewayField = 2;
constexpr size_t kMaskField = 7;

// ParseHex32 reads exactly 8 hex digits.
bool ParseHex32(absl::string_view text, uint32_t* out) {
  if (text.size() != 8) return false;
  uint32_t v = 0;
  for (char c : text) {
    uint32_t digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return false;
    }
    v = v << 4 | digit;
  }
  *out = v;
  return true;
}

// KernelWordToAddress: the kernel prints a __be32 as a host-order number, so the address bytes
// are the number's bytes in memory; on a little-endian host "0100A8C0" is 192.168.0.1.
base::IpAddress KernelWordToAddress(uint32_t word) {
  uint8_t b[4];
  std::memcpy(b, &word, sizeof(b));
  return base::IpAddress::FromBytes(b);
}

// MaskLength gives the length of a contiguous netmask (host byte order), or -1.
int MaskLength(uint32_t mask) {
  const uint32_t inverted = ~mask;
  if ((inverted & (inverted + 1)) != 0) return -1;  // ones after a zero
  int len = 0;
  for (uint32_t m = mask; m != 0; m <<= 1) ++len;
  return len;
}

absl::Status LineError(absl::string_view path, size_t line_no, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path, " line ", line_no, ": ", problem));
}

absl::StatusOr<SystemRoute> ParseRouteLine(absl::string_view path, size_t line_no, absl::string_view line) {
  const std::vector<absl::string_view> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (f.size() != kRouteFields) {
    return LineError(path, line_no, absl::StrCat("expected ", kRouteFields, " fields, got ", f.size()));
  }
  const absl::string_view iface = f[kIfaceField];
  if (iface.size() >= IFNAMSIZ) {
    return LineError(path, line_no, absl::StrCat("interface name '", iface, "' is longer than ", IFNAMSIZ - 1,
                                                 " characters"));
  }
  uint32_t dest = 0, gateway = 0, mask = 0;
  if (!ParseHex32(f[kDestinationField], &dest)) {
    return LineError(path, line_no, absl::StrCat("destination '", f[kDestinationField], "' is not 8 hex digits"));
  }
  if (!ParseHex32(f[kGatewayField], &gateway)) {
    return LineError(path, line_no, absl::StrCat("gateway '", f[kGatewayField], "' is not 8 hex digits"));
  }
  if (!ParseHex32(f[kMaskField], &mask)) {
    return LineError(path, line_no, absl::StrCat("mask '", f[kMaskField], "' is not 8 hex digits"));
  }
  const base::IpAddress mask_addr = KernelWordToAddress(mask);
  const int len = MaskLength(mask_addr.v4());
  if (len < 0) {
    return LineError(path, line_no, absl::StrCat("mask ", mask_addr.ToString(), " is not contiguous"));
  }
  SystemRoute route;
  route.prefix = base::IpPrefix::Make(KernelWordToAddress(dest), static_cast<uint8_t>(len));
  route.interface = std::string(iface);
  route.is_default = len == 0;
  return route;
}

// Label names a setting in prose: "resource_range" is "resource range".
std::string Label(const OverlayRange& r) {
  if (r.setting.empty()) return "range";
  return absl::StrReplaceAll(r.setting, {{"_", " "}});
}

// Remedy ends a message: the caller's fix, or else changing the other side.
std::string Remedy(const OverlayRange& r, absl::string_view other_side) {
  if (r.fix.empty()) return std::string(other_side);
  return absl::StrCat(r.fix, ", or ", other_side);
}

bool SameFamily(const base::IpPrefix& a, const base::IpPrefix& b) { return a.address.family == b.address.family; }

// Covers: |outer| contains all of |inner| (equal included).
bool Covers(const base::IpPrefix& outer, const base::IpPrefix& inner) {
  return SameFamily(outer, inner) && outer.length <= inner.length && outer.Contains(inner.address);
}

bool Ignored(absl::string_view interface, absl::string_view own_interface) {
  return !own_interface.empty() && interface == own_interface;
}

// RouteChecked: CheckRanges looks at |route| (it is not ours, and not on lo).
bool RouteChecked(const SystemRoute& route, absl::string_view own_interface) {
  return !Ignored(route.interface, own_interface) && route.interface != "lo";
}

void CheckRoute(const OverlayRange& r, const base::IpPrefix& range, const SystemRoute& route, RangeCheck* out) {
  const base::IpPrefix theirs = base::IpPrefix::Make(route.prefix.address, route.prefix.length);
  if (route.is_default || theirs.length == 0) return;  // everything else beats a default route
  const std::string what = absl::StrCat(Label(r), " ", range.ToString());
  const std::string dev = route.interface;
  if (Covers(range, theirs)) {
    out->refusals.push_back(absl::StrCat(what, " overlaps route ", theirs.ToString(), " dev ", dev,
                                         ": addresses in ", theirs.ToString(), " would go to ", dev,
                                         " instead of the overlay; ", Remedy(r, "move that network")));
  } else if (Covers(theirs, range)) {
    // Strictly less specific: the overlay's longer prefix wins for |range|, and only the other
    // network loses it.
    out->warnings.push_back(absl::StrCat(what, " lies inside route ", theirs.ToString(), " dev ", dev,
                                         ": the overlay's more specific routes take ", range.ToString(),
                                         " from ", dev, ", which can no longer reach addresses in it; if ",
                                         dev, " needs them, ", Remedy(r, "move that network")));
  }
}

void CheckAddress(const OverlayRange& r, const base::IpPrefix& range, const SystemAddress& addr,
                  const std::vector<SystemRoute>& routes, absl::string_view own_interface, RangeCheck* out) {
  if (!SameFamily(range, addr.prefix)) return;
  const std::string what = absl::StrCat(Label(r), " ", range.ToString());
  const std::string ip = addr.prefix.address.ToString();
  const std::string shown = absl::StrCat(ip, "/", addr.prefix.length);  // host bits kept
  if (range.Contains(addr.prefix.address)) {
    out->refusals.push_back(absl::StrCat(what, " contains address ", shown, " of ", addr.interface,
                                         ": packets to ", ip,
                                         " would stay on this machine instead of going through the overlay; ",
                                         Remedy(r, "move that address")));
    return;
  }
  const base::IpPrefix network = base::IpPrefix::Make(addr.prefix.address, addr.prefix.length);
  if (network.length == 0 || !Covers(network, range)) return;
  // The kernel adds a route for the network of an address; CheckRoute has said it already.
  for (const SystemRoute& route : routes) {
    if (route.interface == addr.interface && RouteChecked(route, own_interface) &&
        base::IpPrefix::Make(route.prefix.address, route.prefix.length) == network) {
      return;
    }
  }
  out->warnings.push_back(absl::StrCat(what, " lies inside network ", network.ToString(), " of ", addr.interface,
                                       " (address ", shown, "): the overlay's more specific routes take ",
                                       range.ToString(), " from ", addr.interface,
                                       ", which can no longer reach addresses in it; if ", addr.interface,
                                       " needs them, ", Remedy(r, "move that network")));
}

}  // namespace

absl::StatusOr<std::vector<SystemRoute>> ReadSystemRoutes(absl::string_view path) {
  const std::string path_str(path);
  std::ifstream in(path_str);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", path, ": ", base::ErrnoText(errno)));
  std::vector<SystemRoute> routes;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no > kMaxRouteLines) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": more than ", kMaxRouteLines, " lines; not a route table"));
    }
    if (line_no == 1) {
      if (!absl::StartsWith(line, "Iface")) {
        return LineError(path, line_no, "expected the header line starting with 'Iface'");
      }
      continue;
    }
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    auto route = ParseRouteLine(path, line_no, line);
    if (!route.ok()) return route.status();
    routes.push_back(std::move(*route));
  }
  if (in.bad()) return absl::UnavailableError(absl::StrCat("cannot read ", path, ": read error"));
  if (line_no == 0) return absl::InvalidArgumentError(absl::StrCat(path, " is empty: no header line"));
  return routes;
}

absl::StatusOr<std::vector<SystemAddress>> ReadSystemAddresses() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return absl::UnavailableError(absl::StrCat("getifaddrs: ", base::ErrnoText(errno)));
  std::unique_ptr<ifaddrs, decltype(&freeifaddrs)> owner(list, &freeifaddrs);
  std::vector<SystemAddress> out;
  for (const ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != AF_INET || ifa->ifa_name == nullptr) continue;
    sockaddr_in sin;
    std::memcpy(&sin, ifa->ifa_addr, sizeof(sin));
    uint8_t len = 32;
    if (ifa->ifa_netmask != nullptr && ifa->ifa_netmask->sa_family == AF_INET) {
      sockaddr_in mask;
      std::memcpy(&mask, ifa->ifa_netmask, sizeof(mask));
      const base::IpAddress m = KernelWordToAddress(mask.sin_addr.s_addr);
      // A netmask is contiguous on Linux; count its leading ones regardless.
      len = 0;
      for (uint32_t bits = m.v4(); (bits & 0x80000000u) != 0; bits <<= 1) ++len;
    }
    SystemAddress a;
    a.prefix.address = KernelWordToAddress(sin.sin_addr.s_addr);  // s_addr: network order in memory
    a.prefix.length = len;  // not IpPrefix::Make: the host bits are the address
    a.interface = ifa->ifa_name;
    out.push_back(std::move(a));
  }
  return out;
}

RangeCheck CheckRanges(const std::vector<OverlayRange>& ranges, const std::vector<SystemRoute>& routes,
                       const std::vector<SystemAddress>& addrs, absl::string_view own_interface) {
  RangeCheck out;
  for (const OverlayRange& r : ranges) {
    const base::IpPrefix range = base::IpPrefix::Make(r.prefix.address, r.prefix.length);
    for (const SystemRoute& route : routes) {
      if (RouteChecked(route, own_interface)) CheckRoute(r, range, route, &out);
    }
    for (const SystemAddress& addr : addrs) {
      if (Ignored(addr.interface, own_interface)) continue;
      CheckAddress(r, range, addr, routes, own_interface, &out);
    }
  }
  return out;
}

}  // namespace p2proxy::client
