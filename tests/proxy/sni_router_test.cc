// SniRouter on loopback: ClientHellos from a real BoringSSL client routed by SNI to kernel TCP
// targets, with and without a PROXY v2 header; refusals (unknown name, not TLS, too large,
// timeouts, dial failures) each counted; a client trickling bytes through an in-memory stream.
#include "proxy/sni_router.h"

#include <openssl/ssl.h>

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/tcp.h"
#include "proxy/proxy_protocol.h"

using namespace p2proxy;
using proxy::ConnectionMeta;
using proxy::Route;
using proxy::SniRouter;

namespace {

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (auto& c : s) {
    seed = seed * 1103515245u + 12345u;
    c = static_cast<char>(seed >> 23);
  }
  return s;
}

std::string AsString(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }
base::ByteSpan AsSpan(const std::string& s) {
  return base::ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// ClientHelloFrom runs a BoringSSL client over memory BIOs just far enough to emit its first
// flight: the ClientHello records, exactly as a real client sends them.
std::string ClientHelloFrom(const char* sni, const std::vector<std::string>& alpn = {"h2", "http/1.1"}) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  REQUIRE(ctx);
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx.get()));
  REQUIRE(ssl);
  if (sni != nullptr) REQUIRE(SSL_set_tlsext_host_name(ssl.get(), sni) == 1);
  std::string wire;
  for (const auto& p : alpn) {
    wire.push_back(static_cast<char>(p.size()));
    wire += p;
  }
  if (!wire.empty()) {
    REQUIRE(SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) == 0);
  }
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), rbio, wbio);  // |ssl| owns both
  SSL_set_connect_state(ssl.get());
  REQUIRE(SSL_do_handshake(ssl.get()) == -1);
  REQUIRE(SSL_get_error(ssl.get(), -1) == SSL_ERROR_WANT_READ);
  const uint8_t* data = nullptr;
  size_t len = 0;
  REQUIRE(BIO_mem_contents(wbio, &data, &len) == 1);
  REQUIRE(len > 0);
  return std::string(reinterpret_cast<const char*>(data), len);
}

struct Sink : net::StreamHandler {
  std::string data;
  bool ended = false;
  absl::Status error;
  void OnData(base::ByteSpan d) override { data.append(d.begin(), d.end()); }
  void OnEnd() override { ended = true; }
  void OnError(const absl::Status& s) override { error = s; }
  bool closed() const { return ended || !error.ok(); }
};

// Target is a kernel TCP server that keeps every connection it accepts.
struct Target {
  struct Conn {
    std::unique_ptr<net::TcpStream> stream;
    Sink sink;
  };
  std::unique_ptr<net::TcpListener> listener;
  std::vector<std::unique_ptr<Conn>> conns;

  explicit Target(net::Loop& loop) {
    listener = *net::TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                         [this](std::unique_ptr<net::TcpStream> s) {
                                           auto c = std::make_unique<Conn>();
                                           c->stream = std::move(s);
                                           c->stream->SetHandler(&c->sink);
                                           conns.push_back(std::move(c));
                                         });
  }
  base::SocketAddress address() const { return listener->local_address(); }
};

// FakeStream is an in-memory client: the test delivers bytes in whatever pieces it likes and
// sees what the router writes back.
struct FakeStream final : net::Stream {
  net::Loop& loop;
  net::StreamHandler* handler = nullptr;
  std::string written;
  bool paused = false, shut = false, closed = false;
  bool* destroyed = nullptr;

  explicit FakeStream(net::Loop& l) : loop(l) {}
  ~FakeStream() override {
    if (destroyed) *destroyed = true;
  }
  void SetHandler(net::StreamHandler* h) override { handler = h; }
  void Write(base::ByteSpan data, WriteCallback done) override {
    const bool ok = !closed && !shut;
    if (ok) written.append(data.begin(), data.end());
    if (done) {
      loop.Post([done = std::move(done), ok]() mutable {
        done(ok ? absl::OkStatus() : absl::FailedPreconditionError("closed"));
      });
    }
  }
  void WriteOwned(std::vector<uint8_t> data, WriteCallback done) override { Write(data, std::move(done)); }
  size_t WriteQueueSize() const override { return 0; }
  void Shutdown() override { shut = true; }
  void Close() override {
    closed = true;
    handler = nullptr;
  }
  void PauseReading() override { paused = true; }
  void ResumeReading() override { paused = false; }

