// h1_server.cc: H1ServerConnection and its per-request Exchange.
//
// Re-entrancy rules kept here: a handler's callbacks run only from stream callbacks or posted
// tasks, never from inside one of its own calls into Exchange; anything an Exchange call
// changes that needs the handler again (ending the exchange, parsing the next request,
// resuming the body) goes through a posted Drain. The handler is always destroyed from a
// posted task.
//
// Timers (one net::Timer, one purpose at a time):
//   kHeader: first_request_timeout_ms from connect until the first request's head is complete,
//            then header_timeout_ms from the first byte of each later request until its head
//            is complete; fires 408 and a close.
//   kIdle:   idle_timeout_ms between requests on a keep-alive connection; fires a quiet close.
//   kBody:   a request body that receives nothing for idle_timeout_ms (while the handler wants
//            it) fails the exchange (408 if no response began).
//   kLinger: after the last response, unread bytes are drained for kLingerMs, then close.
// A second timer, the send watch, runs while response bytes sit in the stream's queue: if a
// whole send_timeout_ms passes with none of them leaving (bytes written so far less those
// still queued did not grow), the client has stopped reading and the connection is closed
// (the handler gets OnReset).
#include "http/h1_server.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "http/wire.h"

namespace p2proxy::http {

// H1Exchange is the Exchange of one request. The connection detaches it when the exchange is
// over; calls after that do nothing.
class H1Exchange final : public Exchange {
 public:
  H1Exchange(H1ServerConnection* conn, std::shared_ptr<const ConnectionInfo> info)
      : conn_(conn), info_(std::move(info)) {}
  void Detach() { conn_ = nullptr; }

  const RequestHead& request() const override { return head_; }
  const ConnectionInfo& connection() const override { return *info_; }
  void PauseRequestBody() override {
    if (!conn_ || conn_->body_paused_) return;
    conn_->body_paused_ = true;
    conn_->parser_.Pause();
    conn_->UpdateReading();
  }
  void ResumeRequestBody() override {
    if (!conn_ || !conn_->body_paused_) return;
    conn_->body_paused_ = false;
    conn_->ScheduleDrain();
  }
  void SendResponseHead(const ResponseHead& head, bool end_stream) override {
    if (conn_) conn_->WriteHead(head, end_stream);
  }
  void SendResponseBody(base::ByteSpan data, bool end_stream) override {
    if (conn_) conn_->WriteBody(data, end_stream);
  }
  size_t ResponseQueueSize() const override {
    return conn_ && conn_->stream_ ? conn_->stream_->WriteQueueSize() + conn_->held_head_.size() : 0;
  }
  void SendError(int status, std::string_view text) override {
    if (!conn_) return;
    if (conn_->response_started_) {
      Abort();
    } else {
      conn_->WriteError(status, text, false);
    }
  }
  void Abort() override {
    if (!conn_) return;
    H1ServerConnection* conn = conn_;
    conn->keep_alive_ = false;
    conn->Finish();
  }
  std::unique_ptr<net::Stream> TakeUpgradedStream(std::vector<uint8_t>* pending) override {
    if (!conn_) return nullptr;
    return conn_->TakeStream(pending);
  }

  RequestHead head_;

 private:
  H1ServerConnection* conn_;
  std::shared_ptr<const ConnectionInfo> info_;
};

namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string_view ReasonPhrase(int status) {
  const char* s = http_status_str(static_cast<http_status>(status));
  if (!s || s[0] == '<') return "Unknown";
  return s;
}

// SafeFieldValue: no CR, LF or NUL, so a handler cannot split the response.
bool SafeField(const Header& h) {
  if (h.name.empty()) return false;
  for (char c : h.name) {
    if (c == '\r' || c == '\n' || c == '\0' || c == ':' || c == ' ') return false;
  }
  return !HasCrLfNul(h.value);
}

// FramingField: the fields the HTTP/1.1 framing owns; handlers' copies are dropped.
bool FramingField(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "transfer-encoding" ||
         name == "content-length" || name == "proxy-connection";
}

// SimpleResponse builds a whole short text/plain response.
std::vector<uint8_t> SimpleResponse(int status, std::string_view text, bool close, bool head_only) {
  HeadWriter out(192 + text.size());
  out.Add("HTTP/1.1 ");
  out.AddNumber(static_cast<uint64_t>(status));
  out.Add(" ");
  out.Add(ReasonPhrase(status));
  out.Add("\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ");
  out.AddNumber(text.size() + 1);
  if (close) out.Add("\r\nconnection: close");
  out.Add("\r\n\r\n");
  if (!head_only) {
    out.Add(text);
    out.Add("\n");
  }
  return out.Take();
}

}  // namespace

