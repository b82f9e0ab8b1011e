// h2_server.h: the client-facing HTTP/2 server (RFC 9113) for one connection, on nghttp2. Each
// stream becomes an Exchange (exchange.h) answered by the handler the Router makes.
//
// Flow control is backpressure, both ways:
//   - request bodies: the stream's window is returned to the client only for bytes the handler
//     took while not paused (PauseRequestBody closes the window; bytes already in flight are
//     held and delivered after ResumeRequestBody);
//   - responses: nghttp2 takes a stream's queued body only as the client's windows allow, and
//     the connection stops producing frames while the transport's WriteQueueSize() is above
//     kWriteHighWater, going on at OnWriteDrained.
//
// Timers (ServerLimits; 0 disables one):
//   - first_request_timeout_ms: the client preface, SETTINGS and a first complete request head
//     must arrive this long after the connection started; else the connection closes.
//   - header_timeout_ms: a header block once begun must be complete this long after it started;
//     else the connection closes.
//   - idle_timeout_ms: no stream open and no byte received this long: GOAWAY and close.
//   - send_timeout_ms: the transport's queue holds bytes and none leave this long (the client
//     stopped reading): the connection closes. A stream whose queued response gets no DATA
//     frame out this long (the client keeps its window shut) is reset with CANCEL.
//   - a linger of kLingerMs bounds the wait for queued writes (the final GOAWAY) at the end.
#ifndef P2PROXY_HTTP_H2_SERVER_H_
#define P2PROXY_HTTP_H2_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "http/exchange.h"
#include "net/loop.h"
#include "net/stream.h"
#include "net/timer.h"

struct nghttp2_session;

namespace p2proxy::http {

// H2ServerCounters: what the server's connections did. An owner may share one instance among
// many connections (all on one loop).
struct H2ServerCounters {
  uint64_t connections = 0;
  uint64_t streams = 0;          // request heads routed (or answered 404/431 by the server)
  uint64_t resets = 0;           // streams closed with an error code, by either side
  uint64_t protocol_errors = 0;  // bad preface, invalid frames, floods, callback failures
  uint64_t send_timeouts = 0;    // send_timeout_ms passed with response bytes not moving: the
                                 // connection closed (transport) or the stream reset (window)
  uint64_t refused_streams = 0;  // H2Admission refused: RST_STREAM(REFUSED_STREAM)
  uint64_t small_windows = 0;    // streams with a body that got only kBaseStreamWindow (budget)
};

class H2Stream;

// H2Admission lets an owner bound what HTTP/2 streams take beyond one connection: a cap on
// streams in flight across connections (the site's per-peer cap), and a memory budget shared
// by every connection for request-body windows. Not owned; it must outlive the connection.
class H2Admission {
 public:
  virtual ~H2Admission() = default;
  // TryOpenStream: may one more request stream open? false: it is refused with
  // RST_STREAM(REFUSED_STREAM) before the router sees it (RFC 9113 §8.7: safe to retry).
  virtual bool TryOpenStream() = 0;
  // CloseStream gives back what a successful TryOpenStream took, once per stream.
  virtual void CloseStream() = 0;
  // TryReserveWindow: may a stream's receive window grow by |bytes|? ReleaseWindow gives
  // them back when the stream closes.
  virtual bool TryReserveWindow(size_t bytes) = 0;
  virtual void ReleaseWindow(size_t bytes) = 0;
};

// H2ServerConnection serves HTTP/2 on |stream| (already past TLS and ALPN, or prior
// knowledge), once Start() is called.
//
// Lifetime: |on_closed| runs once, on a later loop turn, when the connection is finished (both
// sides done, a fatal error, a timeout, Shutdown() or Close() completed); the owner then
// destroys the object, which it may do inside |on_closed|. Destroying it earlier is allowed at
// any time outside its callbacks: open exchanges get OnReset. |router| and |counters| (optional)
// are not owned and must outlive the connection. Every handler is destroyed by the connection,
// never while one of its own calls is on the stack.
class H2ServerConnection final : public net::StreamHandler {
 public:
  // kWriteHighWater: the transport's WriteQueueSize() above which no more frames are made.
  static constexpr size_t kWriteHighWater = 1 << 20;
  // kStreamWindow / kConnectionWindow: receive windows advertised for request bodies. With an
  // H2Admission, SETTINGS advertise kBaseStreamWindow and a stream with a body grows to
  // kStreamWindow only while the admission's window budget lasts.
  static constexpr int32_t kStreamWindow = 1 << 20;
  static constexpr int32_t kBaseStreamWindow = 64 << 10;
  static constexpr int32_t kConnectionWindow = 8 << 20;
  static constexpr uint32_t kLingerMs = 5000;
  // kGoawayGraceMs: how long Shutdown waits for its PING's ACK before the final GOAWAY.
  static constexpr uint32_t kGoawayGraceMs = 2000;
  // kShutdownPing: the opaque data of that PING.
  static constexpr uint8_t kShutdownPing[8] = {'p', '2', 'p', 'g', 'o', 'a', 'w', 'y'};

