// h2_server_fuzzer: an H2ServerConnection fed arbitrary client bytes over an in-memory Stream,
// with a router whose handlers answer, stream, pause, abort or fail by path. Nothing a client
// sends may crash, leak or hang the server, and no request the site's path policy would
// forward may reach a denied prefix (path_policy_check.h).
//
// Input: byte 0 is the chunk size minus one (bytes are fed in chunks of 1..256); byte 1 holds
// flags (kPrependPreface, kSlowSocket, kEndAtEnd, kErrorAtEnd); the rest is the client's bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "http/h2_server.h"
#include "net/loop.h"
#include "net/stream.h"
#include "path_policy_check.h"

using namespace p2proxy;
using namespace p2proxy::http;

namespace {

constexpr uint8_t kPrependPreface = 0x01;  // the client magic is added before the input
constexpr uint8_t kSlowSocket = 0x02;      // writes pile up until the fuzzer drains them
constexpr uint8_t kEndAtEnd = 0x04;        // the client half-closes after its bytes
constexpr uint8_t kErrorAtEnd = 0x08;      // the transport fails after the client's bytes
constexpr uint8_t kShutdown = 0x10;        // the server shuts down gracefully after the first chunk
constexpr std::string_view kClientMagic = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// FakeStream swallows writes; with |slow| it reports them queued until Drain().
class FakeStream : public net::Stream {
 public:
  FakeStream(net::Loop& loop, bool slow) : loop_(loop), slow_(slow) {}
  void SetHandler(net::StreamHandler* handler) override { handler_ = handler; }
  void Write(base::ByteSpan data, WriteCallback done) override { Queue(data.size(), std::move(done)); }
  void WriteOwned(std::vector<uint8_t> data, WriteCallback done) override {
    Queue(data.size(), std::move(done));
  }
  size_t WriteQueueSize() const override { return queued_; }
  void Shutdown() override { shutdown_ = true; }
  void Close() override { closed_ = true; }
  void PauseReading() override { paused_ = true; }
  void ResumeReading() override { paused_ = false; }

  // Drain empties the queue and tells the handler, as a socket would once writable.
  void Drain() {
    if (queued_ == 0) return;
    queued_ = 0;
    if (handler_ && !closed_) handler_->OnWriteDrained();
  }
  net::StreamHandler* handler() const { return closed_ ? nullptr : handler_; }
  bool paused() const { return paused_; }

 private:
  void Queue(size_t len, WriteCallback done) {
    if (slow_) queued_ += len;
    if (!done) return;
    absl::Status st = closed_ || shutdown_ ? absl::FailedPreconditionError("fake: closed")
                                           : absl::OkStatus();
    loop_.Post([done = std::move(done), st]() mutable { done(st); });
  }
  net::Loop& loop_;
  bool slow_;
  net::StreamHandler* handler_ = nullptr;
  size_t queued_ = 0;
  bool shutdown_ = false;
  bool closed_ = false;
  bool paused_ = false;
};

// FuzzHandler answers by path: /p pauses the body, /a aborts, /e fails, /big streams 256 KiB
// while the queue allows, anything else gets a short 200.
class FuzzHandler : public ExchangeHandler {
 public:
  explicit FuzzHandler(Exchange& ex) : ex_(ex), path_(ex.request().path) {}
  void OnRequestBody(base::ByteSpan data) override {
    received_ += data.size();
    if (path_ == "/p") ex_.PauseRequestBody();
    if (path_ == "/a" && received_ > 100) ex_.Abort();
  }
  void OnRequestEnd() override {
    if (path_ == "/e") {
      ex_.SendError(502, "bad gateway");
      return;
    }
    if (path_ == "/a") {
      ex_.Abort();
      return;
    }
    ResponseHead head;
    head.headers.push_back({"content-type", "text/plain"});
    if (path_ == "/big") {
      head.content_length = kBig;
      ex_.SendResponseHead(head, false);
      Pump();
      return;
    }
    head.content_length = 2;
    ex_.SendResponseHead(head, false);
    ex_.SendResponseBody(base::ByteSpan(reinterpret_cast<const uint8_t*>("ok"), 2), true);
  }
  void OnReset(const absl::Status&) override {}
  void OnResponseDrained() override { Pump(); }

