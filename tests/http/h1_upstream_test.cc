// UpstreamPool / UpstreamExchange against loopback upstreams: reuse, bodies both ways, HEAD,
// 1xx, close-delimited bodies, the retry on a stale pooled connection, timeouts, expiry.
#include "http/upstream.h"

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "h1_test_util.h"

using namespace p2proxy;
using namespace p2proxy::http;
using namespace p2proxy::http::testing;

namespace {

// Collector records what an exchange delivered.
struct Collector : UpstreamExchange::Delegate {
  void OnResponseHead(UpstreamResponse& h) override {
    head = h;
    got_head = true;
  }
  void OnResponseBody(base::ByteSpan d) override {
    digest.Update(d);
    if (keep) body.append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  void OnResponseEnd() override { ended = true; }
  void OnUpstreamError(UpstreamError k, const absl::Status& s) override {
    failed = true;
    kind = k;
    status = s;
  }
  bool done() const { return ended || failed; }
  UpstreamResponse head;
  bool got_head = false;
  std::string body;
  bool keep = true;
  Digest digest;
  bool ended = false;
  bool failed = false;
  UpstreamError kind = UpstreamError::kConnect;
  absl::Status status;
};

UpstreamRequest Get(std::string path, std::string method = "GET") {
  UpstreamRequest r;
  r.method = std::move(method);
  r.target = std::move(path);
  r.host = "upstream.test";
  r.no_body = true;
  return r;
}

// ScriptServer answers raw bytes: |respond(conn, n, conn_stream)| runs for the n-th request
// head (counted by its blank line) on connection |conn|.
class ScriptServer {
 public:
  using Respond = std::function<void(int conn, int n, net::TcpStream& s)>;
  ScriptServer(net::Loop& loop, Respond respond) : respond_(std::move(respond)) {
    auto l = net::TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                      [this](std::unique_ptr<net::TcpStream> s) {
                                        auto c = std::make_unique<Conn>();
                                        c->server = this;
                                        c->index = static_cast<int>(conns_.size());
                                        c->stream = std::move(s);
                                        c->stream->SetHandler(c.get());
                                        conns_.push_back(std::move(c));
                                      });
    listener_ = std::move(*l);
  }
  base::SocketAddress address() const { return listener_->local_address(); }
  int accepted() const { return static_cast<int>(conns_.size()); }
  std::string received(int conn) const { return conns_.at(static_cast<size_t>(conn))->text; }

 private:
  struct Conn : net::StreamHandler {
    void OnData(base::ByteSpan d) override {
      text.append(reinterpret_cast<const char*>(d.data()), d.size());
      size_t pos;
      while ((pos = text.find("\r\n\r\n", scanned)) != std::string::npos) {
        scanned = pos + 4;
        if (stream) server->respond_(index, requests++, *stream);
        if (!stream) return;
      }
    }
    void OnEnd() override {}
    void OnError(const absl::Status&) override {}
    ScriptServer* server = nullptr;
    int index = 0;
    int requests = 0;
    size_t scanned = 0;
    std::string text;
    std::unique_ptr<net::TcpStream> stream;
  };
  Respond respond_;
  std::unique_ptr<net::TcpListener> listener_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

void Reply(net::TcpStream& s, std::string_view text) { s.Write(Bytes(text)); }

}  // namespace

TEST_CASE("Upstream pool: a second request reuses the idle keep-alive connection") {
  net::Loop loop;
  AppConfig cfg;
  cfg.body_size = 1000;
  AppRouter app(cfg);
  TestServer upstream(loop, app);
  UpstreamPool pool(loop, upstream.address(), PoolOptions{});
  for (int i = 0; i < 3; ++i) {
    Collector c;
    auto ex = pool.Start(Get("/r" + std::to_string(i)), &c);
    REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
    REQUIRE(c.ended);
    CHECK(c.head.status == 200);
    CHECK(c.head.content_length == 1000);
    CHECK(c.digest.Hex() == Digest::Of(base::ByteSpan(Pattern(1000, cfg.seed))));
    CHECK(ex->reused() == (i > 0));
  }
  CHECK(upstream.accepted == 1);
  CHECK(pool.counters().reused == 2);
  CHECK(pool.counters().connects == 1);
  CHECK(pool.idle_count() == 1);
  REQUIRE(app.log.requests.size() == 3);
  CHECK(app.log.requests[2].authority == "upstream.test");
  CHECK(app.log.requests[2].path == "/r2");
}

TEST_CASE("Upstream exchange: request bodies with Content-Length and chunked arrive intact") {
  net::Loop loop;
  AppRouter app;  // an empty 200 for each
  TestServer upstream(loop, app);
  UpstreamPool pool(loop, upstream.address(), PoolOptions{});
  const auto body = Pattern(3 << 20, 11);
  for (bool chunked : {false, true}) {
    Collector c;
    UpstreamRequest r = Get("/upload", "POST");
    r.no_body = false;
    r.content_length = chunked ? -1 : static_cast<int64_t>(body.size());
    r.headers.push_back({"x-test", "1"});
    auto ex = pool.Start(std::move(r), &c);
    // Fed in uneven pieces, as a client would.
    size_t off = 0, step = 1;
    while (off < body.size()) {
      const size_t n = std::min(body.size() - off, step * 7919);
      ex->SendBody(base::ByteSpan(body.data() + off, n), false);
      off += n;
      ++step;
      if (ex->WriteQueueSize() > (1 << 20)) loop.RunUntil([&] { return ex->WriteQueueSize() < (256 << 10); }, absl::Seconds(10));
    }
    ex->SendBody(base::ByteSpan(), true);
    REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(20)));
    REQUIRE(c.ended);
    const RequestHead& seen = app.log.requests.back();
    CHECK(seen.content_length == (chunked ? -1 : static_cast<int64_t>(body.size())));
    CHECK(FindHeader(seen.headers, "x-test") == "1");
    CHECK(FindHeader(seen.headers, "transfer-encoding") == (chunked ? "chunked" : ""));
    CHECK(app.log.body_sizes.back() == body.size());
    CHECK(app.log.body_digests.back() == Digest::Of(base::ByteSpan(body)));
  }
  CHECK(upstream.accepted == 1);
}

