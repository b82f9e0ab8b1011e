// reverse_proxy.h: the reverse proxy for one resource: an ExchangeHandler per request (from
// either the HTTP/1.1 or the HTTP/2 server) that forwards it as HTTP/1.1 to one upstream
// through a keep-alive UpstreamPool.
//
// Request rewriting: hop-by-hop fields go (Connection and the fields it names, Keep-Alive,
// Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade but for a WebSocket upgrade), as do
// Expect (100-continue is answered by the client-facing server) and every field whose name
// starts with "x-p2proxy-" (only the identity we stamp may carry that prefix). Then the
// context's identity_headers are added, X-Forwarded-For gets the client's address appended
// (", " separated) or set, X-Forwarded-Proto and X-Forwarded-Host are set (replacing the
// client's), and Host is the request's authority. An HTTP/2 request becomes a valid HTTP/1.1
// one (Host from :authority, cookie fields joined with "; ").
//
// Responses: status and fields are copied minus hop-by-hop fields; bodies stream both ways with
// backpressure (kHighWater on either queue pauses the other side). Errors: a failed or timed
// out connect answers 502 / 504, no response head in time 504, a broken response before its
// head 502, and one broken inside its body aborts the client's exchange.
//
// WebSocket: a 101 from the upstream to an upgrade request is sent to the client, both streams
// are taken over and handed to the UpgradeCallback, which splices them (the http module sits
// below proxy/, so it does not splice itself).
#ifndef P2PROXY_HTTP_REVERSE_PROXY_H_
#define P2PROXY_HTTP_REVERSE_PROXY_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "base/address.h"
#include "base/clock.h"
#include "http/exchange.h"
#include "http/upstream.h"
#include "net/loop.h"
#include "net/stream.h"

namespace p2proxy::http {

// RequestRecord is one request, for audit.
struct RequestRecord {
  std::string method, authority, path;
  int status = 0;                                       // status sent to the client (0 if none)
  uint64_t bytes_from_client = 0, bytes_to_client = 0;  // body bytes
  int64_t start_unix_ms = 0;
  uint64_t duration_ms = 0;
  bool allowed = true;
  std::string error;  // e.g. "upstream connect: connection refused"
  bool websocket = false;
};

// Authorization is ProxyContext::authorize's answer for one request.
struct Authorization {
  // status: 0 forwards the request; any other value is answered locally with that status (403,
  // 400) and the upstream is never contacted.
  int status = 0;
  // reason: why the request was refused; it becomes the RequestRecord's |error| (audit).
  std::string reason;
  // target: when forwarding, the request target the upstream gets in place of the client's
  // (the path the policy checked, in canonical form). Empty: the client's, unchanged.
  std::string target;
};

// ProxyContext is per client connection, owned by the caller; it must outlive the handlers
// made with it (the connection's exchanges).
struct ProxyContext {
  // identity_headers are stamped on every upstream request, e.g. {"x-p2proxy-user","alice"}.
  std::vector<Header> identity_headers;
  // authorize decides each request before the upstream is contacted. Unset: everything is
  // allowed and forwarded as received.
  absl::AnyInvocable<Authorization(const RequestHead&)> authorize;
  // on_request_done runs exactly once per request, when its handler is destroyed (for a
  // WebSocket, right after the streams were handed to the UpgradeCallback: the record covers
  // the handshake, not the session).
  absl::AnyInvocable<void(const RequestRecord&)> on_request_done;
};

struct ReverseProxyOptions {
  base::SocketAddress upstream;
  PoolOptions pool;
};

// UpgradeCallback receives both sides of an upgraded connection and the bytes each had already
// sent past its HTTP head (to be written to the other side first).
using UpgradeCallback =
    absl::AnyInvocable<void(std::unique_ptr<net::Stream> client, std::vector<uint8_t> client_pending,
                            std::unique_ptr<net::Stream> upstream, std::vector<uint8_t> upstream_pending)>;

struct ReverseProxyCounters {
  uint64_t requests = 0;
  uint64_t denied = 0;        // answered locally by authorize (bad_requests included)
  uint64_t bad_requests = 0;  // of those, answered 400 (a malformed or ambiguous target)
  uint64_t upstream_errors = 0;  // answered 502/504 or aborted
  uint64_t upgrades = 0;
};

class ReverseProxy {
 public:
  // kHighWater: a queue above this many bytes pauses the side that feeds it.
  static constexpr size_t kHighWater = 256 * 1024;

  // The proxy must outlive every handler it made (it owns their upstream pool).
  ReverseProxy(net::Loop& loop, base::Clock& clock, ReverseProxyOptions options, UpgradeCallback on_upgrade);
  ~ReverseProxy();
  ReverseProxy(const ReverseProxy&) = delete;
  ReverseProxy& operator=(const ReverseProxy&) = delete;

  // Handle makes the handler for |exchange|; a Router returns it. |context| must outlive it.
  std::unique_ptr<ExchangeHandler> Handle(Exchange& exchange, ProxyContext& context);

  UpstreamPool& pool() { return pool_; }
  const ReverseProxyCounters& counters() const { return counters_; }

 private:
  friend class ProxyHandler;
  net::Loop& loop_;
  base::Clock& clock_;
  UpstreamPool pool_;
  UpgradeCallback on_upgrade_;
  ReverseProxyCounters counters_;
};

// BuildUpstreamRequest applies the request rewriting above (exposed for tests and the
// fuzzers). The upstream's target is |target| when not empty, else the request's path.
UpstreamRequest BuildUpstreamRequest(const RequestHead& request, const ConnectionInfo& connection,
                                     const std::vector<Header>& identity_headers, std::string_view target = {});
// FilterResponseHeaders copies |headers| minus hop-by-hop fields and Content-Length (Upgrade is
// kept when |upgrade|).
std::vector<Header> FilterResponseHeaders(std::vector<Header>& headers, bool upgrade);

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_REVERSE_PROXY_H_