  // Deliver hands |data| to the handler, as a read would; false if the stream would not read.
  bool Deliver(base::ByteSpan data) {
    if (!handler || paused || closed) return false;
    handler->OnData(data);
    return true;
  }
};

// Rig: a front listener whose connections go to the router; "a.example" goes to target a with
// a PROXY v2 header (client and front addresses, the SNI as AUTHORITY), "b.example" to target
// b without one, "dead.example" to a port nothing listens on; other names have no route.
struct Rig {
  net::Loop loop;
  Target a{loop}, b{loop};
  base::SocketAddress dead;
  std::unique_ptr<SniRouter> router;
  std::unique_ptr<net::TcpListener> front;
  std::vector<std::string> decided;  // the SNIs Decide saw

  // |manual_time|: the loop's timers move only with loop.AdvanceTime (timeouts on fake time).
  explicit Rig(SniRouter::Options options = {}, bool manual_time = false) {
    if (manual_time) loop.UseManualTime();  // before the router starts any timer
    {
      // A port that was just free: bind one, then let it go.
      auto tmp = *net::TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                           [](std::unique_ptr<net::TcpStream>) {});
      dead = tmp->local_address();
    }
    router = std::make_unique<SniRouter>(
        loop,
        [this](const tls::ClientHelloInfo& hello, const ConnectionMeta& meta) -> std::optional<Route> {
          decided.push_back(hello.sni);
          Route r;
          if (hello.sni == "a.example") {
            r.dial = proxy::DialTcp(loop, a.address());
            proxy::ProxyHeader h;
            h.source = meta.peer;
            h.destination = meta.local;
            h.tlvs.push_back({proxy::kTlvAuthority, std::vector<uint8_t>(hello.sni.begin(), hello.sni.end())});
            r.proxy_header = proxy::EncodeProxyV2(h);
          } else if (hello.sni == "b.example") {
            r.dial = proxy::DialTcp(loop, b.address());
          } else if (hello.sni == "dead.example") {
            r.dial = proxy::DialTcp(loop, dead);
          } else {
            return std::nullopt;
          }
          return r;
        },
        options);
    front = *net::TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                      [this](std::unique_ptr<net::TcpStream> s) {
                                        ConnectionMeta meta{s->peer_address(), s->local_address()};
                                        router->Accept(std::move(s), meta);
                                      });
  }

  struct Client {
    std::unique_ptr<net::TcpStream> stream;
    Sink sink;
    void Send(const std::string& s) { stream->Write(AsSpan(s)); }
  };
  std::unique_ptr<Client> Connect() {
    auto c = std::make_unique<Client>();
    net::TcpStream::Connect(loop, front->local_address(), [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
      REQUIRE(s.ok());
      c->stream = std::move(*s);
      c->stream->SetHandler(&c->sink);
    });
    REQUIRE(loop.RunUntil([&] { return c->stream != nullptr; }, absl::Seconds(10)));
    return c;
  }
  bool Wait(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(10)) {
    return loop.RunUntil(done, limit);
  }
};

}  // namespace

