// upstream.h: the HTTP/1.1 client side towards one upstream (a target on the site's LAN), with
// a keep-alive pool. An UpstreamExchange is one request/response on a pooled or new connection:
// it sends the request head and a streamed body (Content-Length, or chunked when the length is
// unknown), parses the response (1xx skipped, HEAD/204/304 without body, close-delimited
// bodies), streams the body back with backpressure, and gives the connection back to the pool
// only when the exchange ended cleanly and keep-alive holds.
//
// Retry: a request sent on a reused connection that fails before any response byte arrives (the
// upstream closed an idle connection just as we wrote) is sent again once on a new connection,
// if its method is idempotent and the body sent so far (at most kMaxReplayBytes) was kept.
//
// Timers: connect_timeout_ms bounds the TCP connect; response_header_timeout_ms runs from the
// end of the request (or from sending a bodiless one) to the response head. Idle pooled
// connections are closed after idle_timeout_ms, or as soon as the upstream closes or sends
// anything on them.
#ifndef P2PROXY_HTTP_UPSTREAM_H_
#define P2PROXY_HTTP_UPSTREAM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/address.h"
#include "http/exchange.h"
#include "http/h1_parser.h"
#include "net/loop.h"
#include "net/stream.h"
#include "net/tcp.h"
#include "net/timer.h"

namespace p2proxy::http {

struct PoolOptions {
  size_t max_idle = 256;                      // idle keep-alive connections kept
  uint32_t idle_timeout_ms = 30000;           // an idle connection is closed after this
  uint32_t connect_timeout_ms = 5000;
  uint32_t response_header_timeout_ms = 60000;
  size_t max_response_header_bytes = 64 * 1024;
  // connect, if set, makes the pool's connections instead of a TCP connect to the target (the
  // site's in-process targets); it calls its callback once, like net::TcpStream::Connect.
  std::function<void(net::TcpStream::ConnectCallback)> connect;
};

// UpstreamRequest is the request as it goes upstream; the reverse proxy has already rewritten
// its fields. |headers| must not hold Host or framing fields (Content-Length,
// Transfer-Encoding); the client writes those.
struct UpstreamRequest {
  std::string method;
  std::string target;  // origin-form: "/a?b"
  std::string host;
  std::vector<Header> headers;
  // content_length >= 0: sent with Content-Length. -1: chunked, unless |no_body|.
  int64_t content_length = -1;
  bool no_body = false;  // no body and no framing field (a GET)
  bool upgrade = false;  // a WebSocket upgrade: a 101 is expected and allowed
};

// UpstreamResponse is a final response head as received (names lower-case, hop-by-hop fields
// still in).
struct UpstreamResponse {
  int status = 0;
  int version = 11;
  std::vector<Header> headers;
  int64_t content_length = -1;
  bool end_stream = false;  // no body follows (HEAD, 204, 304, Content-Length: 0, 101)
};

enum class UpstreamError {
  kConnect,         // the TCP connect failed
  kConnectTimeout,  // ... or did not finish in connect_timeout_ms
  kHeaderTimeout,   // no response head within response_header_timeout_ms
  kReset,           // the connection closed or failed before a complete response head
  kResetInBody,     // ... or inside the response body
  kBadResponse,     // the response could not be parsed
  kBadRequest,      // the request could not be sent (a field holds CR, LF or NUL; a body
                    // shorter than its Content-Length)
};

struct UpstreamCounters {
  uint64_t requests = 0;
  uint64_t connects = 0;          // new connections attempted
  uint64_t connect_failures = 0;  // failed or timed out
  uint64_t reused = 0;            // requests sent on a pooled connection
  uint64_t retries = 0;
  uint64_t released = 0;          // connections given back to the pool
  uint64_t idle_expired = 0;      // idle connections closed by idle_timeout_ms or max_idle
  uint64_t idle_lost = 0;         // idle connections the upstream closed (or wrote on)
};

class UpstreamPool;
class UpstreamConn;

class UpstreamExchange final : public net::DeferredDeletable, private H1Parser::Visitor {
 public:
  // kMaxReplayBytes: body bytes kept so that a failed reused connection can be retried.
  static constexpr size_t kMaxReplayBytes = 64 * 1024;

  // Delegate receives the exchange's events, never from inside a call into the exchange. After
  // OnResponseEnd or OnUpstreamError nothing more arrives. From inside them the delegate may
  // destroy the exchange only through Loop::DeferDelete.
  class Delegate {
   public:
    virtual ~Delegate() = default;
    // OnResponseHead: the final head (or a 101 for an upgrade request).
    virtual void OnResponseHead(UpstreamResponse& head) = 0;
    virtual void OnResponseBody(base::ByteSpan data) = 0;
    virtual void OnResponseEnd() = 0;
    // OnUpstreamError: the exchange failed; |status| says how ("upstream connect: connection
    // refused").
    virtual void OnUpstreamError(UpstreamError kind, const absl::Status& status) = 0;
    // OnRequestDrained: every queued request byte went to the socket.
    virtual void OnRequestDrained() {}
  };

  // Destroying the exchange cancels it; a connection not yet given back is closed.
  ~UpstreamExchange() override;
  UpstreamExchange(const UpstreamExchange&) = delete;
  UpstreamExchange& operator=(const UpstreamExchange&) = delete;

