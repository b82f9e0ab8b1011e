// ip_prefix.cc: IpAddress and IpPrefix.
#include "base/ip_prefix.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace p2proxy::base {

IpAddress IpAddress::V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  IpAddress ip;
  ip.family = kV4;
  ip.bytes[0] = a;
  ip.bytes[1] = b;
  ip.bytes[2] = c;
  ip.bytes[3] = d;
  return ip;
}

IpAddress IpAddress::FromBytes(absl::Span<const uint8_t> b) {
  IpAddress ip;
  if (b.size() == 4) {
    ip.family = kV4;
  } else if (b.size() == 16) {
    ip.family = kV6;
  } else {
    return ip;
  }
  std::memcpy(ip.bytes.data(), b.data(), b.size());
  return ip;
}

absl::StatusOr<IpAddress> IpAddress::Parse(absl::string_view text) {
  // inet_pton stops at a NUL: "10.0.0.0\0junk" must not pass as 10.0.0.0.
  if (text.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError("address contains a NUL byte");
  }
  std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
    ip.family = kV4;
    return ip;
  }
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
    ip.family = kV6;
    return ip;
  }
  return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an IPv4 or IPv6 address"));
}

uint32_t IpAddress::v4() const {
  if (family != kV4) return 0;
  return uint32_t{bytes[0]} << 24 | uint32_t{bytes[1]} << 16 | uint32_t{bytes[2]} << 8 | bytes[3];
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family == kV4) {
    inet_ntop(AF_INET, bytes.data(), buf, sizeof(buf));
  } else if (family == kV6) {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
  } else {
    return "none";
  }
  return buf;
}

IpPrefix IpPrefix::Make(const IpAddress& addr, uint8_t length) {
  IpPrefix p;
  p.address = addr;
  const size_t bits = addr.size() * 8;
  p.length = static_cast<uint8_t>(length > bits ? bits : length);
  for (size_t i = 0; i < addr.size(); ++i) {
    const size_t first_bit = i * 8;
    if (first_bit >= p.length) {
      p.address.bytes[i] = 0;
    } else if (p.length - first_bit < 8) {
      p.address.bytes[i] &= static_cast<uint8_t>(0xff << (8 - (p.length - first_bit)));
    }
  }
  return p;
}

absl::StatusOr<IpPrefix> IpPrefix::Parse(absl::string_view text) {
  size_t slash = text.find('/');
  auto addr = IpAddress::Parse(text.substr(0, slash));
  if (!addr.ok()) return addr.status();
  const uint32_t max_len = addr->family == IpAddress::kV4 ? 32 : 128;
  uint32_t len = max_len;
  if (slash != absl::string_view::npos) {
    absl::string_view l = text.substr(slash + 1);
    if (l.empty() || l.find_first_not_of("0123456789") != absl::string_view::npos ||
        !absl::SimpleAtoi(l, &len) || len > max_len) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "': prefix length must be 0 to ", max_len));
    }
  }
  return Make(*addr, static_cast<uint8_t>(len));
}

bool IpPrefix::Contains(const IpAddress& a) const {
  if (a.family != address.family) return false;
  return Make(a, length).address == address;
}

std::string IpPrefix::ToString() const { return absl::StrCat(address.ToString(), "/", length); }

}  // namespace p2proxy::base