  H2ServerConnection(net::Loop& loop, std::unique_ptr<net::Stream> stream, ConnectionInfo info,
                     Router& router, ServerLimits limits, absl::AnyInvocable<void()> on_closed,
                     H2ServerCounters* counters = nullptr, H2Admission* admission = nullptr);
  ~H2ServerConnection() override;
  H2ServerConnection(const H2ServerConnection&) = delete;
  H2ServerConnection& operator=(const H2ServerConnection&) = delete;

  // Start sends the server SETTINGS, feeds |already_received| (bytes read before the hand-over,
  // e.g. by a protocol sniffer, starting with the client preface) and starts reading. Once.
  void Start(std::vector<uint8_t> already_received = {});
  // Close ends the connection now: no more writes, open exchanges get OnReset. Not from inside
  // a handler's callback.
  void Close();
  // Shutdown starts a graceful close in two steps: a GOAWAY warning and a PING, then, a round
  // trip later, the final GOAWAY (streams the client opened until then finish, later ones are
  // refused), then |on_closed| once they are done. Idempotent.
  void Shutdown();

  const H2ServerCounters& counters() const { return *counters_; }
  const ConnectionInfo& info() const { return info_; }
  // num_streams is the number of streams with state here (open, or closing).
  size_t num_streams() const { return streams_.size(); }
  // finished: the connection is done and |on_closed| has been or is about to be posted.
  bool finished() const { return finishing_; }

 private:
  friend class H2Stream;
  struct Callbacks;  // the nghttp2 callbacks, in h2_server.cc

  // net::StreamHandler
  void OnData(base::ByteSpan data) override;
  void OnEnd() override;
  void OnError(const absl::Status& status) override;
  void OnWriteDrained() override;

  void Receive(base::ByteSpan data);
  // AfterIo runs after every batch of input or deferred work: timers, output, the end check.
  void AfterIo();
  // Flush makes frames with nghttp2_session_mem_send until it has none or the transport is
  // above kWriteHighWater, and writes them with one WriteOwned.
  void Flush();
  void MaybeFinish();
  // Finish ends the connection: every open exchange gets OnReset(why), then |on_closed| is
  // posted once queued writes have left (at once when the transport failed).
  void Finish(const absl::Status& why);
  void Complete();
  // ScheduleWork posts one RunDeferred, unless an entry point is running and will flush.
  void ScheduleWork();
  void RunDeferred();
  void ArmIdleTimer(uint64_t after_ms);
  void OnIdleTimer();
  void WatchSend();
  void OnSendTimer();
  void UpdateHeaderTimer();
  void Fatal(int nghttp2_error);

  // Stream bookkeeping, called from the nghttp2 callbacks and H2Stream.
  H2Stream* FindStream(int32_t id);
  void StartRequest(H2Stream* s, bool end_stream);
  void RequestEnded(H2Stream* s);
  void ConsumeDelivered(H2Stream* s, size_t len);
  void DeliverPending(H2Stream* s);
  void CloseStream(int32_t id, uint32_t error_code);
  void DestroyAllStreams(const absl::Status& why);

  net::Loop& loop_;
  std::unique_ptr<net::Stream> stream_;
  ConnectionInfo info_;
  Router& router_;
  ServerLimits limits_;
  absl::AnyInvocable<void()> on_closed_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<H2Stream>> streams_;
  H2ServerCounters* counters_;
  H2ServerCounters own_counters_;
  H2Admission* admission_;

  std::vector<uint8_t> out_;         // frames made in this Flush, written once at its end
  std::vector<int32_t> drained_;     // streams whose response queue emptied during mem_send
  std::vector<int32_t> to_resume_;   // streams with held request body to deliver
  bool in_io_ = false;               // an entry point runs; its AfterIo will flush
  bool work_posted_ = false;
  bool write_blocked_ = false;       // waiting for OnWriteDrained
  bool got_settings_ = false;        // the client preface and first SETTINGS arrived
  bool got_request_ = false;         // a first request head arrived
  int32_t header_block_stream_ = 0;  // a header block is half received on this stream
  bool peer_eof_ = false;
  bool fatal_ = false;               // nghttp2 failed on input: GOAWAY, then the end
  bool transport_failed_ = false;    // the stream reported OnError
  bool started_ = false;
  bool shutdown_requested_ = false;
  bool finishing_ = false;
  bool completed_ = false;
  uint64_t last_activity_ms_ = 0;

  net::Timer header_timer_;
  net::Timer idle_timer_;
  net::Timer send_timer_;
  net::Timer goaway_timer_;        // Shutdown's wait for the PING's ACK
  bool final_goaway_due_ = false;  // the ACK came (or the wait ran out): send the final GOAWAY
  bool final_goaway_sent_ = false;
  bool send_had_queue_ = false;  // the transport's queue held bytes when the watch last looked
  uint64_t written_ = 0;         // bytes written to the transport, ever
  uint64_t send_left_ = 0;       // of those, the ones out of its queue at the last look
  // token_ is shared with posted work; it is cleared when the connection dies first.
  std::shared_ptr<H2ServerConnection*> token_;
};

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_H2_SERVER_H_