TEST_CASE("Upstream exchange: HEAD has no body, then the connection carries a GET") {
  net::Loop loop;
  AppConfig cfg;
  cfg.body_size = 100;
  AppRouter app(cfg);
  TestServer upstream(loop, app);
  UpstreamPool pool(loop, upstream.address(), PoolOptions{});
  {
    Collector c;
    auto ex = pool.Start(Get("/h", "HEAD"), &c);
    REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
    REQUIRE(c.ended);
    CHECK(c.head.end_stream);
    CHECK(c.head.content_length == 100);
    CHECK(c.body.empty());
  }
  Collector c;
  auto ex = pool.Start(Get("/g"), &c);
  REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
  CHECK(c.body.size() == 100);
  CHECK(ex->reused());
  CHECK(upstream.accepted == 1);
}

TEST_CASE("Upstream exchange: interim 1xx responses are skipped, a close-delimited body ends at EOF") {
  net::Loop loop;
  ScriptServer upstream(loop, [](int, int, net::TcpStream& s) {
    Reply(s, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
             "HTTP/1.1 200 OK\r\nX-Y: z\r\n\r\nbody until the close");
    s.Shutdown();
  });
  UpstreamPool pool(loop, upstream.address(), PoolOptions{});
  Collector c;
  auto ex = pool.Start(Get("/"), &c);
  REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
  REQUIRE(c.ended);
  CHECK(c.head.status == 200);
  CHECK(FindHeader(c.head.headers, "x-y") == "z");
  CHECK(c.body == "body until the close");
  CHECK(pool.idle_count() == 0);
}

