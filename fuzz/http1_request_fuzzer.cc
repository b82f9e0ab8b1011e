// http1_request_fuzzer: H1Parser on arbitrary bytes, as requests (what clients send the site)
// and as responses (what upstream apps send back), fed in 1-3 pieces split where the input's
// first bytes say. Whatever the split, the events must be the same as for the whole
// input at once (heads, per-message body bytes, ends, the final error), and every head must keep
// the wrapper's promises: lower-case token names, values without CR/LF/NUL or edge whitespace,
// one Host for an HTTP/1.1 request, no Content-Length together with chunked.
//
// The same bytes, in the same pieces, then go to an H1ServerConnection whose router decides
// every request as the site would: no request the path policy forwards may reach a denied
// prefix (path_policy_check.h), whatever target form the server turned it into.
//
// Input: byte 0 picks the number of pieces, bytes 1-2 the split points; the rest is the stream.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "http/h1_parser.h"
#include "http/h1_server.h"
#include "net/loop.h"
#include "net/stream.h"
#include "path_policy_check.h"

namespace {

using namespace p2proxy;

using p2proxy::base::ByteSpan;
using p2proxy::http::H1Error;
using p2proxy::http::H1Head;
using p2proxy::http::H1Parser;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckHead(const H1Head& h, H1Parser::Kind kind) {
  int hosts = 0;
  for (const auto& f : h.headers) {
    Check(!f.name.empty());
    for (char c : f.name) Check(!(c >= 'A' && c <= 'Z') && c != ' ' && c != ':' && c != '\r' && c != '\n');
    for (char c : f.value) Check(c != '\r' && c != '\n' && c != '\0');
    if (!f.value.empty()) Check(f.value.front() != ' ' && f.value.back() != ' ');
    hosts += f.name == "host";
  }
  Check(h.version == 10 || h.version == 11);
  Check(!(h.chunked && h.content_length >= 0));
  if (kind == H1Parser::Kind::kResponse) {
    Check(h.status >= 100 && h.status <= 999);
    return;
  }
  Check(hosts <= 1);
  if (h.version == 11) Check(hosts == 1);
  Check(!h.method.empty() && !h.target.empty());
}

// Log records events in a form independent of how the bytes were split.
struct Log final : H1Parser::Visitor {
  explicit Log(H1Parser::Kind k) : kind(k), parser(k, this, 8192) {}
  void OnHead(H1Head& h) override {
    CheckHead(h, kind);
    text += "H:" + h.method + " " + h.target + " " + std::to_string(h.status) + " " + std::to_string(h.headers.size()) + " " +
            std::to_string(h.content_length) + (h.chunked ? "c" : "") + (h.upgrade ? "u" : "") + "|";
    body = 0;
    // 1xx, 204 and 304 responses have no body whatever their Content-Length says (RFC 9112 §6.3).
    const bool bodiless = kind == H1Parser::Kind::kResponse && (h.status < 200 || h.status == 204 || h.status == 304);
    expected = bodiless ? 0 : h.content_length;
  }
  void OnBody(ByteSpan d) override {
    Check(!d.empty());
    body += d.size();
  }
  void OnMessageEnd() override {
    if (expected >= 0) Check(body == static_cast<uint64_t>(expected));
    text += "B:" + std::to_string(body) + "|E|";
    // As the server does: stop between requests, then go on.
    parser.Pause();
  }
  // Feed parses |piece| completely (resuming after each pause and resetting after an upgrade),
  // keeping unconsumed bytes for the next piece as a caller must.
  void Feed(ByteSpan piece) {
    carry.insert(carry.end(), piece.begin(), piece.end());
    size_t off = 0;
    int rounds = 0;
    while (off < carry.size() && parser.error() == H1Error::kNone) {
      Check(++rounds < 100000);
      parser.Resume();
      const size_t n = parser.Parse(ByteSpan(carry.data() + off, carry.size() - off));
      Check(n <= carry.size() - off);
      off += n;
      if (parser.upgraded()) {
        text += "U|";
        parser.Reset();
        continue;
      }
      if (n == 0 && !parser.paused()) break;
    }
    carry.erase(carry.begin(), carry.begin() + static_cast<ptrdiff_t>(off));
  }
  void End() {
    if (parser.error() == H1Error::kNone) parser.Finish();
    text += "X:" + std::to_string(static_cast<int>(parser.error()));
  }
  H1Parser::Kind kind;
  H1Parser parser;
  std::string text;
  std::vector<uint8_t> carry;
  uint64_t body = 0;
  int64_t expected = -1;
};

// FakeStream takes the server's writes and completes them on the next loop turn.
class FakeStream : public net::Stream {
 public:
  explicit FakeStream(net::Loop& loop) : loop_(loop) {}
  void SetHandler(net::StreamHandler* handler) override { handler_ = handler; }
  void Write(base::ByteSpan, WriteCallback done) override { Done(std::move(done)); }
  void WriteOwned(std::vector<uint8_t>, WriteCallback done) override { Done(std::move(done)); }
  size_t WriteQueueSize() const override { return 0; }
  void Shutdown() override { shutdown_ = true; }
  void Close() override { closed_ = true; }
  void PauseReading() override { paused_ = true; }
  void ResumeReading() override { paused_ = false; }
  net::StreamHandler* reader() const { return closed_ || paused_ ? nullptr : handler_; }