H1ServerConnection::H1ServerConnection(net::Loop& loop, std::unique_ptr<net::Stream> stream,
                                       ConnectionInfo info, Router& router, ServerLimits limits,
                                       absl::AnyInvocable<void()> on_closed, H1ServerCounters* counters)
    : loop_(loop),
      stream_(std::move(stream)),
      info_(std::make_shared<const ConnectionInfo>(std::move(info))),
      router_(router),
      limits_(limits),
      on_closed_(std::move(on_closed)),
      counters_(counters ? counters : &own_counters_),
      parser_(H1Parser::Kind::kRequest, this, limits.max_header_bytes),
      timer_(loop),
      send_timer_(loop),
      alive_(std::make_shared<bool>(true)) {
  ++counters_->connections;
}

H1ServerConnection::~H1ServerConnection() {
  *alive_ = false;
  if (exchange_) exchange_->Detach();
  handler_.reset();
  exchange_.reset();
  if (stream_) stream_->Close();
}

void H1ServerConnection::Start() {
  ArmHeaderTimer(limits_.first_request_timeout_ms);
  stream_->SetHandler(this);
}

void H1ServerConnection::Close() { Fail(absl::CancelledError("http1: connection closed by its owner")); }

// --- timers ---------------------------------------------------------------------------------

void H1ServerConnection::ArmHeaderTimer(uint32_t timeout_ms) {
  timer_kind_ = TimerKind::kHeader;
  timer_.Start(absl::Milliseconds(timeout_ms), [this] { OnTimer(); });
}

void H1ServerConnection::ArmIdleTimer() {
  timer_kind_ = TimerKind::kIdle;
  timer_.Start(absl::Milliseconds(limits_.idle_timeout_ms), [this] { OnTimer(); });
}

void H1ServerConnection::OnTimer() {
  const TimerKind kind = timer_kind_;
  timer_kind_ = TimerKind::kNone;
  switch (kind) {
    case TimerKind::kHeader:
      ++counters_->timeouts;
      Reject(408, "request header timeout");
      break;
    case TimerKind::kIdle:
      ++counters_->idle_closes;
      Finish();
      break;
    case TimerKind::kBody: {
      if (!exchange_ || request_done_) break;
      const uint64_t now = loop_.NowMs();
      if (body_paused_ || now - last_rx_ms_ < limits_.idle_timeout_ms) {
        const uint64_t waited = body_paused_ ? 0 : now - last_rx_ms_;
        timer_kind_ = TimerKind::kBody;
        timer_.Start(absl::Milliseconds(limits_.idle_timeout_ms - waited), [this] { OnTimer(); });
        break;
      }
      ++counters_->timeouts;
      const bool answer = !response_started_;
      if (handler_) {
        ++handler_depth_;
        handler_->OnReset(absl::DeadlineExceededError("http1: request body timeout"));
        --handler_depth_;
        RetireExchange();
      }
      if (answer && !finished_) {
        SendOwned(SimpleResponse(408, "request body timeout", true, false));
        CloseAfterResponse();
      } else {
        Finish();
      }
      break;
    }
    case TimerKind::kLinger:
      Finish();
      break;
    case TimerKind::kNone:
      break;
  }
}

void H1ServerConnection::SendOwned(std::vector<uint8_t> data) {
  written_ += data.size();
  stream_->WriteOwned(std::move(data));
}

void H1ServerConnection::SendCopy(base::ByteSpan data) {
  written_ += data.size();
  stream_->Write(data);
}

void H1ServerConnection::WatchSend() {
  if (send_timer_.active() || limits_.send_timeout_ms == 0 || finished_ || !stream_) return;
  const size_t queued = stream_->WriteQueueSize();
  if (queued == 0) return;
  send_left_ = written_ - queued;
  send_timer_.Start(absl::Milliseconds(limits_.send_timeout_ms), [this] { OnSendTimer(); });
}

