// sni_router.h: routes TLS connections by the SNI of their ClientHello to a target stream,
// without decrypting (public TLS passthrough). The target sees the client's own bytes,
// optionally after a PROXY v2 header.
//
// Per connection: Accept -> peek (buffer the client's bytes until tls::ClientHelloPeek is done)
// -> Decide -> dial -> write [PROXY header] + buffered bytes to the target -> Splice until
// either side finishes. Every way out is a named counter.
//
// Timers (one per connection): the hello timer (Options::hello_timeout_ms) runs from Accept
// until the ClientHello is complete; the dial timer (Options::dial_timeout_ms) from then until
// the target stream arrives; the linger timer (Options::linger_ms) bounds how long a refused
// client may take to read its alert and close.
#ifndef P2PROXY_PROXY_SNI_ROUTER_H_
#define P2PROXY_PROXY_SNI_ROUTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "base/address.h"
#include "base/log.h"
#include "net/loop.h"
#include "net/stream.h"
#include "tls/client_hello.h"

namespace p2proxy::proxy {

// ConnectionMeta describes an accepted connection, for the decision (and its PROXY header).
struct ConnectionMeta {
  base::SocketAddress peer;   // the client
  base::SocketAddress local;  // where it connected to
};

// Route says how to reach the target of one connection.
struct Route {
  using DialDone = absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<net::Stream>>)>;
  using Dial = absl::AnyInvocable<void(DialDone)>;
  // dial opens the target stream (host TCP, lwIP, anything) and calls its argument exactly
  // once, now or later, on the loop's thread. The router may be gone by then: a late stream is
  // closed.
  Dial dial;
  // proxy_header (e.g. from EncodeProxyV2) is written to the target before the client's bytes;
  // empty: none.
  std::vector<uint8_t> proxy_header;
};

// DialTcp is a Route::Dial over kernel TCP to |to|.
Route::Dial DialTcp(net::Loop& loop, const base::SocketAddress& to);

class SniRouter {
 public:
  struct Options {
    size_t max_hello_bytes = tls::kDefaultMaxClientHelloLen;  // handshake bytes the peek accepts
    uint32_t hello_timeout_ms = 10000;
    uint32_t dial_timeout_ms = 10000;
    uint32_t linger_ms = 2000;
  };
  // Decide picks the route for a ClientHello, or nullopt: the client then gets a fatal
  // unrecognized_name alert. It runs on the loop's thread, inside the client's read callback; it
  // must not call back into the router. A Route without |dial| counts as no route.
  using Decide = absl::AnyInvocable<std::optional<Route>(const tls::ClientHelloInfo& hello,
                                                         const ConnectionMeta& meta)>;

  // Counters: one outcome per accepted connection (accepted = routed + no_route + not_tls +
  // too_large + timeouts + aborted + dial_failed + still active), and per routed one, at most
  // one of completed / splice_errors.
  struct Counters {
    uint64_t accepted = 0;
    uint64_t routed = 0;         // target dialed; the splice started
    uint64_t no_route = 0;       // Decide said no: alert 112 sent
    uint64_t not_tls = 0;        // the peek refused the bytes (not a TLS ClientHello)
    uint64_t too_large = 0;      // more than the buffer cap arrived without a whole hello
    uint64_t timeouts = 0;       // no whole ClientHello within hello_timeout_ms
    uint64_t aborted = 0;        // the client ended or failed before its splice started
    uint64_t dial_failed = 0;    // the dial reported an error or took over dial_timeout_ms
    uint64_t completed = 0;      // a splice finished cleanly (both directions ended)
    uint64_t splice_errors = 0;  // a splice ended with an error (reset, write failure)
  };

  SniRouter(net::Loop& loop, Decide decide, Options options);
  SniRouter(net::Loop& loop, Decide decide);
  // ~SniRouter closes every connection it still holds, in whatever phase.
  ~SniRouter();
  SniRouter(const SniRouter&) = delete;
  SniRouter& operator=(const SniRouter&) = delete;

  // Accept takes over |client| (a fresh connection: nothing read from it yet) and routes it.
  void Accept(std::unique_ptr<net::Stream> client, ConnectionMeta meta);

  const Counters& counters() const { return counters_; }
  // active is the number of connections held: peeking, dialing, draining or spliced.
  size_t active() const { return conns_.size(); }

 private:
  class Conn;
  friend class Conn;
  // Remove drops |conn| from the table and hands it to the loop to destroy after the callback.
  void Remove(Conn* conn);

  net::Loop& loop_;
  Decide decide_;
  Options options_;
  Counters counters_;
  base::LogRateLimiter log_limiter_;  // refusals are per connection: rate-limited
  absl::flat_hash_map<Conn*, std::unique_ptr<Conn>> conns_;
};

}  // namespace p2proxy::proxy

#endif  // P2PROXY_PROXY_SNI_ROUTER_H_
