// h2_server.cc: H2ServerConnection, and H2Stream, the Exchange of one HTTP/2 stream.
//
// Re-entrancy rule: nghttp2_session_mem_recv/mem_send run only from the connection's entry
// points (OnData, OnEnd, OnWriteDrained, timers, RunDeferred, the constructor), never inside a
// handler's call. So a stream-close callback, which destroys the handler, can never run while
// that handler is on the stack. Exchange methods only queue work (nghttp2_submit_*, buffers) and
// ask for a flush: none when an entry point is running (its AfterIo flushes), else a posted
// RunDeferred.
#include "http/h2_server.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"

namespace p2proxy::http {

namespace {

// kDeliverChunk: held request body is handed over in pieces this big, so a handler that pauses
// again mid-way gets no more.
constexpr size_t kDeliverChunk = 64 * 1024;
constexpr size_t kFrameHeaderLen = 9;

// ByteQueue is a FIFO of bytes with a read offset; the consumed front is dropped once it is at
// least half the buffer, so draining and refilling costs linear time.
class ByteQueue {
 public:
  size_t size() const { return buf_.size() - off_; }
  bool empty() const { return off_ == buf_.size(); }
  const uint8_t* data() const { return buf_.data() + off_; }
  void Append(base::ByteSpan d) {
    if (empty()) {
      buf_.clear();
      off_ = 0;
    } else if (off_ >= 16 * 1024 && off_ >= buf_.size() / 2) {
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(off_));
      off_ = 0;
    }
    buf_.insert(buf_.end(), d.begin(), d.end());
  }
  void Consume(size_t n) {
    off_ += n;
    if (off_ == buf_.size()) {
      buf_.clear();
      off_ = 0;
    }
  }
  void Clear() {
    std::vector<uint8_t>().swap(buf_);
    off_ = 0;
  }

 private:
  std::vector<uint8_t> buf_;
  size_t off_ = 0;
};

// IsDroppedResponseField: fields HTTP/2 forbids in a response (RFC 9113 §8.2.2) or that the
// server frames itself (content-length comes from ResponseHead::content_length).
bool IsDroppedResponseField(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "te" ||
         name == "content-length";
}

bool HasUpper(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

nghttp2_nv MakeNv(std::string_view name, std::string_view value) {
  nghttp2_nv nv;
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.namelen = name.size();
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.valuelen = value.size();
  nv.flags = NGHTTP2_NV_FLAG_NONE;  // nghttp2 copies at submit
  return nv;
}

absl::Status ResetStatus(uint32_t error_code) {
  return absl::CancelledError(
      absl::StrCat("http2: stream reset (", nghttp2_http2_strerror(error_code), ")"));
}

}  // namespace

// H2Stream is one request/response exchange; it lives from the first HEADERS until nghttp2
// closes the stream (or the connection ends).
class H2Stream final : public Exchange {
 public:
  H2Stream(H2ServerConnection& conn, int32_t id) : conn_(conn), id_(id) {
    head_.version = 20;
    head_.headers.reserve(16);
  }
  ~H2Stream() override {
    // What the admission gave this stream goes back however the stream ends.
    if (conn_.admission_ == nullptr) return;
    if (admitted_) conn_.admission_->CloseStream();
    if (window_reserved_ > 0) conn_.admission_->ReleaseWindow(window_reserved_);
  }

  const RequestHead& request() const override { return head_; }
  const ConnectionInfo& connection() const override { return conn_.info_; }
  void PauseRequestBody() override;
  void ResumeRequestBody() override;
  void SendResponseHead(const ResponseHead& head, bool end_stream) override;
  void SendResponseBody(base::ByteSpan data, bool end_stream) override;
  size_t ResponseQueueSize() const override { return body_.size(); }
  void SendError(int status, std::string_view text) override;
  void Abort() override;
  std::unique_ptr<net::Stream> TakeUpgradedStream(std::vector<uint8_t>* pending) override {
    return nullptr;
  }

  bool dead() const { return closed_ || aborted_; }

