// upstream.cc: UpstreamExchange, UpstreamConn and UpstreamPool.
//
// Timers: each UpstreamConn has one timer, used for the connect timeout while connecting and
// for the response-header timeout while an exchange waits for a head. The pool has one sweep
// timer, armed for the oldest idle connection's expiry.
#include "http/upstream.h"

#include "absl/strings/str_cat.h"
#include "http/wire.h"
#include "net/tcp.h"

namespace p2proxy::http {

// UpstreamConn is one connection to the upstream: owned by an exchange while it carries one,
// by the pool while idle. It is the stream's handler throughout and forwards to its owner.
class UpstreamConn final : public net::StreamHandler, public net::DeferredDeletable {
 public:
  explicit UpstreamConn(UpstreamPool* pool)
      : pool_(pool), timer_(pool->loop()), token_(std::make_shared<UpstreamConn*>(this)) {}
  ~UpstreamConn() override {
    *token_ = nullptr;
    if (stream_) stream_->Close();
  }

  void OnData(base::ByteSpan data) override {
    if (owner_) {
      owner_->OnConnData(data);
    } else {
      Lost();
    }
  }
  void OnEnd() override {
    if (owner_) {
      owner_->OnConnEnd();
    } else {
      Lost();
    }
  }
  void OnError(const absl::Status& status) override {
    if (owner_) {
      owner_->OnConnError(status);
    } else {
      Lost();
    }
  }
  void OnWriteDrained() override {
    if (owner_) owner_->OnConnDrained();
  }

  // Lost: an idle connection the upstream closed or wrote on; it cannot be used again.
  void Lost() {
    if (lost_) return;
    lost_ = true;
    if (stream_) stream_->Close();
    pool_->DropIdle(this);
  }