void H1ServerConnection::OnSendTimer() {
  if (finished_ || !stream_ || upgrade_sent_) return;
  const size_t queued = stream_->WriteQueueSize();
  if (queued == 0) return;
  if (written_ - queued > send_left_) {
    WatchSend();  // bytes left since the last look: the client is reading, however slowly
    return;
  }
  ++counters_->send_timeouts;
  P2P_LOG(kInfo, "http1.send_timeout").Kv("peer", info_->peer_address).Kv("queued", queued);
  Fail(absl::DeadlineExceededError("http1: the client took no response bytes for send_timeout_ms"));
}

// --- reading --------------------------------------------------------------------------------

bool H1ServerConnection::CanParse() const {
  if (closing_ || finished_ || upgrade_sent_) return false;
  if (!exchange_) return true;
  return !request_done_ && !body_paused_;
}

size_t H1ServerConnection::ParseSome(base::ByteSpan data) {
  size_t used = 0;
  parse_span_ = data;
  while (used < data.size() && CanParse()) {
    parser_.Resume();
    parse_used_ = used;
    used += parser_.Parse(data.subspan(used));
    if (parser_.error() != H1Error::kNone) {
      HandleParseError();
      break;
    }
    MaybeEndExchange();
  }
  parse_span_ = base::ByteSpan();
  return used;
}

void H1ServerConnection::OnData(base::ByteSpan data) {
  if (finished_) return;
  if (closing_) return;  // lingering: the bytes are discarded
  counters_->bytes_in += data.size();
  last_rx_ms_ = loop_.NowMs();
  if (timer_kind_ == TimerKind::kIdle) ArmHeaderTimer(limits_.header_timeout_ms);
  if (parsing_ || pending_off_ < pending_.size() || !CanParse()) {
    pending_.insert(pending_.end(), data.begin(), data.end());
    if (!parsing_) UpdateReading();
    return;
  }
  parsing_ = true;
  const size_t used = ParseSome(data);
  if (!finished_ && !closing_ && used < data.size()) {
    pending_.insert(pending_.end(), data.begin() + used, data.end());
  }
  parsing_ = false;
  AfterParse();
}

void H1ServerConnection::ScheduleDrain() {
  if (drain_posted_ || finished_) return;
  drain_posted_ = true;
  loop_.Post([this, alive = alive_] {
    if (!*alive) return;
    drain_posted_ = false;
    Drain();
  });
}

void H1ServerConnection::Drain() {
  if (finished_ || parsing_) return;
  parsing_ = true;
  MaybeEndExchange();
  while (pending_off_ < pending_.size() && CanParse()) {
    // Parse from a copy of the span: OnData appends only to pending_'s end while parsing_ is
    // set, which may reallocate, so re-derive the span each round and stop on no progress.
    const size_t before = pending_off_;
    const size_t n = ParseSome(base::ByteSpan(pending_.data() + pending_off_, pending_.size() - pending_off_));
    if (finished_ || closing_) break;
    pending_off_ += n;
    if (pending_off_ == before) break;
  }
  parsing_ = false;
  AfterParse();
}

void H1ServerConnection::AfterParse() {
  if (finished_) return;
  if (closing_) {
    pending_.clear();
    pending_off_ = 0;
  } else if (pending_off_ > 0 && (pending_off_ == pending_.size() || pending_off_ > kMaxBuffered)) {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(pending_off_));
    pending_off_ = 0;
  }
  if (peer_ended_ && !closing_ && pending_off_ == pending_.size() && !upgrade_sent_) {
    if (exchange_ && !request_done_) {
      Fail(absl::UnavailableError("http1: client closed the connection inside a request"));
      return;
    }
    if (!exchange_) {
      CloseAfterResponse();
      return;
    }
  }
  UpdateReading();
}

void H1ServerConnection::UpdateReading() {
  if (finished_ || !stream_) return;
  bool pause = false;
  if (!closing_) {
    pause = pending_.size() - pending_off_ >= kMaxBuffered || upgrade_sent_ ||
            (exchange_ && !request_done_ && body_paused_) || (exchange_ && request_done_ && !pending_.empty());
  }
  if (pause == read_paused_) return;
  read_paused_ = pause;
  if (pause) {
    stream_->PauseReading();
  } else {
    // Some streams deliver buffered bytes from inside ResumeReading: OnData copes.
    stream_->ResumeReading();
  }
}

void H1ServerConnection::OnEnd() {
  if (finished_) return;
  peer_ended_ = true;
  if (closing_) {
    if (stream_->WriteQueueSize() == 0) Finish();
    return;
  }
  if (!parsing_) AfterParse();
}