  H2ServerConnection& conn_;
  const int32_t id_;
  RequestHead head_;
  std::string host_;        // a Host field, used when :authority is absent
  int cookie_index_ = -1;   // index in head_.headers of the merged cookie field
  size_t header_bytes_ = 0;
  bool too_large_ = false;  // the header block exceeded max_header_bytes: answer 431
  bool admitted_ = false;          // H2Admission::TryOpenStream succeeded
  size_t window_reserved_ = 0;     // window bytes taken from H2Admission's budget
  std::unique_ptr<ExchangeHandler> handler_;

  // Request body.
  bool request_ended_ = false;  // END_STREAM received
  bool end_delivered_ = false;  // OnRequestEnd called
  bool paused_ = false;
  size_t held_ = 0;   // bytes the handler took while paused: stream window not yet returned
  ByteQueue pending_;  // bytes that arrived while paused: no window returned yet

  // Response.
  ByteQueue body_;
  bool head_sent_ = false;
  bool response_end_queued_ = false;
  bool body_suppressed_ = false;   // HEAD, 204, 304: the body is dropped
  bool deferred_ = false;          // nghttp2 waits for nghttp2_session_resume_data
  bool response_complete_ = false;  // END_STREAM sent
  bool aborted_ = false;
  bool closed_ = false;
  uint64_t send_since_ms_ = 0;  // queued body bytes have waited for a DATA frame since then
};

// Callbacks holds the nghttp2 callbacks; user_data is the connection.
struct H2ServerConnection::Callbacks {
  static H2ServerConnection* Conn(void* user_data) {
    return static_cast<H2ServerConnection*>(user_data);
  }
  static H2Stream* StreamOf(nghttp2_session* session, int32_t id) {
    return static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(session, id));
  }