TEST_CASE("SNI router: two names to two targets, the hello passed on byte for byte") {
  Rig rig;
  const std::string hello_a = ClientHelloFrom("a.example"), hello_b = ClientHelloFrom("b.example");
  auto ca = rig.Connect();
  auto cb = rig.Connect();
  ca->Send(hello_a);
  cb->Send(hello_b);
  REQUIRE(rig.Wait([&] { return rig.router->counters().routed == 2; }));
  REQUIRE(rig.Wait([&] { return rig.a.conns.size() == 1 && rig.b.conns.size() == 1; }));

  // b: exactly the client's bytes.
  REQUIRE(rig.Wait([&] { return rig.b.conns[0]->sink.data.size() >= hello_b.size(); }));
  REQUIRE(rig.b.conns[0]->sink.data == hello_b);

  // a: a PROXY v2 header naming the client and the front address, then the client's bytes.
  proxy::ProxyV2Parser parser;
  REQUIRE(rig.Wait([&] {
    return parser.Parse(AsSpan(rig.a.conns[0]->sink.data)) != proxy::ProxyV2Parser::Result::kContinue &&
           rig.a.conns[0]->sink.data.size() >= parser.header_len() + hello_a.size();
  }));
  REQUIRE(parser.Parse(AsSpan(rig.a.conns[0]->sink.data)) == proxy::ProxyV2Parser::Result::kDone);
  REQUIRE(parser.header().source == ca->stream->local_address());
  REQUIRE(parser.header().destination == rig.front->local_address());
  REQUIRE(parser.header().FindTlv(proxy::kTlvAuthority)->value == std::vector<uint8_t>{'a', '.', 'e', 'x', 'a',
                                                                                     'm', 'p', 'l', 'e'});
  REQUIRE(rig.a.conns[0]->sink.data.substr(parser.header_len()) == hello_a);

  REQUIRE(rig.decided.size() == 2);
  REQUIRE(rig.router->counters().accepted == 2);
  REQUIRE(rig.router->counters().no_route == 0);
  REQUIRE(rig.router->active() == 2);
}

TEST_CASE("SNI router: an unknown or missing name gets a fatal unrecognized_name alert") {
  Rig rig;
  const char* sni = GENERATE(static_cast<const char*>("unknown.example"), static_cast<const char*>(nullptr));
  auto c = rig.Connect();
  c->Send(ClientHelloFrom(sni));
  REQUIRE(rig.Wait([&] { return c->sink.closed(); }));
  REQUIRE(c->sink.data == AsString(tls::AlertRecord(tls::kAlertUnrecognizedName)));
  REQUIRE(c->sink.data == std::string("\x15\x03\x03\x00\x02\x02\x70", 7));
  REQUIRE(rig.router->counters().no_route == 1);
  REQUIRE(rig.router->counters().routed == 0);
  // The client closed after reading the alert; the router let go of it.
  c->stream.reset();
  REQUIRE(rig.Wait([&] { return rig.router->active() == 0; }));
  REQUIRE(rig.a.conns.empty());
  REQUIRE(rig.b.conns.empty());
}

TEST_CASE("SNI router: bytes that are not TLS are closed and counted") {
  Rig rig;
  auto c = rig.Connect();
  c->Send("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n");
  REQUIRE(rig.Wait([&] { return c->sink.closed(); }));
  REQUIRE(c->sink.data.empty());
  REQUIRE(rig.router->counters().not_tls == 1);
  REQUIRE(rig.decided.empty());
  REQUIRE(rig.Wait([&] { return rig.router->active() == 0; }));
}

TEST_CASE("SNI router: a dial failure closes the client and is counted") {
  Rig rig;
  auto c = rig.Connect();
  c->Send(ClientHelloFrom("dead.example"));
  REQUIRE(rig.Wait([&] { return c->sink.closed(); }));
  REQUIRE(rig.router->counters().dial_failed == 1);
  REQUIRE(rig.router->counters().routed == 0);
  REQUIRE(rig.Wait([&] { return rig.router->active() == 0; }));
}

TEST_CASE("SNI router: a client that goes away mid-hello is counted as aborted") {
  Rig rig;
  const std::string hello = ClientHelloFrom("a.example");
  auto c = rig.Connect();
  c->Send(hello.substr(0, hello.size() / 2));
  c->stream->Shutdown();
  REQUIRE(rig.Wait([&] { return rig.router->counters().aborted == 1; }));
  REQUIRE(rig.Wait([&] { return rig.router->active() == 0; }));
  REQUIRE(rig.decided.empty());
}