void H1ServerConnection::OnError(const absl::Status& status) { Fail(status); }

void H1ServerConnection::OnWriteDrained() {
  if (finished_) return;
  if (closing_) {
    if (peer_ended_) Finish();
    return;
  }
  if (handler_ && response_started_ && !response_done_) {
    ++handler_depth_;
    handler_->OnResponseDrained();
    --handler_depth_;
  }
}

void H1ServerConnection::HandleParseError() {
  const H1Error error = parser_.error();
  const std::string detail(parser_.error_detail());
  parser_.Pause();
  ++counters_->bad_requests;
  P2P_LOG(kDebug, "http1.bad_request").Kv("peer", info_->peer_address).Kv("error", std::string(H1ErrorName(error))).Kv("detail", detail);
  if (exchange_) {
    // The body's framing broke: the exchange dies.
    const bool answer = !response_started_;
    if (handler_) {
      ++handler_depth_;
      handler_->OnReset(absl::InvalidArgumentError(absl::StrCat("http1: bad request body: ", detail)));
      --handler_depth_;
    }
    RetireExchange();
    if (finished_) return;
    if (answer) {
      SendOwned(SimpleResponse(400, "bad request body", true, false));
      CloseAfterResponse();
    } else {
      Finish();
    }
    return;
  }
  const int status = H1ErrorStatus(error);
  Reject(status, status == 431 ? "request header fields too large"
                 : status == 505 ? "http version not supported"
                                 : "bad request");
}

void H1ServerConnection::Reject(int status, std::string_view text) {
  if (finished_ || closing_) return;
  parser_.Pause();
  if (exchange_) {
    // Only the header timer and head checks reject; neither happens with an exchange in flight.
    Fail(absl::InternalError("http1: reject during an exchange"));
    return;
  }
  SendOwned(SimpleResponse(status, text, true, false));
  CloseAfterResponse();
}

void H1ServerConnection::CloseAfterResponse() {
  if (finished_ || closing_) return;
  closing_ = true;
  parser_.Pause();
  pending_.clear();
  pending_off_ = 0;
  FlushHeldHead();
  stream_->Shutdown();
  if (peer_ended_ && stream_->WriteQueueSize() == 0) {
    Finish();
    return;
  }
  timer_kind_ = TimerKind::kLinger;
  timer_.Start(absl::Milliseconds(kLingerMs), [this] { OnTimer(); });
  UpdateReading();
}

void H1ServerConnection::Fail(const absl::Status& why) {
  if (finished_) return;
  if (handler_) {
    if (handler_depth_ == 0) {
      ++handler_depth_;
      handler_->OnReset(why);
      --handler_depth_;
    } else {
      // Inside one of the handler's callbacks: tell it on a later turn.
      ExchangeHandler* h = handler_.get();
      loop_.Post([h, why, keep = std::shared_ptr<ExchangeHandler>(std::move(handler_))]() mutable {
        h->OnReset(why);
      });
    }
  }
  Finish();
}

void H1ServerConnection::Finish() {
  if (finished_) return;
  finished_ = true;
  parser_.Pause();
  timer_.Stop();
  timer_kind_ = TimerKind::kNone;
  send_timer_.Stop();
  RetireExchange();
  if (stream_) stream_->Close();
  loop_.Post([this, alive = alive_] {
    if (!*alive) return;
    // Moved out first: the callback may destroy the connection, and with it on_closed_.
    absl::AnyInvocable<void()> cb = std::move(on_closed_);
    if (cb) cb();
  });
}

// --- parser events --------------------------------------------------------------------------

void H1ServerConnection::OnHead(H1Head& head) {
  timer_.Stop();
  timer_kind_ = TimerKind::kNone;
  if (head.method == "CONNECT") {
    ++counters_->bad_requests;
    Reject(405, "CONNECT is not supported");
    return;
  }
  StartExchange(head);
}