  static int OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    H2ServerConnection* c = Conn(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    const int32_t id = frame->hd.stream_id;
    c->header_block_stream_ = id;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers of a known stream
    auto s = std::make_unique<H2Stream>(*c, id);
    nghttp2_session_set_stream_user_data(session, id, s.get());
    c->streams_[id] = std::move(s);
    return 0;
  }

  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    H2Stream* s = StreamOf(session, frame->hd.stream_id);
    if (!s) return 0;
    // Counted like an HTTP/1.1 field line ("name: value\r\n"), so one limit fits both servers.
    s->header_bytes_ += namelen + valuelen + 4;
    if (s->header_bytes_ > Conn(user_data)->limits_.max_header_bytes) s->too_large_ = true;
    if (s->too_large_ || frame->headers.cat != NGHTTP2_HCAT_REQUEST || namelen == 0) return 0;
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    RequestHead& head = s->head_;
    if (n[0] == ':') {  // nghttp2 checked presence, duplicates and order
      if (n == ":method") {
        head.method.assign(v);
      } else if (n == ":path") {
        head.path.assign(v);
      } else if (n == ":authority") {
        head.authority.assign(v);
      }
      return 0;
    }
    if (n == "host") {
      if (s->host_.empty()) s->host_.assign(v);
      return 0;
    }
    if (n == "cookie") {
      // RFC 9113 §8.2.3: split cookie fields are joined again for HTTP/1.1.
      if (s->cookie_index_ >= 0) {
        std::string& joined = head.headers[static_cast<size_t>(s->cookie_index_)].value;
        joined.append("; ");
        joined.append(v);
        return 0;
      }
      s->cookie_index_ = static_cast<int>(head.headers.size());
    } else if (n == "content-length") {
      int64_t len;  // nghttp2 rejected a malformed one
      if (absl::SimpleAtoi(absl::string_view(v.data(), v.size()), &len) && len >= 0) head.content_length = len;
    }
    head.headers.push_back(Header{std::string(n), std::string(v)});
    return 0;
  }

  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    H2ServerConnection* c = Conn(user_data);
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) c->got_settings_ = true;
        break;
      case NGHTTP2_HEADERS: {
        if (c->header_block_stream_ == frame->hd.stream_id) c->header_block_stream_ = 0;
        H2Stream* s = StreamOf(session, frame->hd.stream_id);
        if (!s) break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          c->StartRequest(s, end_stream);
        } else if (end_stream) {
          c->RequestEnded(s);  // trailers: their fields are not passed on
        }
        break;
      }
      case NGHTTP2_DATA:
        if (end_stream) {
          if (H2Stream* s = StreamOf(session, frame->hd.stream_id)) c->RequestEnded(s);
        }
        break;
      case NGHTTP2_PING:
        // The answer to Shutdown's PING: one round trip has passed since the notice.
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0 && c->shutdown_requested_ &&
            std::memcmp(frame->ping.opaque_data, kShutdownPing, sizeof kShutdownPing) == 0) {
          c->final_goaway_due_ = true;
        }
        break;
      default:
        break;
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t flags, int32_t id, const uint8_t* data,
                         size_t len, void* user_data) {
    H2Stream* s = StreamOf(session, id);
    if (!s || !s->handler_ || s->dead()) {
      nghttp2_session_consume(session, id, len);  // nobody wants it: give the window back
      return 0;
    }
    if (s->paused_ || !s->pending_.empty()) {
      s->pending_.Append(base::ByteSpan(data, len));
      return 0;
    }
    s->handler_->OnRequestBody(base::ByteSpan(data, len));
    Conn(user_data)->ConsumeDelivered(s, len);
    return 0;
  }

  static int OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) return 0;
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) return 0;
    H2Stream* s = StreamOf(session, frame->hd.stream_id);
    if (!s) return 0;
    s->response_complete_ = true;
    // RFC 9113 §8.1: a complete response before the request ended; stop the client sending.
    if (!s->request_ended_) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id_, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session* session, int32_t id, uint32_t error_code,
                           void* user_data) {
    Conn(user_data)->CloseStream(id, error_code);
    return 0;
  }

  static int OnInvalidFrame(nghttp2_session* session, const nghttp2_frame* frame, int lib_error,
                            void* user_data) {
    ++Conn(user_data)->counters_->protocol_errors;
    return 0;
  }

  // ReadBody tells nghttp2 how much of the stream's queued body goes into the next DATA frame;
  // SendData then copies it straight into the output (NO_COPY saves nghttp2's own copy).
  static ssize_t ReadBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user_data) {
    H2Stream* s = StreamOf(session, id);
    if (!s) return NGHTTP2_ERR_DEFERRED;
    const size_t avail = s->body_.size();
    if (avail == 0) {
      if (s->response_end_queued_) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
      }
      s->deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    const size_t n = std::min(length, avail);
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && s->response_end_queued_) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int SendData(nghttp2_session* session, nghttp2_frame* frame, const uint8_t* framehd,
                      size_t length, nghttp2_data_source* source, void* user_data) {
    H2ServerConnection* c = Conn(user_data);
    H2Stream* s = StreamOf(session, frame->hd.stream_id);
    if (!s || s->body_.size() < length) return NGHTTP2_ERR_CALLBACK_FAILURE;  // cannot happen
    std::vector<uint8_t>& out = c->out_;
    const size_t padlen = frame->data.padlen;
    out.insert(out.end(), framehd, framehd + kFrameHeaderLen);
    if (padlen > 0) out.push_back(static_cast<uint8_t>(padlen - 1));
    out.insert(out.end(), s->body_.data(), s->body_.data() + length);
    if (padlen > 1) out.insert(out.end(), padlen - 1, 0);
    s->body_.Consume(length);
    s->send_since_ms_ = c->loop_.NowMs();
    if (s->body_.empty() && !s->response_end_queued_) c->drained_.push_back(s->id_);
    return 0;
  }

  // Setup is the callbacks and options every connection shares (nghttp2 copies them).
  struct Setup {
    Setup() {
      if (nghttp2_session_callbacks_new(&callbacks) != 0 || nghttp2_option_new(&option) != 0) {
        std::abort();  // out of memory at start-up
      }
      nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &OnBeginHeaders);
      nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
      nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
      nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &OnFrameSend);
      nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClose);
      nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, &OnInvalidFrame);
      nghttp2_session_callbacks_set_send_data_callback(callbacks, &SendData);
      // Request-body windows are returned by hand (nghttp2_session_consume), as the handler
      // takes the bytes.
      nghttp2_option_set_no_auto_window_update(option, 1);
      nghttp2_option_set_no_closed_streams(option, 1);
    }
    ~Setup() {
      nghttp2_session_callbacks_del(callbacks);
      nghttp2_option_del(option);
    }
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_option* option = nullptr;
  };
  static const Setup& Get() {
    static const Setup setup;
    return setup;
  }
};

