// H1ServerConnection over loopback TCP: keep-alive, pipelining, limits and their statuses,
// HTTP/1.0, Expect: 100-continue, HEAD, chunked both ways, upgrades, backpressure, redirect.
#include "http/h1_server.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "h1_test_util.h"
#include "http/redirect.h"
#include "net/timer.h"

using namespace p2proxy;
using namespace p2proxy::http;
using namespace p2proxy::http::testing;

namespace {

// Reply answers each request with "<method> <path> <body>" once the body has ended, after
// |delay_ms| if set. It records the request and what it saw.
struct ReplyLog {
  std::vector<RequestHead> heads;
  std::vector<std::string> bodies;
  int resets = 0;
  int destroyed = 0;
};

class Reply : public ExchangeHandler {
 public:
  Reply(net::Loop& loop, Exchange& ex, ReplyLog* log, uint32_t delay_ms = 0, bool chunked = false)
      : ex_(ex), log_(log), timer_(loop), delay_ms_(delay_ms), chunked_(chunked) {
    log_->heads.push_back(ex.request());
  }
  ~Reply() override { ++log_->destroyed; }
  void OnRequestBody(base::ByteSpan d) override { body_.append(reinterpret_cast<const char*>(d.data()), d.size()); }
  void OnRequestEnd() override {
    log_->bodies.push_back(body_);
    if (delay_ms_ == 0) {
      Answer();
    } else {
      timer_.Start(absl::Milliseconds(delay_ms_), [this] { Answer(); });
    }
  }
  void OnReset(const absl::Status&) override { ++log_->resets; }

 private:
  void Answer() {
    const std::string text = ex_.request().method + " " + ex_.request().path + " " + body_;
    ResponseHead h;
    h.status = 200;
    h.headers.push_back({"x-app", "reply"});
    h.content_length = chunked_ ? -1 : static_cast<int64_t>(text.size());
    ex_.SendResponseHead(h, false);
    if (chunked_) {
      // Two pieces, so the chunked framing carries more than one chunk.
      const size_t half = text.size() / 2;
      ex_.SendResponseBody(Bytes(std::string_view(text).substr(0, half)), false);
      ex_.SendResponseBody(Bytes(std::string_view(text).substr(half)), true);
    } else {
      ex_.SendResponseBody(Bytes(text), true);
    }
  }
  Exchange& ex_;
  ReplyLog* log_;
  net::Timer timer_;
  uint32_t delay_ms_;
  bool chunked_;
  std::string body_;
};

struct Fixture {
  explicit Fixture(ServerLimits limits = {}, uint32_t slow_delay_ms = 0, bool chunked = false,
                   bool manual_time = false)
      : manual(manual_time ? (loop.UseManualTime(), true) : false),
        router([this, slow_delay_ms, chunked](Exchange& ex) -> std::unique_ptr<ExchangeHandler> {
          if (ex.request().path == "/missing") return nullptr;
          const uint32_t delay = ex.request().path == "/slow" ? slow_delay_ms : 0;
          return std::make_unique<Reply>(loop, ex, &log, delay, chunked);
        }),
        server(loop, router, limits) {}
  net::Loop loop;
  bool manual;  // the loop runs on manual time (set before any timer starts)
  ReplyLog log;
  FnRouter router;
  TestServer server;
};

}  // namespace

TEST_CASE("H1 server: keep-alive serves several requests on one connection, 404 included") {
  Fixture f;
  RawClient c(f.loop, f.server.address());
  c.Send(Request("GET", "/one", "example.test"));
  REQUIRE(c.WaitResponses(1));
  c.Send(Request("GET", "/missing", "example.test"));
  REQUIRE(c.WaitResponses(2));
  c.Send(Request("POST", "/three", "example.test", {"X-Custom: Value"}, "payload"));
  REQUIRE(c.WaitResponses(3));
  auto& r = c.reader.responses;
  CHECK(r[0].status == 200);
  CHECK(r[0].body == "GET /one ");
  CHECK(r[0].Get("x-app") == "reply");
  CHECK(r[0].keep_alive);
  CHECK(r[1].status == 404);
  CHECK(r[2].body == "POST /three payload");
  CHECK(f.server.accepted == 1);
  CHECK(f.server.counters.requests == 3);
  CHECK(f.server.counters.not_found == 1);
  REQUIRE(f.log.heads.size() == 2);
  const RequestHead& h = f.log.heads[1];
  CHECK(h.authority == "example.test");
  CHECK(h.scheme == "http");
  CHECK(h.version == 11);
  CHECK(h.content_length == 7);
  CHECK_FALSE(h.end_stream);
  CHECK(FindHeader(h.headers, "x-custom") == "Value");
  CHECK(CountHeader(h.headers, "host") == 0);
  CHECK(f.log.heads[0].end_stream);
  // Handlers are destroyed once their exchange is over.
  REQUIRE(c.Wait([&] { return f.log.destroyed == 2; }));
}