void H1ServerConnection::StartExchange(H1Head& h) {
  auto exchange = std::make_unique<H1Exchange>(this, info_);
  RequestHead& r = exchange->head_;
  r.method = std::move(h.method);
  r.scheme = info_->tls ? "https" : "http";
  r.version = h.version;
  // Target forms (RFC 9112 section 3.2): origin, asterisk (OPTIONS only), absolute.
  bool authority_from_target = false;
  if (!h.target.empty() && h.target[0] == '/') {
    r.path = std::move(h.target);
  } else if (h.target == "*") {
    if (r.method != "OPTIONS") {
      ++counters_->bad_requests;
      Reject(400, "bad request target");
      return;
    }
    r.path = "*";
  } else {
    http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(h.target.data(), h.target.size(), 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA)) ||
        !(u.field_set & (1 << UF_HOST))) {
      ++counters_->bad_requests;
      Reject(400, "bad request target");
      return;
    }
    std::string_view t(h.target);
    std::string_view scheme = t.substr(u.field_data[UF_SCHEMA].off, u.field_data[UF_SCHEMA].len);
    if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) {
      ++counters_->bad_requests;
      Reject(400, "bad request target");
      return;
    }
    size_t host_end = u.field_data[UF_HOST].off + u.field_data[UF_HOST].len;
    if (u.field_set & (1 << UF_PORT)) host_end = u.field_data[UF_PORT].off + u.field_data[UF_PORT].len;
    size_t host_off = u.field_data[UF_HOST].off;
    if (host_off > 0 && t[host_off - 1] == '[') --host_off;  // an IPv6 literal keeps its brackets
    r.authority = std::string(t.substr(host_off, host_end - host_off));
    authority_from_target = true;
    if (u.field_set & (1 << UF_PATH)) {
      r.path = std::string(t.substr(u.field_data[UF_PATH].off));
      const size_t hash = r.path.find('#');
      if (hash != std::string::npos) r.path.resize(hash);
    } else if (u.field_set & (1 << UF_QUERY)) {
      r.path = "/?";
      r.path.append(t.substr(u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len));
    } else {
      r.path = "/";
    }
  }
  r.headers.reserve(h.headers.size());
  bool upgrade_websocket = false, connection_upgrade = false;
  for (Header& f : h.headers) {
    if (f.name == "host") {
      if (!authority_from_target) r.authority = std::move(f.value);
      continue;
    }
    if (f.name == "upgrade" && HasToken(f.value, "websocket")) upgrade_websocket = true;
    if (f.name == "connection" && HasToken(f.value, "upgrade")) connection_upgrade = true;
    r.headers.push_back(std::move(f));
  }
  r.content_length = h.chunked ? -1 : h.content_length;
  r.end_stream = !h.chunked && h.content_length <= 0;
  r.upgrade_websocket = h.upgrade && upgrade_websocket && connection_upgrade && r.method == "GET";

  ++counters_->requests;
  exchange_ = std::move(exchange);
  keep_alive_ = h.keep_alive && !peer_ended_;
  is_head_ = r.method == "HEAD";
  request_done_ = false;
  response_started_ = false;
  response_done_ = false;
  response_has_body_ = true;
  chunked_ = false;
  response_remaining_ = -1;
  body_paused_ = false;
  continue_sent_ = false;
  continue_wanted_ = h.expect_continue && h.version == 11 && !r.end_stream;
  upgrade_sent_ = false;
  last_rx_ms_ = loop_.NowMs();

  ++handler_depth_;
  std::unique_ptr<ExchangeHandler> handler = router_.OnRequest(*exchange_);
  --handler_depth_;
  if (finished_) return;  // the router's handler aborted already
  handler_ = std::move(handler);
  if (!handler_) {
    ++counters_->not_found;
    if (!response_started_) WriteError(404, "not found", false);
  }
  if (continue_wanted_) {
    loop_.Post([this, alive = alive_] {
      if (*alive) SendContinueIfWanted();
    });
  }
  if (!r.end_stream) {
    timer_kind_ = TimerKind::kBody;
    timer_.Start(absl::Milliseconds(limits_.idle_timeout_ms), [this] { OnTimer(); });
  }
}

void H1ServerConnection::OnBody(base::ByteSpan data) {
  if (!handler_ || finished_) return;
  ++handler_depth_;
  handler_->OnRequestBody(data);
  --handler_depth_;
}

void H1ServerConnection::OnMessageEnd() {
  if (!exchange_) return;
  request_done_ = true;
  parser_.Pause();
  if (timer_kind_ == TimerKind::kBody) {
    timer_.Stop();
    timer_kind_ = TimerKind::kNone;
  }
  if (handler_ && !finished_) {
    ++handler_depth_;
    handler_->OnRequestEnd();
    --handler_depth_;
  }
}

// --- the exchange's end ---------------------------------------------------------------------