// --- H2Stream ----------------------------------------------------------------------------

void H2Stream::PauseRequestBody() {
  if (dead()) return;
  paused_ = true;
}

void H2Stream::ResumeRequestBody() {
  if (!paused_) return;
  paused_ = false;
  if (dead()) return;
  if (held_ > 0) {
    nghttp2_session_consume_stream(conn_.session_, id_, held_);
    held_ = 0;
    conn_.ScheduleWork();
  }
  if (!pending_.empty()) {
    conn_.to_resume_.push_back(id_);
    conn_.ScheduleWork();
  }
}

void H2Stream::SendResponseHead(const ResponseHead& head, bool end_stream) {
  if (dead() || head_sent_) return;
  if (head.status < 200 || head.status > 999) {  // no informational or 101 answers here
    Abort();
    return;
  }
  head_sent_ = true;
  body_suppressed_ = head_.method == "HEAD" || head.status == 204 || head.status == 304;

  char status[3] = {static_cast<char>('0' + head.status / 100),
                    static_cast<char>('0' + head.status / 10 % 10),
                    static_cast<char>('0' + head.status % 10)};
  std::string length;
  std::vector<std::string> lowered;  // names a careless handler sent with capitals
  lowered.reserve(head.headers.size());
  std::vector<nghttp2_nv> nva;
  nva.reserve(head.headers.size() + 2);
  nva.push_back(MakeNv(":status", std::string_view(status, 3)));
  if (head.content_length >= 0 && head.status != 204) {
    length = absl::StrCat(head.content_length);
    nva.push_back(MakeNv("content-length", length));
  }
  for (const Header& h : head.headers) {
    std::string_view name = h.name;
    if (name.empty() || name[0] == ':') continue;
    if (HasUpper(name)) {
      std::string lower(name);
      for (char& ch : lower) ch = absl::ascii_tolower(static_cast<unsigned char>(ch));
      lowered.push_back(std::move(lower));
      name = lowered.back();
    }
    if (IsDroppedResponseField(name)) continue;
    nva.push_back(MakeNv(name, h.value));
  }

  const bool eos = end_stream || body_suppressed_;
  if (eos) response_end_queued_ = true;
  nghttp2_data_provider provider;
  provider.source.ptr = this;
  provider.read_callback = &H2ServerConnection::Callbacks::ReadBody;
  if (nghttp2_submit_response(conn_.session_, id_, nva.data(), nva.size(),
                              eos ? nullptr : &provider) != 0) {
    response_end_queued_ = true;  // the stream is going away; its close callback cleans up
  }
  conn_.ScheduleWork();
}

void H2Stream::SendResponseBody(base::ByteSpan data, bool end_stream) {
  if (dead() || response_end_queued_) return;
  if (!head_sent_) {  // the contract wants the head first
    Abort();
    return;
  }
  if (data.empty() && !end_stream) return;
  if (body_.empty()) send_since_ms_ = conn_.loop_.NowMs();
  body_.Append(data);
  if (end_stream) response_end_queued_ = true;
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(conn_.session_, id_);
  }
  conn_.ScheduleWork();
}

void H2Stream::SendError(int status, std::string_view text) {
  if (dead()) return;
  if (head_sent_) {
    Abort();
    return;
  }
  std::string body(text);
  body.push_back('\n');
  ResponseHead head;
  head.status = status;
  head.headers.push_back({"content-type", "text/plain; charset=utf-8"});
  head.content_length = static_cast<int64_t>(body.size());
  SendResponseHead(head, false);
  SendResponseBody(base::ByteSpan(reinterpret_cast<const uint8_t*>(body.data()), body.size()),
                   true);
}