TEST_CASE("SNI router: bytes flow both ways after routing, with half-close, and the splice completes") {
  Rig rig;
  const std::string hello = ClientHelloFrom("b.example");
  auto c = rig.Connect();
  c->Send(hello);
  REQUIRE(rig.Wait([&] { return !rig.b.conns.empty() && rig.b.conns[0]->sink.data.size() >= hello.size(); }));
  Target::Conn& server = *rig.b.conns[0];
  const std::string up = Pattern(3 << 20, 7), down = Pattern(4 << 20, 8);
  c->Send(up);
  c->stream->Shutdown();
  server.stream->Write(AsSpan(down));
  server.stream->Shutdown();
  REQUIRE(rig.Wait([&] { return server.sink.ended && c->sink.ended; }, absl::Seconds(60)));
  REQUIRE(server.sink.data == hello + up);
  REQUIRE(c->sink.data == down);
  REQUIRE(rig.Wait([&] { return rig.router->counters().completed == 1; }));
  REQUIRE(rig.router->counters().splice_errors == 0);
  REQUIRE(rig.Wait([&] { return rig.router->active() == 0; }));
}

TEST_CASE("SNI router: a hello trickled in one byte at a time is still routed") {
  Rig rig;
  const std::string hello = ClientHelloFrom("b.example");
  auto owned = std::make_unique<FakeStream>(rig.loop);
  FakeStream* fake = owned.get();
  bool destroyed = false;
  fake->destroyed = &destroyed;
  rig.router->Accept(std::move(owned), ConnectionMeta{});
  for (size_t i = 0; i < hello.size(); ++i) {
    INFO("byte " << i);
    REQUIRE(fake->Deliver(AsSpan(hello).subspan(i, 1)));
    if (i + 1 < hello.size()) REQUIRE(rig.decided.empty());
  }
  // Complete: decided, and the client is paused until the target is there.
  REQUIRE(rig.decided == std::vector<std::string>{"b.example"});
  REQUIRE(fake->paused);
  REQUIRE(rig.Wait([&] { return !rig.b.conns.empty() && rig.b.conns[0]->sink.data.size() >= hello.size(); }));
  REQUIRE(rig.b.conns[0]->sink.data == hello);
  REQUIRE_FALSE(fake->paused);
  // And back.
  rig.b.conns[0]->stream->Write(AsSpan(std::string("server hello")));
  REQUIRE(rig.Wait([&] { return fake->written == "server hello"; }));
  REQUIRE(fake->Deliver(AsSpan(std::string("more"))));
  REQUIRE(rig.Wait([&] { return rig.b.conns[0]->sink.data == hello + "more"; }));
  REQUIRE_FALSE(destroyed);
}

TEST_CASE("SNI router: a hello that never completes times out") {
  SniRouter::Options options;
  options.hello_timeout_ms = 10000;
  Rig rig(options, /*manual_time=*/true);
  const std::string hello = ClientHelloFrom("a.example");
  auto owned = std::make_unique<FakeStream>(rig.loop);
  FakeStream* fake = owned.get();
  bool destroyed = false;
  fake->destroyed = &destroyed;
  rig.router->Accept(std::move(owned), ConnectionMeta{});
  REQUIRE(fake->Deliver(AsSpan(hello).first(10)));
  // More bytes on the way do not extend the deadline, which runs from the accept.
  rig.loop.AdvanceTime(absl::Seconds(5));
  REQUIRE(fake->Deliver(AsSpan(hello).subspan(10, 10)));
  rig.loop.AdvanceTime(absl::Milliseconds(4999));
  REQUIRE_FALSE(rig.Wait([&] { return destroyed; }, absl::Milliseconds(50)));
  REQUIRE(rig.router->counters().timeouts == 0);
  rig.loop.AdvanceTime(absl::Milliseconds(1));
  REQUIRE(rig.Wait([&] { return rig.router->counters().timeouts == 1; }));
  REQUIRE(rig.Wait([&] { return destroyed; }));
  REQUIRE(rig.router->active() == 0);
  REQUIRE(rig.decided.empty());
}