TEST_CASE("H1 server: pipelined requests are answered in order even when the first is slow") {
  Fixture f({}, /*slow_delay_ms=*/100);
  RawClient c(f.loop, f.server.address());
  c.Send(Request("GET", "/slow", "h") + Request("POST", "/b", "h", {}, "bb") + Request("GET", "/c", "h"));
  REQUIRE(c.WaitResponses(3));
  auto& r = c.reader.responses;
  CHECK(r[0].body == "GET /slow ");
  CHECK(r[1].body == "POST /b bb");
  CHECK(r[2].body == "GET /c ");
  CHECK(f.server.accepted == 1);
}

TEST_CASE("H1 server: oversized request head gets 431 and a close") {
  ServerLimits limits;
  limits.max_header_bytes = 1024;
  Fixture f(limits);
  RawClient c(f.loop, f.server.address());
  c.Send(Request("GET", "/", "h", {"X-Big: " + std::string(4000, 'x')}));
  REQUIRE(c.WaitResponses(1));
  CHECK(c.reader.responses[0].status == 431);
  CHECK(c.reader.responses[0].Get("connection") == "close");
  REQUIRE(c.WaitClosed());
  CHECK(f.server.counters.bad_requests == 1);
  CHECK(f.log.heads.empty());
}

TEST_CASE("H1 server: a later head not complete in header_timeout_ms gets 408 and a close") {
  ServerLimits limits;
  limits.header_timeout_ms = 5000;
  Fixture f(limits, 0, false, /*manual_time=*/true);
  RawClient c(f.loop, f.server.address());
  c.Send(Request("GET", "/", "h"));
  REQUIRE(c.WaitResponses(1));
  const std::string first = Request("GET", "/", "h");
  const std::string partial = "GET / HTTP/1.1\r\nHost: slow";
  c.Send(partial);  // and nothing more
  REQUIRE(c.Wait([&] { return f.server.counters.bytes_in == first.size() + partial.size(); }));
  f.loop.AdvanceTime(absl::Milliseconds(4999));
  REQUIRE_FALSE(c.Wait([&] { return c.reader.responses.size() == 2; }, absl::Milliseconds(50)));
  f.loop.AdvanceTime(absl::Milliseconds(1));
  REQUIRE(c.WaitResponses(2, absl::Seconds(10)));
  CHECK(c.reader.responses[1].status == 408);
  REQUIRE(c.WaitClosed());
  CHECK(f.server.counters.timeouts == 1);
}

TEST_CASE("H1 server: no complete first request within first_request_timeout_ms gets 408, even trickled") {
  ServerLimits limits;
  limits.first_request_timeout_ms = 10000;
  limits.header_timeout_ms = 60000;  // not the one that fires
  Fixture f(limits, 0, false, /*manual_time=*/true);
  RawClient c(f.loop, f.server.address());
  REQUIRE(c.Wait([&] { return f.server.counters.connections == 1; }));  // its deadline runs
  // A byte every 2 s keeps the connection busy but never finishes the head.
  const std::string head = "GET / HTTP/1.1\r\nHost: slow";
  for (size_t i = 0; i < 4; ++i) {
    c.Send(head.substr(i, 1));
    f.loop.AdvanceTime(absl::Seconds(2));
    REQUIRE_FALSE(c.Wait([&] { return !c.reader.responses.empty(); }, absl::Milliseconds(20)));
  }
  f.loop.AdvanceTime(absl::Seconds(2));  // 10 s since the connection started
  REQUIRE(c.WaitResponses(1, absl::Seconds(10)));
  CHECK(c.reader.responses[0].status == 408);
  REQUIRE(c.WaitClosed());
  CHECK(f.server.counters.timeouts == 1);
  CHECK(f.log.heads.empty());
}