void H1ServerConnection::MaybeEndExchange() {
  if (!exchange_ || finished_ || !response_done_) return;
  if (!request_done_) {
    // The response is complete but the request body is not: close rather than read a body
    // nobody wants (or wait for one a 100-continue client will never send).
    keep_alive_ = false;
    if (handler_) {
      ++handler_depth_;
      handler_->OnReset(absl::CancelledError("http1: response complete before the request body"));
      --handler_depth_;
    }
    RetireExchange();
    CloseAfterResponse();
    return;
  }
  RetireExchange();
  if (!keep_alive_ || (peer_ended_ && pending_off_ == pending_.size())) {
    CloseAfterResponse();
    return;
  }
  // Ready for the next request.
  if (parser_.upgraded()) parser_.Reset();  // an upgrade the handler declined: HTTP goes on
  parser_.Resume();
  if (pending_off_ < pending_.size()) {
    ArmHeaderTimer(limits_.header_timeout_ms);
  } else {
    ArmIdleTimer();
  }
}

void H1ServerConnection::RetireExchange() {
  if (!exchange_ && !handler_) return;
  if (exchange_) exchange_->Detach();
  if (timer_kind_ == TimerKind::kBody) {
    timer_.Stop();
    timer_kind_ = TimerKind::kNone;
  }
  // Destroyed on a later turn: the handler may be inside one of its calls into the exchange.
  loop_.Post([h = std::move(handler_), e = std::move(exchange_)]() mutable {
    h.reset();
    e.reset();
  });
  body_paused_ = false;
  request_done_ = false;
  response_done_ = false;
  response_started_ = false;
  continue_wanted_ = false;
}

void H1ServerConnection::SendContinueIfWanted() {
  if (!continue_wanted_ || continue_sent_ || response_started_ || body_paused_ || finished_ || closing_) return;
  continue_sent_ = true;
  SendCopy(base::ByteSpan(reinterpret_cast<const uint8_t*>(kContinue.data()), kContinue.size()));
}

// --- writing --------------------------------------------------------------------------------

void H1ServerConnection::WriteHead(const ResponseHead& head, bool end_stream) {
  if (finished_ || closing_ || response_started_ || !exchange_) return;
  const int status = head.status;
  if (status < 100 || status > 999) {
    WriteError(500, "bad response status", true);
    return;
  }
  if (status < 200 && status != 101) return;  // other interim responses are not forwarded
  const RequestHead& req = exchange_->head_;
  // The status line (a reason is at most 31 bytes), framing fields and the blank line fit in
  // 160 bytes; each field adds ": " and CRLF.
  size_t size = 160;
  for (const Header& h : head.headers) size += h.name.size() + h.value.size() + 4;
  HeadWriter out(size);
  out.Add("HTTP/1.1 ");
  out.AddNumber(static_cast<uint64_t>(status));
  out.Add(" ");
  out.Add(ReasonPhrase(status));
  out.Add("\r\n");
  for (const Header& h : head.headers) {
    if (FramingField(h.name) || !SafeField(h)) continue;
    out.Add(h.name);
    out.Add(": ");
    out.Add(h.value);
    out.Add("\r\n");
  }
  response_started_ = true;
  if (status == 101) {
    out.Add("connection: upgrade\r\n\r\n");
    upgrade_sent_ = true;
    keep_alive_ = false;
    SendOwned(out.Take());
    UpdateReading();
    return;
  }
  if (continue_wanted_ && !continue_sent_) {
    continue_wanted_ = false;
    if (!request_done_) keep_alive_ = false;
  }
  response_has_body_ = !(is_head_ || status == 204 || status == 304);
  if (status == 204) {
    response_remaining_ = 0;
  } else if (head.content_length >= 0) {
    out.Add("content-length: ");
    out.AddNumber(static_cast<uint64_t>(head.content_length));
    out.Add("\r\n");
    response_remaining_ = response_has_body_ ? head.content_length : 0;
  } else if (!response_has_body_) {
    response_remaining_ = 0;
  } else if (end_stream) {
    out.Add("content-length: 0\r\n");
    response_remaining_ = 0;
  } else if (req.version >= 11) {
    out.Add("transfer-encoding: chunked\r\n");
    chunked_ = true;
  } else {
    keep_alive_ = false;  // HTTP/1.0 without a length: the close ends the body
  }
  if (!keep_alive_) {
    out.Add("connection: close\r\n");
  } else if (req.version == 10) {
    out.Add("connection: keep-alive\r\n");
  }
  out.Add("\r\n");
  if (end_stream || !response_has_body_) {
    SendOwned(out.Take());
    WatchSend();
  } else {
    // Held until the first body bytes, which usually come in the same turn: head and body then
    // leave as one write (one TLS record, not two). A posted flush sends it alone otherwise.
    held_head_ = out.Take();
    loop_.Post([this, alive = alive_] {
      if (*alive) FlushHeldHead();
    });
  }
  if (end_stream || !response_has_body_) {
    if (response_remaining_ > 0) {
      // A declared body that will never come: the client must not wait for it.
      Finish();
      return;
    }
    response_done_ = true;
    ScheduleDrain();
  }
}