TEST_CASE("SNI router: a hello cut into tiny records past the buffer cap is refused as too large") {
  SniRouter::Options options;
  options.max_hello_bytes = 1024;
  Rig rig(options);
  auto owned = std::make_unique<FakeStream>(rig.loop);
  FakeStream* fake = owned.get();
  bool destroyed = false;
  fake->destroyed = &destroyed;
  rig.router->Accept(std::move(owned), ConnectionMeta{});
  // A ClientHello of 1000 body bytes announced, then sent one byte per record: each costs six
  // bytes on the wire, so the buffer passes 1024 + 4096 while the hello is still short.
  std::vector<uint8_t> body = {tls::kHandshakeTypeClientHello, 0x00, 0x03, 0xE8};
  body.resize(4 + 1000, 0x03);
  bool refused = false;
  for (size_t i = 0; i < body.size() && !refused; ++i) {
    const uint8_t record[6] = {tls::kContentTypeHandshake, 0x03, 0x01, 0x00, 0x01, body[i]};
    refused = !fake->Deliver(record);
  }
  REQUIRE(refused);
  REQUIRE(rig.router->counters().too_large == 1);
  REQUIRE(rig.router->counters().not_tls == 0);
  REQUIRE(rig.Wait([&] { return destroyed; }));
}

TEST_CASE("SNI router: a dial that never answers times out, and its late stream is closed") {
  net::Loop loop;
  loop.UseManualTime();
  Route::DialDone pending;
  SniRouter::Options options;
  options.dial_timeout_ms = 10000;
  SniRouter router(
      loop,
      [&](const tls::ClientHelloInfo&, const ConnectionMeta&) -> std::optional<Route> {
        Route r;
        r.dial = [&](Route::DialDone done) { pending = std::move(done); };
        return r;
      },
      options);
  auto owned = std::make_unique<FakeStream>(loop);
  FakeStream* fake = owned.get();
  bool destroyed = false;
  fake->destroyed = &destroyed;
  router.Accept(std::move(owned), ConnectionMeta{});
  const std::string hello = ClientHelloFrom("x.example");
  REQUIRE(fake->Deliver(AsSpan(hello)));
  // The dial started (and hangs).
  REQUIRE(loop.RunUntil([&] { return static_cast<bool>(pending); }, absl::Seconds(10)));
  loop.AdvanceTime(absl::Milliseconds(9999));
  REQUIRE_FALSE(loop.RunUntil([&] { return destroyed; }, absl::Milliseconds(50)));
  REQUIRE(router.counters().dial_failed == 0);
  loop.AdvanceTime(absl::Milliseconds(1));
  REQUIRE(loop.RunUntil([&] { return router.counters().dial_failed == 1; }, absl::Seconds(10)));
  REQUIRE(loop.RunUntil([&] { return destroyed; }, absl::Seconds(10)));
  REQUIRE(pending);
  auto late = std::make_unique<FakeStream>(loop);
  bool late_destroyed = false;
  late->destroyed = &late_destroyed;
  pending(std::unique_ptr<net::Stream>(std::move(late)));
  REQUIRE(late_destroyed);
  REQUIRE(router.counters().routed == 0);
}

TEST_CASE("SNI router: destroying the router mid-dial closes everything and ignores the late answer") {
  net::Loop loop;
  Route::DialDone pending;
  auto router = std::make_unique<SniRouter>(
      loop, [&](const tls::ClientHelloInfo&, const ConnectionMeta&) -> std::optional<Route> {
        Route r;
        r.dial = [&](Route::DialDone done) { pending = std::move(done); };
        return r;
      });
  auto owned = std::make_unique<FakeStream>(loop);
  FakeStream* fake = owned.get();
  bool destroyed = false;
  fake->destroyed = &destroyed;
  router->Accept(std::move(owned), ConnectionMeta{});
  REQUIRE(fake->Deliver(AsSpan(ClientHelloFrom("x.example"))));
  REQUIRE(loop.RunUntil([&] { return static_cast<bool>(pending); }, absl::Seconds(10)));
  router.reset();
  REQUIRE(destroyed);
  pending(absl::UnavailableError("too late"));  // must not touch the dead router
}