TEST_CASE("H1 server: an idle keep-alive connection is closed quietly after idle_timeout_ms") {
  ServerLimits limits;
  limits.idle_timeout_ms = 60000;
  Fixture f(limits, 0, false, /*manual_time=*/true);
  RawClient c(f.loop, f.server.address());
  c.Send(Request("GET", "/", "h"));
  REQUIRE(c.WaitResponses(1));
  const size_t before = c.received_bytes;
  f.loop.AdvanceTime(absl::Milliseconds(59999));
  REQUIRE_FALSE(c.WaitClosed(absl::Milliseconds(50)));
  f.loop.AdvanceTime(absl::Milliseconds(1));
  REQUIRE(c.WaitClosed(absl::Seconds(10)));
  CHECK(c.received_bytes == before);
  CHECK(f.server.counters.idle_closes == 1);
  REQUIRE(c.Wait([&] { return f.server.closed == 1; }));
}

TEST_CASE("H1 server: malformed requests get 400 and a close") {
  const std::vector<std::string> bad = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",  // no Host
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
      "GET nothttp HTTP/1.1\r\nHost: h\r\n\r\n",
  };
  for (const auto& req : bad) {
    Fixture f;
    RawClient c(f.loop, f.server.address());
    c.Send(req);
    INFO(req);
    REQUIRE(c.WaitResponses(1));
    CHECK(c.reader.responses[0].status == 400);
    REQUIRE(c.WaitClosed());
    CHECK(f.log.heads.empty());
  }
}

TEST_CASE("H1 server: a broken chunked body resets the exchange and answers 400") {
  Fixture f;
  RawClient c(f.loop, f.server.address());
  c.Send("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n");
  REQUIRE(c.WaitResponses(1));
  CHECK(c.reader.responses[0].status == 400);
  REQUIRE(c.WaitClosed());
  CHECK(f.log.resets == 1);
}

TEST_CASE("H1 server: HTTP/1.0 gets close-delimited or keep-alive responses as it asked") {
  {
    Fixture f({}, 0, /*chunked=*/true);  // the handler gives no length
    RawClient c(f.loop, f.server.address());
    c.Send("GET /old HTTP/1.0\r\n\r\n");
    REQUIRE(c.WaitClosed());
    REQUIRE(c.reader.responses.size() == 1);
    CHECK(c.reader.responses[0].body == "GET /old ");
    CHECK(c.reader.responses[0].Get("connection") == "close");
    CHECK_FALSE(c.reader.responses[0].Has("transfer-encoding"));
    CHECK(f.log.heads.at(0).version == 10);
  }
  {
    Fixture f;
    RawClient c(f.loop, f.server.address());
    c.Send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    REQUIRE(c.WaitResponses(1));
    CHECK(c.reader.responses[0].Get("connection") == "keep-alive");
    c.Send("GET /b HTTP/1.0\r\n\r\n");
    REQUIRE(c.WaitResponses(2));
    CHECK(c.reader.responses[1].body == "GET /b ");
    REQUIRE(c.WaitClosed());
    CHECK(f.server.accepted == 1);
  }
}

TEST_CASE("H1 server: Connection: close is honoured after the response") {
  Fixture f;
  RawClient c(f.loop, f.server.address());
  c.Send(Request("GET", "/", "h", {"Connection: close"}));
  REQUIRE(c.WaitClosed());
  REQUIRE(c.reader.responses.size() == 1);
  CHECK(c.reader.responses[0].Get("connection") == "close");
}

