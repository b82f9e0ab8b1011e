// h1_test_util.h: helpers for the HTTP/1.1 tests: a raw loopback client, a server of
// H1ServerConnections on a TcpListener, a response parser (H1Parser in response mode), and a
// small configurable app (ExchangeHandler) to stand in for an upstream service.
#ifndef P2PROXY_TESTS_HTTP_H1_TEST_UTIL_H_
#define P2PROXY_TESTS_HTTP_H1_TEST_UTIL_H_

#include <openssl/sha.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.h"
#include "http/h1_parser.h"
#include "http/h1_server.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "net/timer.h"

namespace p2proxy::http::testing {

inline base::ByteSpan Bytes(std::string_view s) {
  return base::ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

inline std::vector<uint8_t> Pattern(size_t len, uint32_t seed) {
  std::vector<uint8_t> v(len);
  uint32_t x = seed;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

// Digest is an incremental SHA-256.
class Digest {
 public:
  Digest() { SHA256_Init(&ctx_); }
  void Update(base::ByteSpan d) {
    SHA256_Update(&ctx_, d.data(), d.size());
    size += d.size();
  }
  std::string Hex() const {
    SHA256_CTX copy = ctx_;
    uint8_t out[SHA256_DIGEST_LENGTH];
    SHA256_Final(out, &copy);
    static const char* kHex = "0123456789abcdef";
    std::string s;
    for (uint8_t b : out) {
      s.push_back(kHex[b >> 4]);
      s.push_back(kHex[b & 15]);
    }
    return s;
  }
  static std::string Of(base::ByteSpan d) {
    Digest x;
    x.Update(d);
    return x.Hex();
  }
  size_t size = 0;

 private:
  SHA256_CTX ctx_;
};

// TestResponse is one parsed response.
struct TestResponse {
  int status = 0;
  int version = 11;
  std::vector<Header> headers;
  std::string body;
  bool keep_alive = true;
  std::string Get(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.name == name) return h.value;
    }
    return "";
  }
  bool Has(std::string_view name) const {
    for (const auto& h : headers) {
      if (h.name == name) return true;
    }
    return false;
  }
};

// ResponseReader parses a byte stream of responses (a client's view).
class ResponseReader : private H1Parser::Visitor {
 public:
  ResponseReader() : parser_(H1Parser::Kind::kResponse, this, 1 << 20) {}
  // Feed parses |bytes|; complete responses land in |responses|.
  void Feed(std::string_view bytes) {
    base::ByteSpan d = Bytes(bytes);
    while (!d.empty() && parser_.error() == H1Error::kNone && !parser_.upgraded()) {
      parser_.Resume();
      const size_t n = parser_.Parse(d);
      d = d.subspan(n);
      if (n == 0 && !parser_.paused()) break;
    }
    if (parser_.upgraded()) rest.append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  // Finish reports end of stream (close-delimited bodies end here).
  bool Finish() { return parser_.Finish(); }
  void SetSkipBody(bool skip) { parser_.SetSkipBody(skip); }
  bool error() const { return parser_.error() != H1Error::kNone; }
  bool in_message() const { return parser_.in_message(); }
  std::vector<TestResponse> responses;
  std::string rest;  // bytes after an upgrade
  bool saw_continue = false;

 private:
  void OnHead(H1Head& head) override {
    if (head.status == 100) saw_continue = true;
    current_ = TestResponse();
    current_.status = head.status;
    current_.version = head.version;
    current_.headers = head.headers;
  }
  void OnBody(base::ByteSpan d) override { current_.body.append(reinterpret_cast<const char*>(d.data()), d.size()); }
  void OnMessageEnd() override {
    if (current_.status == 100) return;
    current_.keep_alive = parser_.keep_alive();
    responses.push_back(std::move(current_));
  }
  H1Parser parser_;
  TestResponse current_;
};

// RawClient is a loopback TCP client that keeps what it receives.
class RawClient : public net::StreamHandler {
 public:
  RawClient(net::Loop& loop, const base::SocketAddress& to) : loop_(loop) {
    net::TcpStream::Connect(loop, to, [this](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
      connect_status = s.status();
      connect_done = true;
      if (s.ok()) {
        stream = std::move(*s);
        stream->SetHandler(this);
        if (!queued_.empty()) stream->Write(Bytes(queued_));
        queued_.clear();
      }
    });
  }
  bool WaitConnected() {
    return loop_.RunUntil([&] { return connect_done; }, absl::Seconds(10)) && connect_status.ok();
  }
  void Send(std::string_view bytes) {
    if (stream) {
      stream->Write(Bytes(bytes));
    } else {
      queued_.append(bytes);
    }
  }
  bool Wait(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(20)) {
    return loop_.RunUntil(done, limit);
  }
  // WaitResponses waits until |n| complete responses were read.
  bool WaitResponses(size_t n, absl::Duration limit = absl::Seconds(20)) {
    return Wait([&] { return reader.responses.size() >= n || reader.error(); }, limit) && reader.responses.size() >= n;
  }
  bool WaitClosed(absl::Duration limit = absl::Seconds(20)) {
    return Wait([&] { return ended || !error.ok(); }, limit);
  }