void H2Stream::Abort() {
  if (dead()) return;
  aborted_ = true;
  body_.Clear();
  // pending_ stays: a DeliverPending may be inside the handler with a view into it.
  nghttp2_submit_rst_stream(conn_.session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
  conn_.ScheduleWork();
}

// --- H2ServerConnection ------------------------------------------------------------------

H2ServerConnection::H2ServerConnection(net::Loop& loop, std::unique_ptr<net::Stream> stream,
                                       ConnectionInfo info, Router& router, ServerLimits limits,
                                       absl::AnyInvocable<void()> on_closed,
                                       H2ServerCounters* counters, http::H2Admission* admission)
    : loop_(loop),
      stream_(std::move(stream)),
      info_(std::move(info)),
      router_(router),
      limits_(limits),
      on_closed_(std::move(on_closed)),
      counters_(counters ? counters : &own_counters_),
      admission_(admission),
      header_timer_(loop),
      idle_timer_(loop),
      send_timer_(loop),
      goaway_timer_(loop),
      token_(std::make_shared<H2ServerConnection*>(this)) {
  const Callbacks::Setup& setup = Callbacks::Get();
  if (nghttp2_session_server_new2(&session_, setup.callbacks, this, setup.option) != 0) {
    std::abort();  // out of memory
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
       static_cast<uint32_t>(admission_ ? kBaseStreamWindow : kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<uint32_t>(std::min<size_t>(limits_.max_header_bytes, UINT32_MAX))},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                          sizeof(settings) / sizeof(settings[0]));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  streams_.reserve(16);
  ++counters_->connections;
}

void H2ServerConnection::Start(std::vector<uint8_t> already_received) {
  if (started_ || finishing_) return;
  started_ = true;
  last_activity_ms_ = loop_.NowMs();
  in_io_ = true;
  if (!already_received.empty()) Receive(already_received);
  stream_->SetHandler(this);
  ArmIdleTimer(limits_.idle_timeout_ms);
  AfterIo();
}

void H2ServerConnection::Close() {
  if (finishing_) return;
  transport_failed_ = true;  // nothing more is written
  stream_->Close();
  Finish(absl::CancelledError("http2: connection closed by the server"));
}

H2ServerConnection::~H2ServerConnection() {
  *token_ = nullptr;
  stream_.reset();  // no more stream callbacks
  DestroyAllStreams(absl::CancelledError("http2: connection closed"));
  nghttp2_session_del(session_);
}

void H2ServerConnection::Shutdown() {
  if (finishing_ || shutdown_requested_) return;
  shutdown_requested_ = true;
  // Two steps (RFC 9113 section 6.8): a GOAWAY naming the largest stream id warns the client,
  // and a PING times one round trip. Streams the client opened before it saw the warning are
  // still taken; the final GOAWAY names the last of them, once the PING's ACK is in (or after
  // kGoawayGraceMs, from a client that does not answer).
  nghttp2_submit_shutdown_notice(session_);
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, kShutdownPing);
  goaway_timer_.Start(absl::Milliseconds(kGoawayGraceMs), [this] {
    final_goaway_due_ = true;
    in_io_ = true;
    AfterIo();
  });
  ScheduleWork();  // the notice goes out with the next flush
}

// --- Input -------------------------------------------------------------------------------

void H2ServerConnection::OnData(base::ByteSpan data) {
  if (finishing_ || fatal_) return;
  last_activity_ms_ = loop_.NowMs();
  in_io_ = true;
  Receive(data);
  AfterIo();
}

void H2ServerConnection::Receive(base::ByteSpan data) {
  const ssize_t rv = nghttp2_session_mem_recv(session_, data.data(), data.size());
  if (rv < 0) Fatal(static_cast<int>(rv));
}

void H2ServerConnection::OnEnd() {
  if (finishing_) return;
  // The client sends no more: requests it did not finish never will. Finished ones get their
  // answers; then the connection closes.
  peer_eof_ = true;
  in_io_ = true;
  if (!fatal_) {
    for (auto& [id, s] : streams_) {
      if (!s->request_ended_ && !s->dead()) {
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      }
    }
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
  }
  AfterIo();
}

void H2ServerConnection::OnError(const absl::Status& status) {
  transport_failed_ = true;
  if (in_io_) return;  // the running entry point finishes
  if (finishing_) {
    if (!completed_) Complete();
    return;
  }
  Finish(status);
}

void H2ServerConnection::Fatal(int nghttp2_error) {
  fatal_ = true;
  ++counters_->protocol_errors;
  static base::LogRateLimiter limiter;
  P2P_LOG_RATELIMITED(limiter, kDebug, "http2.protocol_error")
      .Kv("peer", info_.peer_address)
      .Kv("error", nghttp2_strerror(nghttp2_error));
  // GOAWAY(PROTOCOL_ERROR) goes out with the next Flush; the connection then ends.
  nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
}

