// h1_server.h: the client-facing HTTP/1.1 server side of one connection. It parses requests,
// hands each to its Router's ExchangeHandler through the Exchange contract (exchange.h), frames
// responses (Content-Length, chunked, or close-delimited for HTTP/1.0), keeps the connection
// alive per RFC 9112 section 9.3, and enforces ServerLimits.
//
// One request at a time: pipelined requests are read (up to kMaxBuffered bytes) but not parsed
// until the exchange before them is over, so responses go out in order.
//
// Status answered by the server itself, each followed by a close: 400 malformed request or body
// framing, 431 head above max_header_bytes, 408 head not complete within header_timeout_ms,
// 405 CONNECT, 505 a version other than 1.0/1.1, and 404 (without close) when the Router
// returns no handler. An idle keep-alive connection is closed quietly after idle_timeout_ms.
//
// Expect: 100-continue: "100 Continue" is sent on the loop turn after the handler was made, if
// by then the handler has not paused the request body nor sent a final head; otherwise when it
// first resumes the body. If the final response goes out before the body was asked for, the
// connection closes after it (the client may never send that body).
//
// Upgrade (WebSocket): after a 101 head, Exchange::TakeUpgradedStream hands the stream and the
// bytes read past the request head to the handler; the connection is then finished.
#ifndef P2PROXY_HTTP_H1_SERVER_H_
#define P2PROXY_HTTP_H1_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "http/exchange.h"
#include "http/h1_parser.h"
#include "net/loop.h"
#include "net/stream.h"
#include "net/timer.h"

namespace p2proxy::http {

// H1ServerCounters: what the server's connections did. An owner may share one instance among
// many connections (all on one loop).
struct H1ServerCounters {
  uint64_t connections = 0;
  uint64_t requests = 0;       // heads handed to the router
  uint64_t bad_requests = 0;   // answered 400/405/431/505 by the server
  uint64_t timeouts = 0;       // 408, and request bodies that stalled for idle_timeout_ms
  uint64_t idle_closes = 0;    // keep-alive connections closed for idleness
  uint64_t not_found = 0;      // the router returned no handler
  uint64_t upgrades = 0;       // streams handed over after a 101
  uint64_t send_timeouts = 0;  // closed: the client took no response bytes for send_timeout_ms
  uint64_t bytes_in = 0;       // bytes read from clients
};

class H1Exchange;

class H1ServerConnection final : public net::StreamHandler, private H1Parser::Visitor {
 public:
  // kMaxBuffered bounds the bytes read ahead of the request being served (pipelining); above
  // it the stream is paused.
  static constexpr size_t kMaxBuffered = 64 * 1024;
  // kLingerMs: after the last response of a closing connection, how long unread client bytes
  // are drained (so that closing does not reset the connection under the response).
  static constexpr uint32_t kLingerMs = 2000;

  // The connection owns |stream| and serves it once Start() is called. |router| and |counters|
  // (optional) are not owned and must outlive the connection. |on_closed| runs once, on a later
  // loop turn than whatever finished the connection (a close, an error, a handed-over stream),
  // after which the owner may destroy the connection (from inside |on_closed| too). Destroying
  // it earlier is allowed at any time outside its own callbacks: the stream is closed and the
  // current handler destroyed without further calls.
  H1ServerConnection(net::Loop& loop, std::unique_ptr<net::Stream> stream, ConnectionInfo info,
                     Router& router, ServerLimits limits, absl::AnyInvocable<void()> on_closed,
                     H1ServerCounters* counters = nullptr);
  ~H1ServerConnection() override;
  H1ServerConnection(const H1ServerConnection&) = delete;
  H1ServerConnection& operator=(const H1ServerConnection&) = delete;

  // Start installs the stream handler and arms the header timer.
  void Start();
  // Close ends the connection now (no response; an exchange in flight gets OnReset).
  void Close();
  bool finished() const { return finished_; }
  const ConnectionInfo& info() const { return *info_; }

 private:
  friend class H1Exchange;

  // net::StreamHandler
  void OnData(base::ByteSpan data) override;
  void OnEnd() override;
  void OnError(const absl::Status& status) override;
  void OnWriteDrained() override;
  // H1Parser::Visitor
  void OnHead(H1Head& head) override;
  void OnBody(base::ByteSpan data) override;
  void OnMessageEnd() override;