  void OnData(base::ByteSpan d) override {
    std::string_view s(reinterpret_cast<const char*>(d.data()), d.size());
    received_bytes += d.size();
    if (keep_text) text.append(s);
    if (parse) reader.Feed(s);
    if (on_data) on_data(d);
  }
  void OnEnd() override {
    ended = true;
    if (parse) reader.Finish();
  }
  void OnError(const absl::Status& s) override { error = s; }

  net::Loop& loop_;
  std::unique_ptr<net::TcpStream> stream;
  absl::Status connect_status = absl::UnknownError("pending");
  bool connect_done = false;
  bool keep_text = true;
  bool parse = true;
  std::string text;
  size_t received_bytes = 0;
  ResponseReader reader;
  bool ended = false;
  absl::Status error;
  std::function<void(base::ByteSpan)> on_data;

 private:
  std::string queued_;
};

// TrickleStream wraps a stream and hands it at most |per_tick| queued bytes every |tick|: a
// slow network that keeps moving. Its WriteQueueSize() is what waits here plus the inner
// stream's queue; OnWriteDrained comes when its own queue empties.
class TrickleStream final : public net::Stream, private net::StreamHandler {
 public:
  TrickleStream(net::Loop& loop, std::unique_ptr<net::Stream> inner, size_t per_tick, absl::Duration tick)
      : inner_(std::move(inner)), timer_(loop), per_tick_(per_tick), tick_(tick) {
    inner_->SetHandler(this);
  }
  void SetHandler(net::StreamHandler* h) override { handler_ = h; }
  void Write(base::ByteSpan data, WriteCallback done = nullptr) override {
    WriteOwned(std::vector<uint8_t>(data.begin(), data.end()), std::move(done));
  }
  void WriteOwned(std::vector<uint8_t> data, WriteCallback done = nullptr) override {
    queue_.insert(queue_.end(), data.begin(), data.end());
    if (done) dones_.emplace_back(forwarded_ + queue_.size() - off_, std::move(done));
    Arm();
  }
  size_t WriteQueueSize() const override { return queue_.size() - off_ + inner_->WriteQueueSize(); }
  // forwarded: the bytes handed to the inner stream so far.
  size_t forwarded() const { return forwarded_; }
  void Shutdown() override {
    shutdown_ = true;
    if (off_ == queue_.size()) inner_->Shutdown();
  }
  void Close() override {
    timer_.Stop();
    inner_->Close();
  }
  void PauseReading() override { inner_->PauseReading(); }
  void ResumeReading() override { inner_->ResumeReading(); }

 private:
  void Arm() {
    if (!timer_.active() && off_ < queue_.size()) timer_.Start(tick_, [this] { Tick(); });
  }
  void Tick() {
    const size_t n = std::min(per_tick_, queue_.size() - off_);
    inner_->Write(base::ByteSpan(queue_.data() + off_, n));
    off_ += n;
    forwarded_ += n;
    while (!dones_.empty() && dones_.front().first <= forwarded_) {
      auto done = std::move(dones_.front().second);
      dones_.pop_front();
      done(absl::OkStatus());
    }
    if (off_ < queue_.size()) {
      Arm();
      return;
    }
    queue_.clear();
    off_ = 0;
    if (shutdown_) inner_->Shutdown();
    if (handler_) handler_->OnWriteDrained();
  }
  void OnData(base::ByteSpan d) override {
    if (handler_) handler_->OnData(d);
  }
  void OnEnd() override {
    if (handler_) handler_->OnEnd();
  }
  void OnError(const absl::Status& s) override {
    if (handler_) handler_->OnError(s);
  }