// --- Streams -----------------------------------------------------------------------------

H2Stream* H2ServerConnection::FindStream(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void H2ServerConnection::StartRequest(H2Stream* s, bool end_stream) {
  got_request_ = true;
  if (admission_) {
    if (!admission_->TryOpenStream()) {
      ++counters_->refused_streams;
      s->aborted_ = true;
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id_, NGHTTP2_REFUSED_STREAM);
      return;
    }
    s->admitted_ = true;
    if (!end_stream) {
      // A body follows: a full window if the shared budget allows, else the base one.
      constexpr size_t kGrowth = kStreamWindow - kBaseStreamWindow;
      if (admission_->TryReserveWindow(kGrowth)) {
        s->window_reserved_ = kGrowth;
        nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, s->id_, kStreamWindow);
      } else {
        ++counters_->small_windows;
      }
    }
  }
  ++counters_->streams;
  RequestHead& head = s->head_;
  if (head.authority.empty()) head.authority = std::move(s->host_);
  head.scheme = info_.tls ? "https" : "http";
  head.end_stream = end_stream;
  s->request_ended_ = end_stream;
  if (s->too_large_) {
    s->SendError(431, "request header fields too large");
    return;
  }
  if (head.method.empty() || head.path.empty()) {  // CONNECT: not offered
    s->aborted_ = true;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id_, NGHTTP2_PROTOCOL_ERROR);
    return;
  }
  std::unique_ptr<ExchangeHandler> handler = router_.OnRequest(*s);
  if (!handler) {
    if (!s->head_sent_) s->SendError(404, "not found");
    return;
  }
  s->handler_ = std::move(handler);
  if (end_stream && !s->dead()) {
    s->end_delivered_ = true;
    s->handler_->OnRequestEnd();
  }
}

void H2ServerConnection::RequestEnded(H2Stream* s) {
  s->request_ended_ = true;
  if (!s->handler_ || s->dead() || s->end_delivered_ || !s->pending_.empty()) return;
  s->end_delivered_ = true;
  s->handler_->OnRequestEnd();
}

void H2ServerConnection::ConsumeDelivered(H2Stream* s, size_t len) {
  // The connection window always comes back at once (the bytes are no longer ours to hold);
  // the stream window only while the handler is not paused.
  if (s->paused_ || s->dead()) {
    nghttp2_session_consume_connection(session_, len);
    if (!s->dead()) s->held_ += len;
  } else {
    nghttp2_session_consume(session_, s->id_, len);
  }
}

void H2ServerConnection::DeliverPending(H2Stream* s) {
  while (s->handler_ && !s->dead() && !s->paused_ && !s->pending_.empty()) {
    const size_t n = std::min(kDeliverChunk, s->pending_.size());
    s->handler_->OnRequestBody(base::ByteSpan(s->pending_.data(), n));
    s->pending_.Consume(n);
    ConsumeDelivered(s, n);
  }
  if (s->request_ended_) RequestEnded(s);
}

void H2ServerConnection::CloseStream(int32_t id, uint32_t error_code) {
  if (header_block_stream_ == id) header_block_stream_ = 0;
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  std::unique_ptr<H2Stream> s = std::move(it->second);
  streams_.erase(it);
  s->closed_ = true;
  last_activity_ms_ = loop_.NowMs();
  if (error_code != NGHTTP2_NO_ERROR) ++counters_->resets;
  if (!s->pending_.empty()) nghttp2_session_consume_connection(session_, s->pending_.size());
  if (s->handler_ && !s->aborted_ && !s->response_complete_) {
    s->handler_->OnReset(ResetStatus(error_code));
  }
  s->handler_.reset();  // before the Exchange it may still point at
}

void H2ServerConnection::DestroyAllStreams(const absl::Status& why) {
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, s] : streams) {
    nghttp2_session_set_stream_user_data(session_, id, nullptr);
    s->closed_ = true;
  }
  for (auto& [id, s] : streams) {
    if (s->handler_ && !s->aborted_ && !s->response_complete_) {
      ++counters_->resets;
      s->handler_->OnReset(why);
    }
    s->handler_.reset();
  }
}

