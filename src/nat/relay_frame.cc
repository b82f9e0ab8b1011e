// relay_frame.cc: relay frames (relay_frame.h).
#include "nat/relay_frame.h"

#include <netinet/in.h>

#include <cstring>

namespace p2proxy::nat {

namespace {

base::IpAddress V4At(const uint8_t* p) { return base::IpAddress::V4(p[0], p[1], p[2], p[3]); }

bool UsableNode(const base::IpAddress& a) {
  return a.family == base::IpAddress::kV4 && !(a.bytes[0] == 0 && a.bytes[1] == 0 && a.bytes[2] == 0 && a.bytes[3] == 0);
}

}  // namespace

bool IsRelayFrame(base::ByteSpan d) {
  return d.size() >= 4 && d[0] == kRelayType && d[1] == 0 && d[2] == 0 && d[3] == 0;
}

bool ParseRelayFrame(base::ByteSpan d, RelayFrame* out) {
  if (!IsRelayFrame(d) || d.size() < kRelayHeaderSize + kMinRelayPayload ||
      d.size() > kRelayHeaderSize + kMaxRelayPayload) {
    return false;
  }
  RelayFrame f;
  f.dst = V4At(d.data() + 4);
  f.src = V4At(d.data() + 8);
  f.payload = d.subspan(kRelayHeaderSize);
  if (!UsableNode(f.dst) || !UsableNode(f.src) || f.dst == f.src) return false;
  // One WireGuard message: type 1-4 in a little-endian word whose other bytes are zero.
  if (f.payload[0] < 1 || f.payload[0] > 4 || f.payload[1] != 0 || f.payload[2] != 0 || f.payload[3] != 0) return false;
  *out = f;
  return true;
}

void WriteRelayHeader(const base::IpAddress& dst, const base::IpAddress& src, uint8_t* out) {
  out[0] = kRelayType;
  out[1] = out[2] = out[3] = 0;
  std::memcpy(out + 4, dst.bytes.data(), 4);
  std::memcpy(out + 8, src.bytes.data(), 4);
}

base::SocketAddress RelayEndpoint(const base::IpAddress& node) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(1);
  sa.sin6_addr.s6_addr[0] = 0x01;  // 100::/64
  std::memcpy(&sa.sin6_addr.s6_addr[12], node.bytes.data(), 4);
  return base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&sa));
}

bool RelayNodeOf(const base::SocketAddress& endpoint, base::IpAddress* node) {
  if (endpoint.family() != AF_INET6) return false;
  const auto* sa = reinterpret_cast<const sockaddr_in6*>(endpoint.sa());
  const uint8_t* b = sa->sin6_addr.s6_addr;
  if (b[0] != 0x01 || ntohs(sa->sin6_port) != 1) return false;
  for (int i = 1; i < 12; ++i) {
    if (b[i] != 0) return false;
  }
  *node = V4At(b + 12);
  return true;
}

}  // namespace p2proxy::nat