  // SendBody queues request body bytes (copied); |end_stream| ends the request. Bytes beyond a
  // declared Content-Length are dropped. Ignored after the request ended or the exchange failed.
  void SendBody(base::ByteSpan data, bool end_stream);
  // WriteQueueSize: request bytes queued (before the connect, or in the socket's queue).
  size_t WriteQueueSize() const;
  // PauseResponse / ResumeResponse: backpressure towards the upstream.
  void PauseResponse();
  void ResumeResponse();
  // TakeUpgradedStream: after a 101, the upstream stream (its handler unset) and in |*pending|
  // the bytes that followed the 101 head. nullptr otherwise.
  std::unique_ptr<net::Stream> TakeUpgradedStream(std::vector<uint8_t>* pending);
  // reused: the request went out on a pooled connection (after a retry: false).
  bool reused() const { return reused_; }

 private:
  friend class UpstreamPool;
  friend class UpstreamConn;
  UpstreamExchange(UpstreamPool* pool, UpstreamRequest request, Delegate* delegate);
  void Begin();
  void Attach(std::unique_ptr<UpstreamConn> conn, bool reused);
  void Connect();
  void OnConnected(const absl::Status& status);
  void WriteRequestHead();
  void ArmHeaderTimer();
  // Conn events.
  void OnConnData(base::ByteSpan data);
  void OnConnEnd();
  void OnConnError(const absl::Status& status);
  void OnConnDrained();
  // H1Parser::Visitor
  void OnHead(H1Head& head) override;
  void OnBody(base::ByteSpan data) override;
  void OnMessageEnd() override;

  // Consume parses |data| as far as allowed and returns the bytes used; AfterConsume delivers
  // what the parse completed (an upgrade head, the response's end) once the parser returned.
  size_t Consume(base::ByteSpan data);
  void AfterConsume(size_t leftover);
  void ScheduleDrain();
  void Drain();
  void HandleEof();
  void ConnLost(const absl::Status& status);
  void Fail(UpstreamError kind, const absl::Status& status);
  // ReleaseOrClose gives the connection back to the pool if |clean| and keep-alive hold.
  void ReleaseOrClose(bool clean);
  void DropConn();
  bool Idempotent() const;
  void Write(base::ByteSpan data);

  UpstreamPool* pool_;
  UpstreamRequest request_;
  Delegate* delegate_;
  std::unique_ptr<UpstreamConn> conn_;
  H1Parser parser_;
  UpstreamResponse upgrade_head_;  // a 101, delivered once the parser returned
  std::vector<uint8_t> head_bytes_;   // the request head, kept for a retry
  std::vector<uint8_t> preconnect_;   // request bytes written before the connection is up
  std::vector<uint8_t> replay_;       // body bytes sent on a reused connection (for a retry)
  bool replayable_ = true;
  std::vector<uint8_t> pending_;      // response bytes read while paused
  size_t pending_off_ = 0;
  int64_t body_remaining_ = -1;       // Content-Length framing: request bytes still allowed
  bool connected_ = false;
  bool reused_ = false;
  bool retried_ = false;
  bool request_done_ = false;   // the request's end is queued
  bool got_bytes_ = false;      // any response byte arrived on this connection
  bool head_seen_ = false;      // the final head arrived
  bool interim_ = false;        // the message being parsed is a 1xx
  bool response_done_ = false;
  bool upgraded_ = false;
  bool upgrade_delivered_ = false;
  bool end_delivered_ = false;
  bool eof_ = false;            // the upstream half-closed
  bool failed_ = false;
  bool paused_ = false;
  bool parsing_ = false;
  bool drain_posted_ = false;
  std::shared_ptr<bool> alive_;  // shared with posted tasks; cleared on destruction
};

class UpstreamPool {
 public:
  // The pool must outlive every exchange it started.
  UpstreamPool(net::Loop& loop, base::SocketAddress target, PoolOptions options);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Start sends |request| on an idle connection or a new one. Nothing is delivered to
  // |delegate| (not owned; it must outlive the exchange) from inside Start.
  std::unique_ptr<UpstreamExchange> Start(UpstreamRequest request, UpstreamExchange::Delegate* delegate);

  size_t idle_count() const { return idle_.size(); }
  const UpstreamCounters& counters() const { return counters_; }
  const base::SocketAddress& target() const { return target_; }
  const PoolOptions& options() const { return options_; }
  net::Loop& loop() { return loop_; }

 private:
  friend class UpstreamExchange;
  friend class UpstreamConn;
  std::unique_ptr<UpstreamConn> TakeIdle();
  void Release(std::unique_ptr<UpstreamConn> conn);
  void DropIdle(UpstreamConn* conn);
  // Discard closes |conn| and deletes it on a later turn.
  void Discard(std::unique_ptr<UpstreamConn> conn);
  void ArmSweep();
  void Sweep();

  net::Loop& loop_;
  base::SocketAddress target_;
  PoolOptions options_;
  UpstreamCounters counters_;
  // idle_: oldest first; connections are taken from the back (the most recently used).
  std::vector<std::unique_ptr<UpstreamConn>> idle_;
  net::Timer sweep_;
};

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_UPSTREAM_H_