void H1ServerConnection::WriteBody(base::ByteSpan data, bool end_stream) {
  if (finished_ || !response_started_ || response_done_ || upgrade_sent_) return;
  if (response_has_body_ && !data.empty()) {
    if (chunked_) {
      std::vector<uint8_t> out;
      out.reserve(data.size() + 24);
      AppendNumber(&out, data.size(), 16);
      AppendText(&out, "\r\n");
      out.insert(out.end(), data.begin(), data.end());
      AppendText(&out, end_stream ? "\r\n0\r\n\r\n" : "\r\n");
      EmitOwned(std::move(out));
    } else {
      if (response_remaining_ >= 0) {
        if (static_cast<int64_t>(data.size()) > response_remaining_) {
          // More than the declared length: never send bytes the client would read as the
          // next response.
          Finish();
          return;
        }
        response_remaining_ -= static_cast<int64_t>(data.size());
      }
      Emit(data);
    }
  } else if (chunked_ && end_stream) {
    static constexpr std::string_view kLast = "0\r\n\r\n";
    Emit(base::ByteSpan(reinterpret_cast<const uint8_t*>(kLast.data()), kLast.size()));
  }
  if (!end_stream) return;
  if (response_remaining_ > 0) {
    Finish();  // shorter than declared: truncated, the close tells the client
    return;
  }
  response_done_ = true;
  ScheduleDrain();
}

void H1ServerConnection::Emit(base::ByteSpan data) {
  if (held_head_.empty()) {
    SendCopy(data);
  } else {
    held_head_.insert(held_head_.end(), data.begin(), data.end());
    SendOwned(std::move(held_head_));
    held_head_.clear();
  }
  WatchSend();
}

void H1ServerConnection::EmitOwned(std::vector<uint8_t> data) {
  if (held_head_.empty()) {
    SendOwned(std::move(data));
    WatchSend();
    return;
  }
  Emit(data);
}

void H1ServerConnection::FlushHeldHead() {
  if (held_head_.empty() || !stream_ || finished_) return;
  SendOwned(std::move(held_head_));
  held_head_.clear();
  WatchSend();
}

void H1ServerConnection::WriteError(int status, std::string_view text, bool close) {
  if (close) keep_alive_ = false;
  ResponseHead head;
  head.status = status;
  head.headers.push_back({"content-type", "text/plain; charset=utf-8"});
  head.content_length = static_cast<int64_t>(text.size() + 1);
  WriteHead(head, false);
  std::string body(text);
  body.push_back('\n');
  WriteBody(base::ByteSpan(reinterpret_cast<const uint8_t*>(body.data()), body.size()), true);
}

std::unique_ptr<net::Stream> H1ServerConnection::TakeStream(std::vector<uint8_t>* pending) {
  if (!upgrade_sent_ || !stream_ || finished_) return nullptr;
  if (pending) {
    if (parse_span_.data() != nullptr) {
      // Taken from inside a parse: the other protocol starts where the request's head ended.
      const size_t off = std::min(parse_span_.size(), parse_used_ + parser_.consumed_in_call());
      pending->assign(parse_span_.begin() + static_cast<ptrdiff_t>(off), parse_span_.end());
    } else {
      pending->assign(pending_.begin() + static_cast<ptrdiff_t>(pending_off_), pending_.end());
    }
  }
  pending_.clear();
  pending_off_ = 0;
  stream_->SetHandler(nullptr);
  if (read_paused_) {
    stream_->ResumeReading();  // the new owner sees a stream that reads once it has a handler
    read_paused_ = false;
  }
  std::unique_ptr<net::Stream> out = std::move(stream_);
  ++counters_->upgrades;
  response_done_ = true;
  request_done_ = true;
  Finish();
  return out;
}

}  // namespace p2proxy::http