 private:
  void Done(WriteCallback done) {
    if (!done) return;
    absl::Status st = closed_ || shutdown_ ? absl::FailedPreconditionError("fake: closed") : absl::OkStatus();
    loop_.Post([done = std::move(done), st]() mutable { done(st); });
  }
  net::Loop& loop_;
  net::StreamHandler* handler_ = nullptr;
  bool shutdown_ = false;
  bool closed_ = false;
  bool paused_ = false;
};

// Answer responds to a request once its body has ended: 200, or the policy's refusal.
class Answer : public http::ExchangeHandler {
 public:
  Answer(http::Exchange& ex, int status) : ex_(ex), status_(status) {}
  void OnRequestBody(ByteSpan) override {}
  void OnRequestEnd() override {
    if (status_ != 0) {
      ex_.SendError(status_, "refused");
      return;
    }
    http::ResponseHead head;
    head.content_length = 2;
    ex_.SendResponseHead(head, false);
    ex_.SendResponseBody(ByteSpan(reinterpret_cast<const uint8_t*>("ok"), 2), true);
  }
  void OnReset(const absl::Status&) override {}

 private:
  http::Exchange& ex_;
  int status_;
};

class PolicyRouter : public http::Router {
 public:
  std::unique_ptr<http::ExchangeHandler> OnRequest(http::Exchange& exchange) override {
    return std::make_unique<Answer>(exchange, fuzz::CheckRequestHead(exchange.request(), exchange.connection()));
  }
};

void Turn(net::Loop& loop) {
  for (int i = 0; i < 4; ++i) loop.RunOnce(false);
}

// Serve feeds |pieces| to an H1ServerConnection as a client would.
void Serve(const std::vector<ByteSpan>& pieces) {
  static net::Loop* loop = new net::Loop();  // one loop for the whole run; nothing outlives an input
  PolicyRouter router;
  http::ServerLimits limits;
  limits.max_header_bytes = 8192;
  auto owned = std::make_unique<FakeStream>(*loop);
  FakeStream* stream = owned.get();
  bool closed = false;
  http::ConnectionInfo info;
  info.peer_address = "192.0.2.1";
  info.tls = true;
  auto conn = std::make_unique<http::H1ServerConnection>(*loop, std::move(owned), info, router, limits,
                                                         [&closed] { closed = true; });
  conn->Start();
  // Bytes wait while the server has paused reading, as they would in a socket.
  std::vector<uint8_t> pending;
  const auto deliver = [&] {
    if (net::StreamHandler* h = stream->reader(); h && !pending.empty() && !closed) {
      std::vector<uint8_t> now;
      now.swap(pending);
      h->OnData(ByteSpan(now));
    }
    Turn(*loop);
  };
  for (ByteSpan piece : pieces) {
    pending.insert(pending.end(), piece.begin(), piece.end());
    deliver();
  }
  for (int i = 0; i < 8 && !pending.empty() && !closed; ++i) deliver();
  if (!closed) {
    if (net::StreamHandler* h = stream->reader()) h->OnEnd();
    Turn(*loop);
  }
  conn.reset();
  Turn(*loop);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int pieces = 1 + data[0] % 3;
  ByteSpan stream(data + 3, size - 3);
  size_t a = stream.empty() ? 0 : data[1] % (stream.size() + 1);
  size_t b = stream.empty() ? 0 : data[2] % (stream.size() + 1);
  if (a > b) std::swap(a, b);
  if (pieces == 1) a = b = stream.size();
  if (pieces == 2) b = stream.size();

  for (H1Parser::Kind kind : {H1Parser::Kind::kRequest, H1Parser::Kind::kResponse}) {
    Log whole(kind);
    whole.Feed(stream);
    whole.End();

    Log split(kind);
    split.Feed(stream.subspan(0, a));
    split.Feed(stream.subspan(a, b - a));
    split.Feed(stream.subspan(b));
    split.End();
    Check(whole.text == split.text);
  }
  Serve({stream.subspan(0, a), stream.subspan(a, b - a), stream.subspan(b)});
  return 0;
}