// --- Output and deferred work ------------------------------------------------------------

void H2ServerConnection::ScheduleWork() {
  if (finishing_ || work_posted_) return;
  if (in_io_ && to_resume_.empty()) return;  // the running entry point flushes
  work_posted_ = true;
  loop_.Post([token = token_] {
    if (*token) (*token)->RunDeferred();
  });
}

void H2ServerConnection::RunDeferred() {
  work_posted_ = false;
  if (finishing_) return;
  in_io_ = true;
  std::vector<int32_t> ids;
  ids.swap(to_resume_);
  for (int32_t id : ids) {
    if (H2Stream* s = FindStream(id)) DeliverPending(s);
  }
  AfterIo();
}

void H2ServerConnection::OnWriteDrained() {
  if (finishing_) {
    if (!completed_) Complete();
    return;
  }
  write_blocked_ = false;
  in_io_ = true;
  AfterIo();
}

void H2ServerConnection::AfterIo() {
  if (final_goaway_due_ && !final_goaway_sent_ && !finishing_) {
    // After the input that carried the ACK: streams opened in that same input count.
    final_goaway_sent_ = true;
    goaway_timer_.Stop();
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
  }
  Flush();
  if (transport_failed_) {
    Finish(absl::UnavailableError("http2: connection failed"));
  } else {
    MaybeFinish();
  }
  if (!finishing_) UpdateHeaderTimer();
  in_io_ = false;
}

void H2ServerConnection::Flush() {
  if (finishing_ || write_blocked_ || transport_failed_) return;
  for (;;) {
    if (stream_->WriteQueueSize() + out_.size() >= kWriteHighWater) {
      write_blocked_ = true;  // OnWriteDrained goes on
      break;
    }
    if (out_.capacity() == 0) out_.reserve(16 * 1024);
    const size_t before = out_.size();
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {  // out of memory or a broken session: nothing sensible can follow
      ++counters_->protocol_errors;
      transport_failed_ = true;
      break;
    }
    if (n > 0) out_.insert(out_.end(), data, data + n);
    bool progressed = n > 0 || out_.size() != before;
    if (!drained_.empty()) {
      progressed = true;
      std::vector<int32_t> ids;
      ids.swap(drained_);
      for (int32_t id : ids) {
        H2Stream* s = FindStream(id);
        if (s && s->handler_ && !s->dead() && !s->response_end_queued_ && s->body_.empty()) {
          s->handler_->OnResponseDrained();
        }
      }
    }
    if (!progressed) break;
  }
  if (!out_.empty() && !transport_failed_) {
    written_ += out_.size();
    stream_->WriteOwned(std::move(out_));
    out_ = std::vector<uint8_t>();
  }
  WatchSend();
}

void H2ServerConnection::MaybeFinish() {
  if (finishing_) return;
  const bool want_write = nghttp2_session_want_write(session_) != 0;
  bool done = !nghttp2_session_want_read(session_) && !want_write;
  if (fatal_ && !want_write) done = true;
  if (peer_eof_ && streams_.empty() && !want_write) done = true;
  if (done) Finish(absl::CancelledError("http2: connection closed"));
}

void H2ServerConnection::Finish(const absl::Status& why) {
  if (finishing_) return;
  finishing_ = true;
  idle_timer_.Stop();
  header_timer_.Stop();
  send_timer_.Stop();
  goaway_timer_.Stop();
  stream_->PauseReading();
  DestroyAllStreams(why);
  if (transport_failed_ || stream_->WriteQueueSize() == 0) {
    Complete();
    return;
  }
  // Let the last frames (GOAWAY) leave, for a bounded time.
  header_timer_.Start(absl::Milliseconds(kLingerMs), [this] { Complete(); });
}

void H2ServerConnection::Complete() {
  if (completed_) return;
  completed_ = true;
  header_timer_.Stop();
  if (!transport_failed_) stream_->Shutdown();
  loop_.Post([token = token_] {
    H2ServerConnection* self = *token;
    if (!self) return;
    // From a local: the owner may destroy the connection (and the callable's home) inside.
    auto cb = std::move(self->on_closed_);
    if (cb) cb();
  });
}