  std::unique_ptr<net::Stream> inner_;
  net::Timer timer_;
  size_t per_tick_;
  absl::Duration tick_;
  net::StreamHandler* handler_ = nullptr;
  std::vector<uint8_t> queue_;
  size_t off_ = 0;
  size_t forwarded_ = 0;
  std::deque<std::pair<size_t, WriteCallback>> dones_;
  bool shutdown_ = false;
};

// FnRouter makes handlers with a function (nullptr: 404).
class FnRouter : public Router {
 public:
  explicit FnRouter(std::function<std::unique_ptr<ExchangeHandler>(Exchange&)> fn) : fn_(std::move(fn)) {}
  std::unique_ptr<ExchangeHandler> OnRequest(Exchange& exchange) override { return fn_(exchange); }

 private:
  std::function<std::unique_ptr<ExchangeHandler>(Exchange&)> fn_;
};

// TestServer accepts loopback connections and serves each with an H1ServerConnection.
class TestServer {
 public:
  TestServer(net::Loop& loop, Router& router, ServerLimits limits = {}) : loop_(loop), router_(router), limits_(limits) {
    auto l = net::TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                      [this](std::unique_ptr<net::TcpStream> s) { Accept(std::move(s)); });
    listener_ = std::move(*l);
  }
  // The destructor also lets the loop run the tasks the connections posted (retired handlers
  // are destroyed there), while whatever those handlers use still exists.
  ~TestServer() {
    conns_.clear();
    for (int i = 0; i < 4; ++i) loop_.RunOnce(false);
  }
  base::SocketAddress address() const { return listener_->local_address(); }
  void Accept(std::unique_ptr<net::TcpStream> s) {
    ++accepted;
    ConnectionInfo info;
    const base::SocketAddress peer = s->peer_address();
    info.peer_address = peer.IpString();
    info.peer_port = peer.port();
    std::unique_ptr<net::Stream> stream = std::move(s);
    if (wrap) stream = wrap(std::move(stream));
    conns_.push_back(std::make_unique<H1ServerConnection>(loop_, std::move(stream), info, router_, limits_,
                                                          [this] { ++closed; }, &counters));
    conns_.back()->Start();
  }
  // live: connections not yet finished.
  size_t live() const {
    size_t n = 0;
    for (const auto& c : conns_) n += !c->finished();
    return n;
  }
  int closed = 0;  // on_closed calls
  // wrap, if set, wraps each accepted stream (e.g. in a TrickleStream).
  std::function<std::unique_ptr<net::Stream>(std::unique_ptr<net::Stream>)> wrap;
  int accepted = 0;
  H1ServerCounters counters;

