// in_process.h: resources served by the program that embeds the site. A resource whose target
// is "in-process" has no LAN address: each connection the site accepts for it (after the access
// check) becomes one end of a socketpair whose other end the site keeps as the "target", and the
// listener registered for the resource's port receives the first end, a plain file descriptor,
// with the peer's identity. For https resources the site still ends TLS and proxies HTTP/1.1
// to the listener (identity in X-P2proxy-User/-Roles on each request).
//
// Loop-thread only; the public API (src/api/site_api.cc) hands connections across threads.
#ifndef P2PROXY_SITE_IN_PROCESS_H_
#define P2PROXY_SITE_IN_PROCESS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "net/loop.h"
#include "net/tcp.h"

namespace p2proxy::site {

// InProcessPeer: who a connection handed to a listener comes from.
struct InProcessPeer {
  std::string resource;            // the resource's name
  std::string user;                // empty for https (the identity travels per request)
  std::vector<std::string> roles;
  std::string address;             // the peer's overlay address and port
  uint16_t port = 0;
};

class InProcessTargets {
 public:
  // Accept takes ownership of |fd| (a connected AF_UNIX stream socket, close-on-exec).
  using Accept = std::function<void(int fd, const InProcessPeer& peer)>;

  // kMaxListeners bounds the ports one program may listen on.
  static constexpr size_t kMaxListeners = 1024;

  // Listen registers |accept| for connections to in-process resources on |port|. Fails with
  // AlreadyExists if the port has a listener, InvalidArgument for port 0.
  absl::Status Listen(uint16_t port, Accept accept);
  void Unlisten(uint16_t port);
  bool listening(uint16_t port) const { return listeners_.count(port) != 0; }

  // Connect makes the pair: the listener on |port| receives one end with |peer|; the other end
  // is returned as the site's stream. Unavailable (as a refused LAN target would be) when no
  // listener is on |port|.
  absl::StatusOr<std::unique_ptr<net::TcpStream>> Connect(net::Loop& loop, uint16_t port,
                                                          const InProcessPeer& peer);

  uint64_t handed() const { return handed_; }

 private:
  std::map<uint16_t, Accept> listeners_;
  uint64_t handed_ = 0;
};

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_IN_PROCESS_H_