TEST_CASE("H1 server: Expect: 100-continue gets 100 Continue before the final response") {
  Fixture f;
  RawClient c(f.loop, f.server.address());
  c.Send("PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  REQUIRE(c.Wait([&] { return c.reader.saw_continue; }));
  c.Send("data");
  REQUIRE(c.WaitResponses(1));
  CHECK(c.reader.responses[0].body == "PUT /up data");
  CHECK(c.text.rfind("HTTP/1.1 100 Continue\r\n\r\n", 0) == 0);
}

TEST_CASE("H1 server: HEAD responses carry the length but no body, chunked both ways") {
  Fixture f({}, 0, /*chunked=*/false);
  RawClient c(f.loop, f.server.address());
  c.reader.SetSkipBody(true);
  c.Send(Request("HEAD", "/h", "h"));
  REQUIRE(c.WaitResponses(1));
  CHECK(c.reader.responses[0].Get("content-length") == "8");  // "HEAD /h "
  CHECK(c.reader.responses[0].body.empty());
  c.reader.SetSkipBody(false);
  c.Send("POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
  REQUIRE(c.WaitResponses(2));
  CHECK(c.reader.responses[1].body == "POST /c abcdefg");
  REQUIRE(f.log.heads.size() == 2);
  CHECK(f.log.heads[1].content_length == -1);
  CHECK_FALSE(f.log.heads[1].end_stream);
  // The handler saw the body de-chunked.
  CHECK(f.log.bodies[1] == "abcdefg");

  Fixture g({}, 0, /*chunked=*/true);
  RawClient d(g.loop, g.server.address());
  d.Send(Request("GET", "/chunky", "h"));
  REQUIRE(d.WaitResponses(1));
  CHECK(d.reader.responses[0].Get("transfer-encoding") == "chunked");
  CHECK(d.reader.responses[0].body == "GET /chunky ");
}

TEST_CASE("H1 server: an upgrade the handler declines leaves the connection speaking HTTP") {
  Fixture f;
  RawClient c(f.loop, f.server.address());
  c.Send(Request("GET", "/u", "h", {"Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings", "HTTP2-Settings: AAMAAABkAAQAAP__"}) +
         Request("GET", "/after", "h"));
  REQUIRE(c.WaitResponses(2));
  CHECK(c.reader.responses[0].body == "GET /u ");
  CHECK(c.reader.responses[1].body == "GET /after ");
  CHECK_FALSE(f.log.heads[0].upgrade_websocket);
}

TEST_CASE("H1 server: a 101 hands the stream and the bytes after the head to the handler") {
  net::Loop loop;
  std::unique_ptr<net::Stream> taken;
  std::vector<uint8_t> early;
  bool websocket = false;
  class Upgrader : public ExchangeHandler {
   public:
    Upgrader(Exchange& ex, std::unique_ptr<net::Stream>* out, std::vector<uint8_t>* early)
        : ex_(ex), out_(out), early_(early) {}
    void OnRequestBody(base::ByteSpan) override {}
    void OnRequestEnd() override {
      ResponseHead h;
      h.status = 101;
      h.headers.push_back({"upgrade", "websocket"});
      ex_.SendResponseHead(h, false);
      *out_ = ex_.TakeUpgradedStream(early_);
    }
    void OnReset(const absl::Status&) override {}
    Exchange& ex_;
    std::unique_ptr<net::Stream>* out_;
    std::vector<uint8_t>* early_;
  };
  FnRouter router([&](Exchange& ex) {
    websocket = ex.request().upgrade_websocket;
    return std::make_unique<Upgrader>(ex, &taken, &early);
  });
  TestServer server(loop, router);
  RawClient c(loop, server.address());
  c.Send(Request("GET", "/ws", "h", {"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}) +
         "early-bytes");
  REQUIRE(c.Wait([&] { return taken != nullptr; }));
  CHECK(websocket);
  REQUIRE(c.WaitResponses(1));
  CHECK(c.reader.responses[0].status == 101);
  CHECK(c.reader.responses[0].Get("connection") == "upgrade");
  CHECK(c.reader.responses[0].Get("upgrade") == "websocket");
  // The early bytes either came with the head or are still in the socket.
  struct Sink : net::StreamHandler {
    std::string got;
    void OnData(base::ByteSpan d) override { got.append(reinterpret_cast<const char*>(d.data()), d.size()); }
    void OnEnd() override {}
    void OnError(const absl::Status&) override {}
  } sink;
  sink.got.assign(early.begin(), early.end());
  taken->SetHandler(&sink);
  REQUIRE(c.Wait([&] { return sink.got.size() >= 11; }));
  CHECK(sink.got == "early-bytes");
  taken->Write(Bytes("from-server"));
  REQUIRE(c.Wait([&] { return c.reader.rest.find("from-server") != std::string::npos; }));
  CHECK(server.counters.upgrades == 1);
  REQUIRE(c.Wait([&] { return server.closed == 1; }));
  taken->SetHandler(nullptr);
}

TEST_CASE("H1 server: a paused request body stops reading the socket until resumed") {
  net::Loop loop;
  constexpr size_t kTotal = 24 << 20;
  Exchange* exchange = nullptr;
  Digest got;
  bool ended = false;
  class Slow : public ExchangeHandler {
   public:
    Slow(Exchange& ex, Digest* d, bool* ended) : ex_(ex), d_(d), ended_(ended) {}
    void OnRequestBody(base::ByteSpan data) override {
      d_->Update(data);
      if (d_->size >= (1 << 20)) ex_.PauseRequestBody();
    }
    void OnRequestEnd() override {
      *ended_ = true;
      ResponseHead h;
      ex_.SendResponseHead(h, true);
    }
    void OnReset(const absl::Status&) override {}
    Exchange& ex_;
    Digest* d_;
    bool* ended_;
  };
  FnRouter router([&](Exchange& ex) {
    exchange = &ex;
    return std::make_unique<Slow>(ex, &got, &ended);
  });
  TestServer server(loop, router);
  RawClient c(loop, server.address());
  REQUIRE(c.WaitConnected());
  const auto body = Pattern(kTotal, 3);
  c.Send("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(kTotal) + "\r\n\r\n");
  c.stream->Write(base::ByteSpan(body));
  REQUIRE(c.Wait([&] { return got.size >= (1 << 20); }));
  // Paused: what the handler gets stays near where it stopped (one socket read past it at most,
  // plus what the server had buffered), while the rest waits in the sockets and the client.
  CHECK_FALSE(c.Wait([&] { return got.size >= kTotal / 2; }, absl::Milliseconds(400)));
  CHECK(got.size < (1 << 20) + 2 * H1ServerConnection::kMaxBuffered);
  CHECK(c.stream->WriteQueueSize() > 0);
  // Resumed, everything arrives intact.
  exchange->ResumeRequestBody();
  // The handler pauses again on every call once past 1 MiB; keep resuming until the end.
  REQUIRE(c.Wait([&] {
    if (!ended && exchange) exchange->ResumeRequestBody();
    return ended;
  }, absl::Seconds(60)));
  CHECK(got.size == kTotal);
  CHECK(got.Hex() == Digest::Of(base::ByteSpan(body)));
  REQUIRE(c.WaitResponses(1));
}

// Streamer answers with |total| bytes, 64 KiB at a time while the response queue is below
// 256 KiB, going on at OnResponseDrained; it records a reset.
class Streamer : public ExchangeHandler {
 public:
  Streamer(Exchange& ex, size_t total, absl::Status* reset) : ex_(ex), total_(total), reset_(reset) {}
  void OnRequestBody(base::ByteSpan) override {}
  void OnRequestEnd() override {
    ResponseHead h;
    h.status = 200;
    h.content_length = static_cast<int64_t>(total_);
    ex_.SendResponseHead(h, false);
    Pump();
  }
  void OnResponseDrained() override { Pump(); }
  void OnReset(const absl::Status& why) override { *reset_ = why; }

 private:
  void Pump() {
    static const std::string piece(64 << 10, 'z');
    while (sent_ < total_ && ex_.ResponseQueueSize() < (256u << 10)) {
      const size_t n = std::min(piece.size(), total_ - sent_);
      sent_ += n;
      ex_.SendResponseBody(Bytes(std::string_view(piece).substr(0, n)), sent_ == total_);
    }
  }
  Exchange& ex_;
  size_t total_;
  size_t sent_ = 0;
  absl::Status* reset_;
};

TEST_CASE("H1 server: a client that stops reading a response is cut off after send_timeout_ms") {
  net::Loop loop;
  loop.UseManualTime();
  absl::Status reset = absl::OkStatus();
  FnRouter router([&](Exchange& ex) { return std::make_unique<Streamer>(ex, size_t{64} << 20, &reset); });
  ServerLimits limits;
  limits.send_timeout_ms = 30000;
  TestServer server(loop, router, limits);
  net::Stream* server_stream = nullptr;
  server.wrap = [&](std::unique_ptr<net::Stream> s) {
    server_stream = s.get();
    return s;
  };
  RawClient c(loop, server.address());
  c.parse = false;
  c.keep_text = false;
  REQUIRE(c.WaitConnected());
  // Not reading at first: the watch starts once the sockets are full, its baseline what they
  // took (a few MiB at most).
  c.stream->PauseReading();
  c.Send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
  REQUIRE(c.Wait([&] { return server_stream && server_stream->WriteQueueSize() > 0; }));
  // Reading well past that baseline, so bytes left since; then not reading again, until the
  // sockets are full once more.
  c.stream->ResumeReading();
  REQUIRE(c.Wait([&] { return c.received_bytes >= (size_t{16} << 20); }, absl::Seconds(60)));
  c.stream->PauseReading();
  REQUIRE(c.Wait([&] { return server_stream->WriteQueueSize() > 0; }));
  // The looks run inside AdvanceTime, back to back: no byte can leave between them.
  loop.AdvanceTime(absl::Milliseconds(30000));  // first look: bytes left since the baseline
  CHECK(server.counters.send_timeouts == 0);
  loop.AdvanceTime(absl::Milliseconds(29999));
  CHECK(server.counters.send_timeouts == 0);
  loop.AdvanceTime(absl::Milliseconds(1));  // a whole period with nothing leaving
  CHECK(server.counters.send_timeouts == 1);
  REQUIRE(c.Wait([&] { return server.closed == 1; }));
  CHECK(absl::IsDeadlineExceeded(reset));
  CHECK(c.received_bytes < (size_t{64} << 20));
}

TEST_CASE("H1 server: a slow path that keeps taking bytes is not cut off") {
  net::Loop loop;
  loop.UseManualTime();
  absl::Status reset = absl::OkStatus();
  constexpr size_t kTotal = 1 << 20;
  FnRouter router([&](Exchange& ex) { return std::make_unique<Streamer>(ex, kTotal, &reset); });
  ServerLimits limits;
  limits.send_timeout_ms = 10000;
  TestServer server(loop, router, limits);
  // 8 KiB a second: the handler's 256 KiB queue takes 32 s to drain, longer than the timeout,
  // and the whole response about 128 s; the queue shrinks in every period, though.
  TrickleStream* trickle = nullptr;
  server.wrap = [&](std::unique_ptr<net::Stream> s) -> std::unique_ptr<net::Stream> {
    auto t = std::make_unique<TrickleStream>(loop, std::move(s), 8 << 10, absl::Seconds(1));
    trickle = t.get();  // lives as long as its connection, which |server| keeps
    return t;
  };
  RawClient c(loop, server.address());
  c.parse = false;
  REQUIRE(c.WaitConnected());
  c.Send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n");
  // The head is "HTTP/1.1 200 OK", content-length: 1048576 and the blank line: 44 bytes.
  const size_t whole = kTotal + 44;
  REQUIRE(c.Wait([&] { return trickle && trickle->WriteQueueSize() > 0; }));  // the response began
  // A second at a time: the trickle hands on one slice, the client gets it, and the server has
  // queued the next (or sent all).
  int seconds = 0;
  while (c.received_bytes < whole && server.counters.send_timeouts == 0 && server.closed == 0 && seconds < 1000) {
    loop.AdvanceTime(absl::Seconds(1));
    ++seconds;
    REQUIRE(c.Wait([&] {
      return server.closed > 0 ||
             (c.received_bytes == trickle->forwarded() && (trickle->WriteQueueSize() > 0 || c.received_bytes == whole));
    }));
  }
  CHECK(c.received_bytes == whole);
  CHECK(seconds >= 128);  // a dozen send_timeout periods went by
  CHECK(server.counters.send_timeouts == 0);
  CHECK(reset.ok());
}

TEST_CASE("Redirect router: 308 to https with host and path, a missing Host gets 400") {
  net::Loop loop;
  RedirectRouter router;
  TestServer server(loop, router);
  RawClient c(loop, server.address());
  c.Send(Request("GET", "/a/b?c=1", "app.example.test:80"));
  REQUIRE(c.WaitResponses(1));
  CHECK(c.reader.responses[0].status == 308);
  CHECK(c.reader.responses[0].Get("location") == "https://app.example.test/a/b?c=1");
  CHECK(c.reader.responses[0].body.find("https://app.example.test/a/b?c=1") != std::string::npos);
  c.Send("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  REQUIRE(c.WaitResponses(2));
  CHECK(c.reader.responses[1].status == 400);
  CHECK(router.redirects() == 1);
  CHECK(router.rejected() == 1);
  CHECK(RedirectLocation("[::1]:8080", "/p", 8443) == "https://[::1]:8443/p");
  CHECK(RedirectLocation("evil.test/x", "/p", 443).empty());
  CHECK(RedirectLocation("h", "*", 443).empty());
}
