// ip_prefix.h: IP addresses without ports (IpAddress) and CIDR prefixes (IpPrefix), for
// allowed IPs, routes and resource ranges.
#ifndef P2PROXY_BASE_IP_PREFIX_H_
#define P2PROXY_BASE_IP_PREFIX_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace p2proxy::base {

// IpAddress is an IPv4 or IPv6 address in network byte order (IPv4 uses the first 4 bytes).
struct IpAddress {
  enum Family : uint8_t { kNone = 0, kV4 = 4, kV6 = 6 };
  Family family = kNone;
  std::array<uint8_t, 16> bytes{};

  static IpAddress V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
  // FromBytes takes 4 (IPv4) or 16 (IPv6) bytes; anything else gives kNone.
  static IpAddress FromBytes(absl::Span<const uint8_t> b);
  static absl::StatusOr<IpAddress> Parse(absl::string_view text);
  size_t size() const { return family == kV4 ? 4 : family == kV6 ? 16 : 0; }
  absl::Span<const uint8_t> span() const { return absl::MakeConstSpan(bytes.data(), size()); }
  uint32_t v4() const;  // host byte order; 0 unless kV4
  std::string ToString() const;
  friend bool operator==(const IpAddress& a, const IpAddress& b) = default;
};

// IpPrefix is an address and a prefix length, kept canonical (host bits zero).
struct IpPrefix {
  IpAddress address;
  uint8_t length = 0;

  // Parse reads "10.0.0.0/24", "fd00::/8", or a bare address (a host prefix, /32 or /128).
  // Host bits set ("10.0.0.1/24") are cleared, as wg does.
  static absl::StatusOr<IpPrefix> Parse(absl::string_view text);
  static IpPrefix Make(const IpAddress& addr, uint8_t length);
  bool Contains(const IpAddress& a) const;
  std::string ToString() const;
  friend bool operator==(const IpPrefix& a, const IpPrefix& b) = default;
};

}  // namespace p2proxy::base

#endif  // P2PROXY_BASE_IP_PREFIX_H_