  // CanParse: whether the parser may consume bytes now (the exchange allows it).
  bool CanParse() const;
  // ParseSome feeds |data| to the parser as far as allowed; returns the bytes consumed.
  size_t ParseSome(base::ByteSpan data);
  // AfterParse compacts the buffer, handles the client's end of stream, updates reading.
  void AfterParse();
  // Parse what is buffered, as far as the current exchange allows.
  void Drain();
  void ScheduleDrain();
  void UpdateReading();
  void HandleParseError();
  // Reject answers |status| with a short text and closes after it.
  void Reject(int status, std::string_view text);
  // CloseAfterResponse: half-close once queued bytes are out, drain the client a little, close.
  void CloseAfterResponse();
  // Fail ends the connection without a response; the handler, if any, gets OnReset(|why|).
  void Fail(const absl::Status& why);
  // Finish closes the stream (unless handed over) and schedules on_closed.
  void Finish();
  void ArmHeaderTimer(uint32_t timeout_ms);
  void ArmIdleTimer();
  void OnTimer();
  // WatchSend starts the send watch after a write that left bytes queued; OnSendTimer closes
  // the connection if none of them left in a whole send_timeout_ms.
  void WatchSend();
  void OnSendTimer();
  // Every write to the stream goes through these, which count the bytes.
  void SendOwned(std::vector<uint8_t> data);
  void SendCopy(base::ByteSpan data);
  // Exchange plumbing.
  void StartExchange(H1Head& head);
  void MaybeEndExchange();
  void RetireExchange();
  void SendContinueIfWanted();
  void WriteHead(const ResponseHead& head, bool end_stream);
  void WriteBody(base::ByteSpan data, bool end_stream);
  void Emit(base::ByteSpan data);  // body bytes, after a held head if any
  void EmitOwned(std::vector<uint8_t> data);
  void FlushHeldHead();
  void WriteError(int status, std::string_view text, bool close);
  std::unique_ptr<net::Stream> TakeStream(std::vector<uint8_t>* pending);

  enum class TimerKind { kNone, kHeader, kIdle, kBody, kLinger };

  net::Loop& loop_;
  std::unique_ptr<net::Stream> stream_;
  std::shared_ptr<const ConnectionInfo> info_;
  Router& router_;
  ServerLimits limits_;
  absl::AnyInvocable<void()> on_closed_;
  std::vector<uint8_t> held_head_;  // a response head waiting for its first body bytes
  H1ServerCounters* counters_;
  H1ServerCounters own_counters_;
  H1Parser parser_;
  net::Timer timer_;
  TimerKind timer_kind_ = TimerKind::kNone;
  net::Timer send_timer_;
  uint64_t written_ = 0;     // bytes written to the stream, ever
  uint64_t send_left_ = 0;   // of those, the ones out of its queue when the watch last looked
  // alive_ is shared with posted tasks; it is cleared when the connection dies.
  std::shared_ptr<bool> alive_;

  // Bytes read and not yet consumed by the parser: pending_[pending_off_..].
  std::vector<uint8_t> pending_;
  size_t pending_off_ = 0;
  bool parsing_ = false;     // inside Drain/Parse: OnData appends, never parses
  base::ByteSpan parse_span_;  // the input ParseSome is working on (empty outside it)
  size_t parse_used_ = 0;      // bytes of parse_span_ consumed before the current Parse call
  bool drain_posted_ = false;
  bool read_paused_ = false;  // what we last asked of the stream
  bool peer_ended_ = false;   // the client half-closed
  uint64_t last_rx_ms_ = 0;   // loop time of the last bytes read

  // The exchange in flight.
  std::unique_ptr<H1Exchange> exchange_;
  std::unique_ptr<ExchangeHandler> handler_;
  bool body_paused_ = false;       // the handler paused the request body
  bool request_done_ = false;      // OnRequestEnd delivered
  bool response_started_ = false;  // a final head went out
  bool response_done_ = false;     // the response's end is queued
  bool response_has_body_ = true;  // false for HEAD, 1xx, 204, 304
  bool chunked_ = false;           // response framing
  int64_t response_remaining_ = -1;  // Content-Length framing: bytes still owed
  bool keep_alive_ = true;
  bool is_head_ = false;
  bool continue_wanted_ = false;   // Expect: 100-continue not yet answered
  bool continue_sent_ = false;
  bool upgrade_sent_ = false;      // a 101 went out
  bool closing_ = false;           // CloseAfterResponse was called
  bool finished_ = false;          // Finish was called
  int handler_depth_ = 0;          // > 0 while one of handler_'s callbacks runs
};

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_H1_SERVER_H_