 private:
  net::Loop& loop_;
  Router& router_;
  ServerLimits limits_;
  std::unique_ptr<net::TcpListener> listener_;
  std::vector<std::unique_ptr<H1ServerConnection>> conns_;
};

// AppLog is what an App saw, across all its requests.
struct AppLog {
  std::vector<RequestHead> requests;
  std::vector<std::string> body_digests;
  std::vector<size_t> body_sizes;
  uint64_t response_bytes_sent = 0;  // body bytes handed to the exchange
  int resets = 0;
  bool stalled = false;  // the app is waiting for its response queue to drain
};

// AppConfig says how an App answers.
struct AppConfig {
  int status = 200;
  std::vector<Header> headers;
  // kFixed: a pattern body of |body_size| bytes, with Content-Length unless |chunked|.
  // kEcho: the request body streamed back (chunked), sent as it arrives.
  // kSilent: never answers. kReset: sends the head and half of a fixed body, then aborts.
  enum Mode { kFixed, kEcho, kSilent, kReset } mode = kFixed;
  size_t body_size = 0;
  bool chunked = false;
  uint32_t seed = 7;
  size_t high_water = 256 * 1024;
};

// App is an ExchangeHandler that stands in for an upstream service.
class App : public ExchangeHandler {
 public:
  App(Exchange& ex, AppConfig cfg, AppLog* log) : ex_(ex), cfg_(std::move(cfg)), log_(log) {
    log_->requests.push_back(ex.request());
    if (cfg_.mode == AppConfig::kEcho) {
      ResponseHead h;
      h.status = cfg_.status;
      h.headers = cfg_.headers;
      ex_.SendResponseHead(h, false);
    }
  }
  void OnRequestBody(base::ByteSpan d) override {
    digest_.Update(d);
    if (cfg_.mode == AppConfig::kEcho) {
      ex_.SendResponseBody(d, false);
      log_->response_bytes_sent += d.size();
      if (ex_.ResponseQueueSize() > cfg_.high_water && !paused_) {
        paused_ = true;
        ex_.PauseRequestBody();
      }
    }
  }
  void OnRequestEnd() override {
    log_->body_digests.push_back(digest_.Hex());
    log_->body_sizes.push_back(digest_.size);
    switch (cfg_.mode) {
      case AppConfig::kEcho:
        ex_.SendResponseBody(base::ByteSpan(), true);
        break;
      case AppConfig::kFixed:
      case AppConfig::kReset: {
        body_ = Pattern(cfg_.body_size, cfg_.seed);
        ResponseHead h;
        h.status = cfg_.status;
        h.headers = cfg_.headers;
        h.content_length = cfg_.chunked ? -1 : static_cast<int64_t>(body_.size());
        ex_.SendResponseHead(h, body_.empty() && !cfg_.chunked);
        if (!body_.empty() || cfg_.chunked) Pump();
        break;
      }
      case AppConfig::kSilent:
        break;
    }
  }
  void OnReset(const absl::Status&) override { ++log_->resets; }
  void OnResponseDrained() override {
    if (paused_) {
      paused_ = false;
      ex_.ResumeRequestBody();
    }
    if (cfg_.mode == AppConfig::kFixed || cfg_.mode == AppConfig::kReset) Pump();
  }

 private:
  void Pump() {
    log_->stalled = false;
    const bool reset = cfg_.mode == AppConfig::kReset;
    const size_t limit = reset ? body_.size() / 2 : body_.size();
    while (sent_ < limit) {
      if (ex_.ResponseQueueSize() > cfg_.high_water) {
        log_->stalled = true;
        return;
      }
      const size_t n = std::min<size_t>(64 * 1024, limit - sent_);
      const bool last = !reset && sent_ + n == body_.size();
      ex_.SendResponseBody(base::ByteSpan(body_.data() + sent_, n), last);
      sent_ += n;
      log_->response_bytes_sent += n;
      if (last) {
        ended_ = true;
        return;
      }
    }
    if (ended_) return;
    ended_ = true;
    if (reset) {
      ex_.Abort();
    } else {
      ex_.SendResponseBody(base::ByteSpan(), true);
    }
  }

  Exchange& ex_;
  AppConfig cfg_;
  AppLog* log_;
  Digest digest_;
  std::vector<uint8_t> body_;
  size_t sent_ = 0;
  bool paused_ = false;
  bool ended_ = false;
};

// AppRouter serves every request with an App.
class AppRouter : public Router {
 public:
  explicit AppRouter(AppConfig cfg = {}) : cfg(std::move(cfg)) {}
  std::unique_ptr<ExchangeHandler> OnRequest(Exchange& ex) override { return std::make_unique<App>(ex, cfg, &log); }
  AppConfig cfg;
  AppLog log;
};

// Request builds a request text.
inline std::string Request(std::string_view method, std::string_view path, std::string_view host,
                           std::vector<std::string> extra = {}, std::string_view body = "") {
  std::string s;
  s.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n");
  for (const auto& e : extra) s.append(e).append("\r\n");
  if (!body.empty()) s.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  s.append("\r\n").append(body);
  return s;
}

inline std::string FindHeader(const std::vector<Header>& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.name == name) return h.value;
  }
  return "";
}

inline int CountHeader(const std::vector<Header>& headers, std::string_view name) {
  int n = 0;
  for (const auto& h : headers) n += h.name == name;
  return n;
}

}  // namespace p2proxy::http::testing

#endif  // P2PROXY_TESTS_HTTP_H1_TEST_UTIL_H_
