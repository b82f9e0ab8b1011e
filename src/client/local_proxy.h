// local_proxy.h: the client's local entry points into the overlay, for programs that cannot
// use a TUN interface (userspace mode) or should not need one: a SOCKS5 proxy (RFC 1928:
// CONNECT and UDP ASSOCIATE, host names resolved remotely from the private zones), an HTTP
// CONNECT proxy, and static port forwards (a local port that always leads to one resource).
// All listen on loopback by default and dial through an Overlay.
#ifndef P2PROXY_CLIENT_LOCAL_PROXY_H_
#define P2PROXY_CLIENT_LOCAL_PROXY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "client/overlay.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "proxy/splice.h"

namespace p2proxy::client {

// PortForward is one static forward: connections to |listen| go to |host|:|port|.
struct PortForward {
  base::SocketAddress listen;
  std::string host;  // a private name or an IPv4 address
  uint16_t port = 0;
};

// ParsePortForward reads "[LISTEN_IP:]LISTEN_PORT:HOST:PORT" (the listen IP defaults to
// 127.0.0.1), as ssh -L writes it. InvalidArgument names the part that is wrong.
absl::StatusOr<PortForward> ParsePortForward(absl::string_view text);

struct LocalProxyOptions {
  std::optional<base::SocketAddress> socks5;  // e.g. 127.0.0.1:1080; unset: no SOCKS5 proxy
  std::optional<base::SocketAddress> http;    // e.g. 127.0.0.1:8080; unset: no HTTP proxy
  std::vector<PortForward> forwards;
  // max_connections: local connections open at once (handshaking, dialing or spliced); more
  // are closed at once and counted.
  size_t max_connections = 4096;
  absl::Duration handshake_timeout = absl::Seconds(10);  // greeting to request, or the CONNECT head
  absl::Duration connect_timeout = absl::Seconds(10);    // dialing the resource
  absl::Duration udp_idle = absl::Seconds(120);          // a UDP association with no datagram either way
  size_t max_udp_associations = 256;
};

struct LocalProxyCounters {
  uint64_t accepted = 0;
  uint64_t spliced = 0;            // connections joined to a resource
  uint64_t refused_limit = 0;      // closed: max_connections reached
  uint64_t bad_handshake = 0;      // SOCKS5 or HTTP head refused (the client got the reason)
  uint64_t handshake_timeouts = 0;
  uint64_t unknown_names = 0;      // not a private name
  uint64_t dial_failures = 0;      // refused, unreachable or timed out
  uint64_t udp_associations = 0;
  uint64_t udp_datagrams_out = 0;  // client -> resource
  uint64_t udp_datagrams_in = 0;   // resource -> client
  uint64_t udp_dropped = 0;        // malformed, fragmented, unknown name, wrong source
};

class LocalProxies {
 public:
  // Start opens every listener of |options|; any that cannot be opened fails the whole start
  // with the address and the reason (e.g. the port is taken). |overlay| and |names| must
  // outlive the proxies; names may change between calls (each dial resolves anew).
  static absl::StatusOr<std::unique_ptr<LocalProxies>> Start(net::Loop& loop, Overlay& overlay,
                                                             const PrivateNames& names,
                                                             LocalProxyOptions options);
  // Destruction closes the listeners and every connection.
  ~LocalProxies();
  LocalProxies(const LocalProxies&) = delete;
  LocalProxies& operator=(const LocalProxies&) = delete;

  // The addresses actually bound (a configured port 0 picks one).
  std::optional<base::SocketAddress> socks5_address() const;
  std::optional<base::SocketAddress> http_address() const;
  std::vector<base::SocketAddress> forward_addresses() const;
  const LocalProxyCounters& counters() const { return counters_; }
  size_t open_connections() const { return sessions_.size() + splices_.size(); }

  // Internal, for the sessions (local_proxy.cc).
  class Session;
  class UdpAssociation;
  net::Loop& loop() { return loop_; }
  Overlay& overlay() { return overlay_; }
  const PrivateNames& names() const { return names_; }
  const LocalProxyOptions& options() const { return options_; }
  LocalProxyCounters& mutable_counters() { return counters_; }
  void EndSession(Session* s);
  // Join splices |local| to |remote| after writing |early| (bytes the client sent after its
  // request) to |remote|.
  void Join(std::unique_ptr<net::Stream> local, std::unique_ptr<net::Stream> remote, std::vector<uint8_t> early,
            std::string what);
  size_t udp_associations_open() const { return udp_open_; }
  void UdpOpened() { ++udp_open_; }
  void UdpClosed() { --udp_open_; }

 private:
  enum class Kind { kSocks5, kHttp, kForward };
  LocalProxies(net::Loop& loop, Overlay& overlay, const PrivateNames& names, LocalProxyOptions options);
  void Accept(Kind kind, const PortForward* forward, std::unique_ptr<net::TcpStream> conn);

  net::Loop& loop_;
  Overlay& overlay_;
  const PrivateNames& names_;
  LocalProxyOptions options_;
  std::unique_ptr<net::TcpListener> socks5_;
  std::unique_ptr<net::TcpListener> http_;
  std::vector<std::unique_ptr<net::TcpListener>> forwards_;
  std::map<Session*, std::unique_ptr<Session>> sessions_;
  std::map<proxy::Splice*, std::unique_ptr<proxy::Splice>> splices_;
  size_t udp_open_ = 0;
  LocalProxyCounters counters_;
};

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_LOCAL_PROXY_H_