// --- Timers ------------------------------------------------------------------------------

void H2ServerConnection::UpdateHeaderTimer() {
  // Before the first request the deadline counts from the connection's start (the timer was
  // armed then and stays armed); after it, from the start of each header block.
  const uint32_t timeout_ms = got_request_ ? limits_.header_timeout_ms : limits_.first_request_timeout_ms;
  const bool need = !got_request_ || header_block_stream_ != 0;
  if (timeout_ms == 0) {
    header_timer_.Stop();
    return;
  }
  if (need && !header_timer_.active()) {
    header_timer_.Start(absl::Milliseconds(timeout_ms), [this] {
      if (finishing_) return;
      static base::LogRateLimiter limiter;
      P2P_LOG_RATELIMITED(limiter, kDebug, "http2.header_timeout").Kv("peer", info_.peer_address);
      if (!got_settings_) {  // never spoke HTTP/2: just close
        Finish(absl::DeadlineExceededError("http2: no client preface"));
        return;
      }
      in_io_ = true;
      nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
      AfterIo();
    });
  } else if (!need && header_timer_.active()) {
    header_timer_.Stop();
  }
}

void H2ServerConnection::ArmIdleTimer(uint64_t after_ms) {
  if (limits_.idle_timeout_ms == 0) return;
  idle_timer_.Start(absl::Milliseconds(static_cast<int64_t>(after_ms)), [this] { OnIdleTimer(); });
}

void H2ServerConnection::OnIdleTimer() {
  if (finishing_) return;
  if (!streams_.empty()) {
    ArmIdleTimer(limits_.idle_timeout_ms);
    return;
  }
  const uint64_t idle = loop_.NowMs() - last_activity_ms_;
  if (idle < limits_.idle_timeout_ms) {
    ArmIdleTimer(limits_.idle_timeout_ms - idle);
    return;
  }
  in_io_ = true;
  nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  AfterIo();
}

void H2ServerConnection::WatchSend() {
  if (send_timer_.active() || limits_.send_timeout_ms == 0 || finishing_ || transport_failed_) return;
  const size_t queued = stream_->WriteQueueSize();
  if (queued == 0 && streams_.empty()) return;
  send_left_ = written_ - queued;
  send_had_queue_ = queued > 0;
  send_timer_.Start(absl::Milliseconds(limits_.send_timeout_ms), [this] { OnSendTimer(); });
}

void H2ServerConnection::OnSendTimer() {
  if (finishing_) return;
  const size_t queued = stream_->WriteQueueSize();
  if (queued > 0 && send_had_queue_ && written_ - queued == send_left_) {
    // A whole period with bytes queued and none leaving: the client stopped reading.
    ++counters_->send_timeouts;
    P2P_LOG(kInfo, "http2.send_timeout").Kv("peer", info_.peer_address).Kv("queued", queued);
    transport_failed_ = true;  // nothing more can leave: no GOAWAY, no linger
    Finish(absl::DeadlineExceededError("http2: the client took no bytes for send_timeout_ms"));
    return;
  }
  const uint64_t now = loop_.NowMs();
  if (queued > 0 || write_blocked_) {
    // The transport is what holds the streams back (a slow reader): their clocks restart.
    for (auto& [id, s] : streams_) {
      if (!s->body_.empty()) s->send_since_ms_ = now;
    }
    WatchSend();
    return;
  }
  // The transport is idle, yet these streams' queued responses got no DATA frame out for a
  // whole period: the client keeps their window (or the connection's) shut. Reset them; the
  // close callback tells each handler.
  bool reset = false;
  for (auto& [id, s] : streams_) {
    if (s->dead() || s->body_.empty() || now - s->send_since_ms_ < limits_.send_timeout_ms) continue;
    ++counters_->send_timeouts;
    P2P_LOG(kInfo, "http2.stream_send_timeout").Kv("peer", info_.peer_address).Kv("stream", id);
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    reset = true;
  }
  if (reset) {
    in_io_ = true;
    AfterIo();  // sends the resets, re-arms the watch
    return;
  }
  WatchSend();
}

}  // namespace p2proxy::http