TEST_CASE("Upstream exchange: a truncated body is reported as a reset inside the body") {
  net::Loop loop;
  ScriptServer upstream(loop, [](int, int, net::TcpStream& s) {
    Reply(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part");
    s.Shutdown();
  });
  UpstreamPool pool(loop, upstream.address(), PoolOptions{});
  Collector c;
  auto ex = pool.Start(Get("/"), &c);
  REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
  REQUIRE(c.failed);
  CHECK(c.got_head);
  CHECK(c.kind == UpstreamError::kResetInBody);
}

TEST_CASE("Upstream pool: a pooled connection that dies before any response byte is retried once") {
  net::Loop loop;
  // Connection 0 answers once, then closes on the next request without a byte (the race of an
  // upstream's keep-alive timeout); later connections answer normally.
  ScriptServer upstream(loop, [](int conn, int n, net::TcpStream& s) {
    if (conn == 0 && n == 1) {
      s.Close();
      return;
    }
    Reply(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  UpstreamPool pool(loop, upstream.address(), PoolOptions{});
  {
    Collector c;
    auto ex = pool.Start(Get("/first"), &c);
    REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
    REQUIRE(c.ended);
  }
  Collector c;
  auto ex = pool.Start(Get("/second"), &c);
  REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
  REQUIRE(c.ended);
  CHECK(c.body == "ok");
  CHECK(pool.counters().retries == 1);
  CHECK(upstream.accepted() == 2);
  CHECK(upstream.received(1).find("GET /second HTTP/1.1") != std::string::npos);
}

TEST_CASE("Upstream pool: a non-idempotent request is not retried") {
  net::Loop loop;
  ScriptServer upstream(loop, [](int conn, int n, net::TcpStream& s) {
    if (conn == 0 && n == 1) {
      s.Close();
      return;
    }
    Reply(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  UpstreamPool pool(loop, upstream.address(), PoolOptions{});
  {
    Collector c;
    auto ex = pool.Start(Get("/first"), &c);
    REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
  }
  Collector c;
  UpstreamRequest r = Get("/post", "POST");
  r.no_body = false;
  r.content_length = 0;
  auto ex = pool.Start(std::move(r), &c);
  REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
  REQUIRE(c.failed);
  CHECK(c.kind == UpstreamError::kReset);
  CHECK(pool.counters().retries == 0);
}

TEST_CASE("Upstream pool: connect refused, connect timeout and response-header timeout") {
  net::Loop loop;
  loop.UseManualTime();
  base::SocketAddress closed;
  {
    auto l = net::TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"), [](auto) {});
    closed = (*l)->local_address();
  }
  {
    UpstreamPool pool(loop, closed, PoolOptions{});
    Collector c;
    auto ex = pool.Start(Get("/"), &c);
    REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
    REQUIRE(c.failed);
    CHECK(c.kind == UpstreamError::kConnect);
    CHECK(std::string(c.status.message()) == "upstream connect: connection refused");
    CHECK(pool.counters().connect_failures == 1);
  }
  {
    AppConfig cfg;
    cfg.mode = AppConfig::kSilent;
    AppRouter app(cfg);
    TestServer upstream(loop, app);
    PoolOptions opts;
    opts.response_header_timeout_ms = 60000;
    UpstreamPool pool(loop, upstream.address(), opts);
    Collector c;
    auto ex = pool.Start(Get("/"), &c);
    // The upstream has the request: the exchange is waiting for a head.
    REQUIRE(loop.RunUntil([&] { return app.log.requests.size() == 1; }, absl::Seconds(10)));
    loop.AdvanceTime(absl::Milliseconds(59999));
    REQUIRE_FALSE(loop.RunUntil([&] { return c.done(); }, absl::Milliseconds(50)));
    loop.AdvanceTime(absl::Milliseconds(1));
    REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
    REQUIRE(c.failed);
    CHECK(c.kind == UpstreamError::kHeaderTimeout);
    CHECK(pool.idle_count() == 0);
  }
}

TEST_CASE("Upstream pool: idle connections expire, and one the upstream closed is dropped") {
  net::Loop loop;
  loop.UseManualTime();
  {
    AppRouter app;
    TestServer upstream(loop, app);
    PoolOptions opts;
    opts.idle_timeout_ms = 30000;
    UpstreamPool pool(loop, upstream.address(), opts);
    Collector c;
    auto ex = pool.Start(Get("/"), &c);
    REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
    REQUIRE(pool.idle_count() == 1);
    loop.AdvanceTime(absl::Milliseconds(29999));
    REQUIRE_FALSE(loop.RunUntil([&] { return pool.idle_count() == 0; }, absl::Milliseconds(50)));
    CHECK(pool.counters().idle_expired == 0);
    loop.AdvanceTime(absl::Milliseconds(1));
    REQUIRE(loop.RunUntil([&] { return pool.idle_count() == 0; }, absl::Seconds(10)));
    CHECK(pool.counters().idle_expired == 1);
  }
  {
    // The upstream answers and closes at once (with keep-alive implied): the pool notices.
    ScriptServer upstream(loop, [](int, int, net::TcpStream& s) {
      Reply(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
      s.Shutdown();
    });
    UpstreamPool pool(loop, upstream.address(), PoolOptions{});
    Collector c;
    auto ex = pool.Start(Get("/"), &c);
    REQUIRE(loop.RunUntil([&] { return c.done() && pool.idle_count() == 0; }, absl::Seconds(10)));
    CHECK(c.ended);
    Collector d;
    auto ex2 = pool.Start(Get("/"), &d);
    REQUIRE(loop.RunUntil([&] { return d.done(); }, absl::Seconds(10)));
    CHECK(d.ended);
    CHECK(upstream.accepted() == 2);
    CHECK(pool.counters().retries == 0);
  }
}

TEST_CASE("Upstream pool: a response paused and resumed leaves the connection reusable") {
  net::Loop loop;
  AppConfig cfg;
  cfg.body_size = 2000;
  AppRouter app(cfg);
  TestServer upstream(loop, app);
  PoolOptions opts;
  opts.response_header_timeout_ms = 2000;
  UpstreamPool pool(loop, upstream.address(), opts);
  // The delegate pauses at the head: the body that came with it waits in the exchange and is
  // delivered, with the response's end, only after the resume.
  struct Pauser : Collector {
    UpstreamExchange* ex = nullptr;
    void OnResponseHead(UpstreamResponse& h) override {
      Collector::OnResponseHead(h);
      ex->PauseResponse();
    }
  } p;
  auto ex = pool.Start(Get("/paused"), &p);
  p.ex = ex.get();
  REQUIRE(loop.RunUntil([&] { return p.got_head; }, absl::Seconds(10)));
  CHECK_FALSE(p.ended);
  ex->ResumeResponse();
  REQUIRE(loop.RunUntil([&] { return p.done(); }, absl::Seconds(10)));
  REQUIRE(p.ended);
  CHECK(p.body.size() == 2000);
  Collector c;
  auto ex2 = pool.Start(Get("/next"), &c);
  REQUIRE(loop.RunUntil([&] { return c.done(); }, absl::Seconds(10)));
  CHECK(c.ended);
  CHECK(ex2->reused());
  CHECK(upstream.accepted == 1);
}