  UpstreamPool* pool_;
  std::unique_ptr<net::Stream> stream_;
  net::Timer timer_;
  UpstreamExchange* owner_ = nullptr;
  uint64_t idle_since_ms_ = 0;
  bool lost_ = false;
  // token_ is shared with the connect callback, which may outlive the connection.
  std::shared_ptr<UpstreamConn*> token_;
};

namespace {

bool Clean(std::string_view s) { return !HasCrLfNul(s); }

// Tail gives the last part of a status message: "tcp: connect: connection refused" ->
// "connection refused".
std::string_view Tail(std::string_view msg) {
  const size_t colon = msg.rfind(": ");
  return colon == std::string_view::npos ? msg : msg.substr(colon + 2);
}

}  // namespace

// --- UpstreamExchange -----------------------------------------------------------------------

UpstreamExchange::UpstreamExchange(UpstreamPool* pool, UpstreamRequest request, Delegate* delegate)
    : pool_(pool),
      request_(std::move(request)),
      delegate_(delegate),
      parser_(H1Parser::Kind::kResponse, this, pool->options().max_response_header_bytes),
      alive_(std::make_shared<bool>(true)) {}

UpstreamExchange::~UpstreamExchange() {
  *alive_ = false;
  DropConn();
}

bool UpstreamExchange::Idempotent() const {
  const std::string& m = request_.method;
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

void UpstreamExchange::Begin() {
  ++pool_->counters_.requests;
  parser_.SetSkipBody(request_.method == "HEAD");
  bool clean = Clean(request_.method) && Clean(request_.target) && Clean(request_.host) &&
               request_.target.find(' ') == std::string::npos && !request_.target.empty();
  size_t size = request_.method.size() + request_.target.size() + request_.host.size() + 64;
  for (const Header& h : request_.headers) {
    size += h.name.size() + h.value.size() + 4;
    clean = clean && Clean(h.name) && Clean(h.value) && !h.name.empty();
  }
  if (!clean) {
    failed_ = true;
    pool_->loop().Post([this, alive = alive_] {
      if (*alive) delegate_->OnUpstreamError(UpstreamError::kBadRequest,
                                             absl::InvalidArgumentError("upstream: request field holds CR, LF or NUL"));
    });
    return;
  }
  HeadWriter w(size);
  w.Add(request_.method);
  w.Add(" ");
  w.Add(request_.target);
  w.Add(" HTTP/1.1\r\nhost: ");
  w.Add(request_.host);
  w.Add("\r\n");
  for (const Header& h : request_.headers) {
    w.Add(h.name);
    w.Add(": ");
    w.Add(h.value);
    w.Add("\r\n");
  }
  if (request_.no_body) {
    body_remaining_ = 0;
    request_done_ = true;
  } else if (request_.content_length >= 0) {
    w.Add("content-length: ");
    w.AddNumber(static_cast<uint64_t>(request_.content_length));
    w.Add("\r\n");
    body_remaining_ = request_.content_length;
    request_done_ = request_.content_length == 0;
  } else {
    w.Add("transfer-encoding: chunked\r\n");
  }
  w.Add("\r\n");
  head_bytes_ = w.Take();
  std::unique_ptr<UpstreamConn> conn = pool_->TakeIdle();
  if (conn) {
    ++pool_->counters_.reused;
    Attach(std::move(conn), true);
    WriteRequestHead();
  } else {
    Connect();
  }
}

void UpstreamExchange::Attach(std::unique_ptr<UpstreamConn> conn, bool reused) {
  conn_ = std::move(conn);
  conn_->owner_ = this;
  reused_ = reused;
  connected_ = conn_->stream_ != nullptr;
  got_bytes_ = false;
}

void UpstreamExchange::Connect() {
  ++pool_->counters_.connects;
  Attach(std::make_unique<UpstreamConn>(pool_), false);
  conn_->timer_.Start(absl::Milliseconds(pool_->options().connect_timeout_ms), [this] {
    ++pool_->counters_.connect_failures;
    Fail(UpstreamError::kConnectTimeout, absl::DeadlineExceededError("upstream connect: timed out"));
  });
  auto on_connected = [token = conn_->token_](absl::StatusOr<std::unique_ptr<net::TcpStream>> result) {
    UpstreamConn* conn = *token;
    if (!conn || !conn->owner_) return;  // given up on: the stream closes here
    if (!result.ok()) {
      conn->owner_->OnConnected(result.status());
      return;
    }
    conn->stream_ = std::move(*result);
    conn->stream_->SetHandler(conn);
    conn->owner_->OnConnected(absl::OkStatus());
  };
  if (pool_->options().connect) {
    pool_->options().connect(std::move(on_connected));
  } else {
    net::TcpStream::Connect(pool_->loop(), pool_->target(), std::move(on_connected));
  }
}

void UpstreamExchange::OnConnected(const absl::Status& status) {
  conn_->timer_.Stop();
  if (!status.ok()) {
    ++pool_->counters_.connect_failures;
    Fail(UpstreamError::kConnect,
         absl::UnavailableError(absl::StrCat("upstream connect: ", std::string(Tail(std::string_view(
                                                                       status.message().data(), status.message().size()))))));
    return;
  }
  connected_ = true;
  WriteRequestHead();
}

void UpstreamExchange::WriteRequestHead() {
  net::Stream* s = conn_->stream_.get();
  if (reused_) {
    s->Write(head_bytes_);  // kept for a retry
  } else {
    s->WriteOwned(std::move(head_bytes_));
    head_bytes_.clear();
  }
  if (!preconnect_.empty()) {
    s->WriteOwned(std::move(preconnect_));
    preconnect_.clear();
  }
  if (request_done_) ArmHeaderTimer();
}

void UpstreamExchange::ArmHeaderTimer() {
  if (head_seen_ || !conn_) return;
  conn_->timer_.Start(absl::Milliseconds(pool_->options().response_header_timeout_ms), [this] {
    Fail(UpstreamError::kHeaderTimeout,
         absl::DeadlineExceededError(absl::StrCat("upstream: no response head within ",
                                                  pool_->options().response_header_timeout_ms, " ms")));
  });
}

void UpstreamExchange::Write(base::ByteSpan data) {
  if (data.empty()) return;
  if (reused_ && replayable_ && !got_bytes_) {
    if (replay_.size() + data.size() <= kMaxReplayBytes) {
      replay_.insert(replay_.end(), data.begin(), data.end());
    } else {
      replayable_ = false;
      replay_.clear();
      replay_.shrink_to_fit();
    }
  }
  if (!connected_) {
    preconnect_.insert(preconnect_.end(), data.begin(), data.end());
  } else {
    conn_->stream_->Write(data);
  }
}

void UpstreamExchange::SendBody(base::ByteSpan data, bool end_stream) {
  if (failed_ || request_done_ || !conn_) return;
  if (body_remaining_ >= 0) {
    const size_t n = std::min<uint64_t>(data.size(), static_cast<uint64_t>(body_remaining_));
    body_remaining_ -= static_cast<int64_t>(n);
    Write(data.first(n));
    if (end_stream && body_remaining_ > 0) {
      Fail(UpstreamError::kBadRequest, absl::InvalidArgumentError("upstream: request body shorter than its Content-Length"));
      return;
    }
  } else if (!data.empty() || end_stream) {
    std::vector<uint8_t> framed;
    framed.reserve(data.size() + 24);
    if (!data.empty()) {
      AppendNumber(&framed, data.size(), 16);
      AppendText(&framed, "\r\n");
      framed.insert(framed.end(), data.begin(), data.end());
      AppendText(&framed, "\r\n");
    }
    if (end_stream) AppendText(&framed, "0\r\n\r\n");
    Write(framed);
  }
  if (end_stream) {
    request_done_ = true;
    if (connected_) ArmHeaderTimer();
  }
}

size_t UpstreamExchange::WriteQueueSize() const {
  if (!conn_) return 0;
  if (!connected_) return preconnect_.size();
  return conn_->stream_ ? conn_->stream_->WriteQueueSize() : 0;
}

void UpstreamExchange::PauseResponse() {
  if (paused_) return;
  paused_ = true;
  parser_.Pause();
  if (conn_ && conn_->stream_) conn_->stream_->PauseReading();
}

void UpstreamExchange::ResumeResponse() {
  if (!paused_) return;
  paused_ = false;
  ScheduleDrain();
}

void UpstreamExchange::ScheduleDrain() {
  if (drain_posted_) return;
  drain_posted_ = true;
  pool_->loop().Post([this, alive = alive_] {
    if (!*alive) return;
    drain_posted_ = false;
    Drain();
  });
}

void UpstreamExchange::Drain() {
  if (failed_ || !conn_ || paused_ || upgraded_ || end_delivered_) return;
  if (pending_off_ < pending_.size()) {
    const size_t used = Consume(base::ByteSpan(pending_.data() + pending_off_, pending_.size() - pending_off_));
    pending_off_ += used;
    const size_t leftover = pending_.size() - pending_off_;
    if (leftover == 0) {
      pending_.clear();
      pending_off_ = 0;
    }
    AfterConsume(leftover);
    if (failed_ || !conn_ || paused_ || upgraded_ || end_delivered_) return;
  }
  if (eof_) {
    HandleEof();
    return;
  }
  if (conn_->stream_) conn_->stream_->ResumeReading();
}

size_t UpstreamExchange::Consume(base::ByteSpan data) {
  size_t used = 0;
  parsing_ = true;
  while (used < data.size() && !paused_ && !failed_ && !response_done_ && !upgraded_) {
    parser_.Resume();
    used += parser_.Parse(data.subspan(used));
    if (parser_.error() != H1Error::kNone) {
      parsing_ = false;
      Fail(UpstreamError::kBadResponse,
           absl::InternalError(absl::StrCat("upstream: bad response: ", std::string(H1ErrorName(parser_.error())), " (",
                                            std::string(parser_.error_detail()), ")")));
      return used;
    }
  }
  parsing_ = false;
  return used;
}

void UpstreamExchange::AfterConsume(size_t leftover) {
  if (failed_) return;
  if (upgraded_ && !upgrade_delivered_) {
    upgrade_delivered_ = true;
    if (conn_ && conn_->stream_) conn_->stream_->PauseReading();
    delegate_->OnResponseHead(upgrade_head_);
    return;
  }
  if (response_done_ && !end_delivered_) {
    end_delivered_ = true;
    ReleaseOrClose(leftover == 0 && pending_off_ == pending_.size());
    delegate_->OnResponseEnd();
  }
}

void UpstreamExchange::OnConnData(base::ByteSpan data) {
  got_bytes_ = true;
  if (failed_ || end_delivered_) return;
  if (upgraded_ || parsing_ || paused_ || pending_off_ < pending_.size()) {
    pending_.insert(pending_.end(), data.begin(), data.end());
    return;
  }
  const size_t used = Consume(data);
  if (failed_) return;
  const size_t leftover = data.size() - used;
  if (leftover > 0 && !response_done_) pending_.insert(pending_.end(), data.begin() + used, data.end());
  AfterConsume(leftover);
}

void UpstreamExchange::OnConnEnd() {
  eof_ = true;
  if (failed_ || end_delivered_ || upgraded_) return;
  if (parsing_ || paused_ || pending_off_ < pending_.size()) return;  // Drain handles it
  HandleEof();
}

void UpstreamExchange::HandleEof() {
  if (failed_ || end_delivered_ || upgraded_) return;
  if (!head_seen_) {
    ConnLost(absl::UnavailableError("upstream closed the connection before responding"));
    return;
  }
  if (!parser_.Finish()) {
    Fail(UpstreamError::kResetInBody, absl::UnavailableError("upstream closed the connection inside the response body"));
    return;
  }
  AfterConsume(0);
}

void UpstreamExchange::OnConnError(const absl::Status& status) {
  if (failed_ || end_delivered_) return;
  if (upgraded_) {
    Fail(UpstreamError::kReset, status);
    return;
  }
  ConnLost(absl::UnavailableError(absl::StrCat("upstream: ", std::string(Tail(std::string_view(status.message().data(), status.message().size()))))));
}

void UpstreamExchange::OnConnDrained() {
  if (failed_) return;
  delegate_->OnRequestDrained();
}

void UpstreamExchange::ConnLost(const absl::Status& status) {
  if (!got_bytes_ && !head_seen_ && reused_ && !retried_ && Idempotent() && replayable_) {
    // The upstream closed a pooled connection as we wrote on it: once more on a new one.
    retried_ = true;
    ++pool_->counters_.retries;
    DropConn();
    std::vector<uint8_t> body = std::move(replay_);
    replay_.clear();
    parser_.Reset();
    parser_.SetSkipBody(request_.method == "HEAD");
    Connect();
    preconnect_ = std::move(body);
    return;
  }
  Fail(head_seen_ ? UpstreamError::kResetInBody : UpstreamError::kReset, status);
}

void UpstreamExchange::Fail(UpstreamError kind, const absl::Status& status) {
  if (failed_ || end_delivered_) return;
  failed_ = true;
  parser_.Pause();
  DropConn();
  // On a later turn: Fail may run inside the parser or inside one of the delegate's calls.
  pool_->loop().Post([this, alive = alive_, kind, status] {
    if (*alive) delegate_->OnUpstreamError(kind, status);
  });
}

void UpstreamExchange::ReleaseOrClose(bool clean) {
  if (!conn_) return;
  const bool reusable = clean && request_done_ && body_remaining_ <= 0 && parser_.keep_alive() && !upgraded_ &&
                        connected_ && conn_->stream_ && conn_->stream_->WriteQueueSize() == 0 && !eof_;
  if (!reusable) {
    DropConn();
    return;
  }
  conn_->timer_.Stop();
  conn_->owner_ = nullptr;
  ++pool_->counters_.released;
  net::Stream* stream = conn_->stream_.get();
  pool_->Release(std::move(conn_));
  // A response that was paused may leave the stream paused: an idle connection must read, to
  // notice the upstream closing it (and to read the next response). After Release: a stream
  // that delivers from inside ResumeReading finds the connection idle and drops it.
  stream->ResumeReading();
}

void UpstreamExchange::DropConn() {
  if (!conn_) return;
  conn_->timer_.Stop();
  conn_->owner_ = nullptr;
  if (conn_->stream_) conn_->stream_->Close();
  pool_->loop().DeferDelete(std::move(conn_));
}

std::unique_ptr<net::Stream> UpstreamExchange::TakeUpgradedStream(std::vector<uint8_t>* pending) {
  if (!upgraded_ || failed_ || !conn_ || !conn_->stream_) return nullptr;
  if (pending) pending->assign(pending_.begin() + static_cast<ptrdiff_t>(pending_off_), pending_.end());
  pending_.clear();
  pending_off_ = 0;
  std::unique_ptr<net::Stream> s = std::move(conn_->stream_);
  s->SetHandler(nullptr);
  s->ResumeReading();
  failed_ = true;  // nothing more from this exchange
  DropConn();
  return s;
}

void UpstreamExchange::OnHead(H1Head& head) {
  if (head.status < 200 && head.status != 101) {
    interim_ = true;  // 100 Continue, 103 Early Hints: not forwarded
    return;
  }
  head_seen_ = true;
  if (conn_) conn_->timer_.Stop();
  UpstreamResponse resp;
  resp.status = head.status;
  resp.version = head.version;
  resp.headers = std::move(head.headers);
  resp.content_length = head.content_length;
  resp.end_stream = request_.method == "HEAD" || head.status == 204 || head.status == 304 || head.content_length == 0;
  if (head.status == 101) {
    if (!request_.upgrade || !head.upgrade) {
      Fail(UpstreamError::kBadResponse, absl::InternalError("upstream: unexpected 101 response"));
      return;
    }
    upgraded_ = true;
    resp.end_stream = true;
    resp.content_length = -1;
    upgrade_head_ = std::move(resp);
    return;
  }
  delegate_->OnResponseHead(resp);
}

void UpstreamExchange::OnBody(base::ByteSpan data) {
  if (failed_ || interim_) return;
  delegate_->OnResponseBody(data);
}

void UpstreamExchange::OnMessageEnd() {
  if (interim_) {
    interim_ = false;
    return;
  }
  response_done_ = true;
  parser_.Pause();
}

// --- UpstreamPool ---------------------------------------------------------------------------

UpstreamPool::UpstreamPool(net::Loop& loop, base::SocketAddress target, PoolOptions options)
    : loop_(loop), target_(target), options_(options), sweep_(loop) {}

UpstreamPool::~UpstreamPool() { idle_.clear(); }

std::unique_ptr<UpstreamExchange> UpstreamPool::Start(UpstreamRequest request, UpstreamExchange::Delegate* delegate) {
  std::unique_ptr<UpstreamExchange> ex(new UpstreamExchange(this, std::move(request), delegate));
  ex->Begin();
  return ex;
}

std::unique_ptr<UpstreamConn> UpstreamPool::TakeIdle() {
  const uint64_t now = loop_.NowMs();
  while (!idle_.empty()) {
    std::unique_ptr<UpstreamConn> conn = std::move(idle_.back());
    idle_.pop_back();
    if (!conn->lost_ && conn->stream_ && now - conn->idle_since_ms_ < options_.idle_timeout_ms) {
      ArmSweep();
      return conn;
    }
    ++counters_.idle_expired;
    Discard(std::move(conn));
  }
  ArmSweep();
  return nullptr;
}

void UpstreamPool::Release(std::unique_ptr<UpstreamConn> conn) {
  if (options_.max_idle == 0) {
    Discard(std::move(conn));
    return;
  }
  if (idle_.size() >= options_.max_idle) {
    ++counters_.idle_expired;
    Discard(std::move(idle_.front()));
    idle_.erase(idle_.begin());
  }
  conn->idle_since_ms_ = loop_.NowMs();
  idle_.push_back(std::move(conn));
  ArmSweep();
}

void UpstreamPool::DropIdle(UpstreamConn* conn) {
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->get() != conn) continue;
    ++counters_.idle_lost;
    Discard(std::move(*it));  // deferred: we are inside its stream's callback
    idle_.erase(it);
    break;
  }
  ArmSweep();
}

void UpstreamPool::ArmSweep() {
  if (idle_.empty()) {
    sweep_.Stop();
    return;
  }
  if (sweep_.active()) return;
  const uint64_t now = loop_.NowMs();
  const uint64_t expiry = idle_.front()->idle_since_ms_ + options_.idle_timeout_ms;
  sweep_.Start(absl::Milliseconds(expiry > now ? expiry - now : 0), [this] { Sweep(); });
}

void UpstreamPool::Sweep() {
  const uint64_t now = loop_.NowMs();
  while (!idle_.empty() && now - idle_.front()->idle_since_ms_ >= options_.idle_timeout_ms) {
    ++counters_.idle_expired;
    Discard(std::move(idle_.front()));
    idle_.erase(idle_.begin());
  }
  ArmSweep();
}

void UpstreamPool::Discard(std::unique_ptr<UpstreamConn> conn) {
  if (conn->stream_) conn->stream_->Close();
  loop_.DeferDelete(std::move(conn));
}

}  // namespace p2proxy::http