 private:
  static constexpr int64_t kBig = 256 * 1024;
  void Pump() {
    static const std::vector<uint8_t> chunk(16 * 1024, 'x');
    while (sent_ < kBig && ex_.ResponseQueueSize() < 32 * 1024) {
      sent_ += static_cast<int64_t>(chunk.size());
      ex_.SendResponseBody(chunk, sent_ >= kBig);
    }
  }
  Exchange& ex_;
  std::string path_;
  size_t received_ = 0;
  int64_t sent_ = 0;
};

// RefuseHandler answers what the site's policy refused, once the request has ended.
class RefuseHandler : public ExchangeHandler {
 public:
  RefuseHandler(Exchange& ex, int status) : ex_(ex), status_(status) {}
  void OnRequestBody(base::ByteSpan) override {}
  void OnRequestEnd() override { ex_.SendError(status_, "refused"); }
  void OnReset(const absl::Status&) override {}

 private:
  Exchange& ex_;
  int status_;
};

// FuzzRouter decides every request as the site would (path_policy_check.h asserts that none it
// forwards reaches "/admin"), then hands the allowed ones to a FuzzHandler.
class FuzzRouter : public Router {
 public:
  std::unique_ptr<ExchangeHandler> OnRequest(Exchange& exchange) override {
    const int refused = fuzz::CheckRequestHead(exchange.request(), exchange.connection());
    if (refused != 0) return std::make_unique<RefuseHandler>(exchange, refused);
    if (exchange.request().path == "/404") return nullptr;
    return std::make_unique<FuzzHandler>(exchange);
  }
};

void Turn(net::Loop& loop) {
  for (int i = 0; i < 4; ++i) loop.RunOnce(false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static net::Loop* loop = new net::Loop();  // one loop for the whole run; nothing outlives an input
  const size_t chunk = static_cast<size_t>(data[0]) + 1;
  const uint8_t flags = data[1];
  std::vector<uint8_t> input;
  if (flags & kPrependPreface) input.assign(kClientMagic.begin(), kClientMagic.end());
  input.insert(input.end(), data + 2, data + size);

  FuzzRouter router;
  ServerLimits limits;
  limits.max_header_bytes = 4096;
  limits.max_concurrent_streams = 16;
  auto owned = std::make_unique<FakeStream>(*loop, (flags & kSlowSocket) != 0);
  FakeStream* stream = owned.get();
  bool closed = false;
  ConnectionInfo info;
  info.peer_address = "192.0.2.1";
  auto conn = std::make_unique<H2ServerConnection>(*loop, std::move(owned), info, router, limits,
                                                   [&closed] { closed = true; });
  conn->Start();
  for (size_t off = 0; off < input.size() && !closed; off += chunk) {
    const size_t n = std::min(chunk, input.size() - off);
    if (net::StreamHandler* h = stream->handler(); h && !stream->paused()) {
      h->OnData(base::ByteSpan(input.data() + off, n));
    }
    Turn(*loop);
    stream->Drain();
    Turn(*loop);
    if ((flags & kShutdown) && off == 0 && !closed) conn->Shutdown();  // GOAWAY notice, PING, final GOAWAY
  }
  if (!closed) {
    if (net::StreamHandler* h = stream->handler()) {
      if (flags & kErrorAtEnd) {
        h->OnError(absl::UnavailableError("fuzz: reset"));
      } else if (flags & kEndAtEnd) {
        h->OnEnd();
      }
    }
    for (int i = 0; i < 8 && !closed; ++i) {
      Turn(*loop);
      stream->Drain();
    }
  }
  conn.reset();
  Turn(*loop);
  return 0;
}
