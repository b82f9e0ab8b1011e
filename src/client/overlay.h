// overlay.h: how the client's local proxies reach the overlay: private names to resource
// addresses (PrivateNames), and TCP streams and UDP sockets to those addresses (Overlay),
// either through the userspace stack (userspace mode) or through the kernel, whose routes send
// them into the TUN interface (TUN mode).
#ifndef P2PROXY_CLIENT_OVERLAY_H_
#define P2PROXY_CLIENT_OVERLAY_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/address.h"
#include "base/bytes.h"
#include "client/client_config.h"
#include "net/loop.h"
#include "net/stream.h"
#include "stack/netstack.h"

namespace p2proxy::client {

// PrivateNames answers "which resource address is this name" from the private zones and
// resources the client knows (its config, or the server's last snapshot).
class PrivateNames {
 public:
  // Set replaces the names (validated: ParseClientConfigJson or ClientConfigFromSnapshot).
  void Set(const std::vector<std::string>& zones, const std::vector<ClientResource>& resources);
  // SetRoutable decides which IPv4 literals Resolve accepts: those the tunnel routes (a peer's
  // allowed IPs). Unset: every IPv4 literal.
  void SetRoutable(std::function<bool(const base::IpAddress&)> routable) { routable_ = std::move(routable); }

  // Resolve gives the address of |host|: an IPv4 literal as it is (InvalidArgument if the
  // tunnel does not route it: the proxies are not a way out to anywhere else; an IPv6 literal:
  // the overlay is IPv4); a name, ignoring case and a
  // trailing dot, by an exact resource name and else by the longest matching wildcard
  // ("*.apps.example.internal" matches "a.apps.example.internal" and "b.a.apps..."). NotFound
  // says which: a private zone without that name, or a name outside every private zone (the
  // overlay only holds private resources).
  absl::StatusOr<base::IpAddress> Resolve(absl::string_view host) const;

  size_t size() const { return exact_.size() + wildcard_.size(); }
  const std::vector<ClientResource>& resources() const { return resources_; }

 private:
  std::function<bool(const base::IpAddress&)> routable_;
  std::vector<std::string> zones_;  // lower case
  std::vector<ClientResource> resources_;
  std::vector<std::pair<std::string, base::IpAddress>> exact_;     // lower case, sorted
  std::vector<std::pair<std::string, base::IpAddress>> wildcard_;  // ".suffix", longest first
};

// OverlayUdp is one UDP socket inside the overlay (a SOCKS5 UDP association's).
class OverlayUdp {
 public:
  virtual ~OverlayUdp() = default;
  // SendTo sends one datagram; false if it was dropped (no buffer, no route).
  virtual bool SendTo(base::ByteSpan data, const base::IpAddress& to, uint16_t port) = 0;
};

class Overlay {
 public:
  using ConnectFn = absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<net::Stream>>)>;
  using RecvFn = absl::AnyInvocable<void(base::ByteSpan data, const base::IpAddress& from, uint16_t port)>;
  virtual ~Overlay() = default;
  // DialTcp connects to |addr|:|port| inside the overlay; |done| runs once, on a later turn.
  virtual void DialTcp(const base::IpAddress& addr, uint16_t port, ConnectFn done) = 0;
  // OpenUdp opens a UDP socket whose datagrams from the overlay go to |recv|.
  virtual absl::StatusOr<std::unique_ptr<OverlayUdp>> OpenUdp(RecvFn recv) = 0;
};

// StackOverlay dials through the userspace stack, from the node address.
std::unique_ptr<Overlay> StackOverlay(stack::NetStack& stack);
// KernelOverlay dials kernel sockets; the TUN's routes carry them into the overlay.
std::unique_ptr<Overlay> KernelOverlay(net::Loop& loop);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_OVERLAY_H_
