// address.h: an IPv4 or IPv6 socket address, parsed from and printed as "1.2.3.4:5" or "[::1]:5".
#ifndef P2PROXY_BASE_ADDRESS_H_
#define P2PROXY_BASE_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace p2proxy::base {

class SocketAddress {
 public:
  SocketAddress() { storage_.ss_family = AF_UNSPEC; }
  // FromSockaddr copies |sa|; an unsupported family gives an unspecified address.
  static SocketAddress FromSockaddr(const sockaddr* sa);
  // Parse reads "IPv4:port" or "[IPv6]:port". Errors name what is wrong with |text|.
  static absl::StatusOr<SocketAddress> Parse(absl::string_view text);
  // FromIp builds an address from a literal IP (no port syntax) and a port.
  static absl::StatusOr<SocketAddress> FromIp(absl::string_view ip, uint16_t port);

  int family() const { return storage_.ss_family; }
  bool valid() const { return family() == AF_INET || family() == AF_INET6; }
  uint16_t port() const;
  void set_port(uint16_t port);
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t sa_len() const;
  // ToString gives "1.2.3.4:5" / "[::1]:5"; IpString gives the address alone.
  std::string ToString() const;
  std::string IpString() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b);

 private:
  sockaddr_storage storage_{};
};

// Datagram is one UDP payload (a view, not owned) and the address it came from or goes to.
struct Datagram {
  absl::Span<const uint8_t> data;
  SocketAddress addr;
};

// LooksLikeHostName: letters, digits, dots and dashes with at least one letter. An IPv4
// literal has no letters and an IPv6 literal has colons, so this matches only what would need
// DNS; config parsers use it to say "host names are not resolved" rather than "not an address".
bool LooksLikeHostName(absl::string_view host);

}  // namespace p2proxy::base

#endif  // P2PROXY_BASE_ADDRESS_H_
