// LocalProxies over KernelOverlay to loopback echo servers: SOCKS5 CONNECT and UDP ASSOCIATE,
// HTTP CONNECT and port forwards, every refusal with its wire answer, the limits, and after each
// scenario that no connection is left open.
//
// The loop runs on the test's thread; clients are plain blocking sockets on a second thread
// (every call bounded by SO_RCVTIMEO/SO_SNDTIMEO), which wakes the loop through a uv_async_t
// when it is done. Assertions run on the test's thread only, after the client returned.
#include "client/local_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "base/ip_prefix.h"
#include "client/overlay.h"
#include "client/socks5.h"
#include "net/handle.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "net/udp.h"

using namespace p2proxy;
using client::LocalProxies;
using client::LocalProxyOptions;

namespace {

constexpr absl::Duration kWait = absl::Seconds(15);  // any one wait of the loop
constexpr int kSocketTimeoutSec = 5;                 // any one blocking call of a client

// ---- client side: blocking POSIX sockets, run on the client thread ----

// B is a byte string from numbers (SOCKS5 messages written out by hand).
std::string B(std::initializer_list<int> v) {
  std::string out;
  for (int b : v) out.push_back(static_cast<char>(b));
  return out;
}

std::string Port16(uint16_t port) { return B({port >> 8, port & 0xFF}); }

const std::string kGreeting = B({0x05, 0x01, 0x00});
const std::string kMethodNoAuth = B({0x05, 0x00});

// NameRequest is a SOCKS5 request for |cmd| to DOMAINNAME |name|:|port|.
std::string NameRequest(std::string_view name, uint16_t port, int cmd = client::socks5::kCmdConnect) {
  return B({0x05, cmd, 0x00, 0x03, static_cast<int>(name.size())}) + std::string(name) + Port16(port);
}

// V4Request is a SOCKS5 request for |cmd| to 127.0.0.1:|port|.
std::string V4Request(uint16_t port, int cmd = client::socks5::kCmdConnect) {
  return B({0x05, cmd, 0x00, 0x01, 127, 0, 0, 1}) + Port16(port);
}

// Reply is the 10-byte reply with an IPv4 bound address that the proxy always sends.
std::string Reply(int rep) { return B({0x05, rep, 0x00, 0x01, 0, 0, 0, 0, 0, 0}); }

void SetTimeouts(int fd) {
  timeval tv{kSocketTimeoutSec, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Fd owns a socket.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    Reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Dial connects a blocking TCP socket to |to| (invalid on failure).
Fd Dial(const base::SocketAddress& to) {
  Fd fd(socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.ok()) return fd;
  SetTimeouts(fd.get());
  if (connect(fd.get(), to.sa(), to.sa_len()) != 0) return Fd();
  return fd;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// End is how a read stopped.
enum class End { kOpen, kEof, kReset, kTimeout };

const char* EndName(End e) {
  switch (e) {
    case End::kOpen: return "open";
    case End::kEof: return "eof";
    case End::kReset: return "reset";
    case End::kTimeout: return "timeout";
  }
  return "?";
}

struct Received {
  std::string data;
  End end = End::kOpen;
};

// Receive reads until |want| bytes are in (0: no limit), the peer ends (EOF, or a reset or other
// error) or the receive timeout passes.
Received Receive(int fd, size_t want) {
  Received r;
  char buf[16384];
  while (want == 0 || r.data.size() < want) {
    const size_t cap = want == 0 ? sizeof(buf) : std::min(sizeof(buf), want - r.data.size());
    const ssize_t n = recv(fd, buf, cap, 0);
    if (n > 0) {
      r.data.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      r.end = End::kEof;
      break;
    }
    if (errno == EINTR) continue;
    r.end = errno == EAGAIN || errno == EWOULDBLOCK ? End::kTimeout : End::kReset;
    break;
  }
  return r;
}

std::string ReceiveN(int fd, size_t n) { return Receive(fd, n).data; }
Received ReceiveToEnd(int fd) { return Receive(fd, 0); }

// Pattern is |len| pseudo-random bytes.
std::string Pattern(size_t len, uint32_t seed) {
  std::string v(len, '\0');
  uint32_t x = seed;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<char>(x >> 24);
  }
  return v;
}

// UdpClient is a blocking UDP socket bound to 127.0.0.1:0.
struct UdpClient {
  UdpClient() : fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    SetTimeouts(fd.get());
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  }
  bool SendTo(const base::SocketAddress& to, std::string_view data) {
    return sendto(fd.get(), data.data(), data.size(), 0, to.sa(), to.sa_len()) == static_cast<ssize_t>(data.size());
  }
  // Recv returns one datagram, or "" after the timeout (or at once if |wait| is false and none
  // is queued).
  std::string Recv(bool wait = true) {
    char buf[65536];
    const ssize_t n = recv(fd.get(), buf, sizeof(buf), wait ? 0 : MSG_DONTWAIT);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }
  Fd fd;
};

// ---- server side: loopback echo servers on the loop ----

// TcpEcho echoes every byte back on each connection it accepts, and passes a half-close on
// (end of stream in, Shutdown out). A connection whose bytes contain "BYE" is half-closed by the
// echo first, after the echo, as a server that ends a session (sshd after `exit`) does.
class TcpEcho {
 public:
  explicit TcpEcho(net::Loop& loop) {
    auto l = net::TcpListener::Listen(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                      [this](std::unique_ptr<net::TcpStream> s) {
                                        auto c = std::make_unique<Conn>();
                                        c->echo = this;
                                        c->stream = std::move(s);
                                        c->stream->SetHandler(c.get());
                                        conns_.push_back(std::move(c));
                                      });
    REQUIRE(l.ok());
    listener_ = std::move(*l);
  }
  uint16_t port() const { return listener_->local_address().port(); }

  size_t accepted() const { return conns_.size(); }
  int eofs = 0;    // connections whose peer (the proxy) sent end of stream
  int errors = 0;  // connections that failed (a reset)
  std::string received;  // every byte in, all connections in order

 private:
  struct Conn final : net::StreamHandler {
    TcpEcho* echo = nullptr;
    std::unique_ptr<net::TcpStream> stream;
    std::string in;
    bool shut = false;
    void OnData(base::ByteSpan data) override {
      echo->received.append(data.begin(), data.end());
      in.append(data.begin(), data.end());
      stream->Write(data);
      if (!shut && in.find("BYE") != std::string::npos) {
        shut = true;
        stream->Shutdown();
      }
    }
    void OnEnd() override {
      ++echo->eofs;
      if (!shut) {
        shut = true;
        stream->Shutdown();
      }
    }
    void OnError(const absl::Status&) override { ++echo->errors; }
  };
  std::unique_ptr<net::TcpListener> listener_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

// UdpEcho sends every datagram back to where it came from.
class UdpEcho {
 public:
  explicit UdpEcho(net::Loop& loop) {
    auto s = net::UdpSocket::Bind(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                  [this](absl::Span<const base::Datagram> batch) {
                                    for (const base::Datagram& d : batch) {
                                      ++datagrams;
                                      socket_->Send(d.addr, d.data);
                                    }
                                  });
    REQUIRE(s.ok());
    socket_ = std::move(*s);
  }
  uint16_t port() const { return socket_->local_address().port(); }
  int datagrams = 0;

 private:
  std::unique_ptr<net::UdpSocket> socket_;
};

// DialCounts is what CountingOverlay saw; shared with the dial callbacks, which may outlive it.
struct DialCounts {
  int started = 0;
  int finished = 0;
  int connected = 0;  // finished with a stream
};

// CountingOverlay passes everything to the kernel overlay and counts the dials it saw start and
// finish, so a test can act between the two.
class CountingOverlay final : public client::Overlay {
 public:
  explicit CountingOverlay(client::Overlay& real) : real_(real) {}
  void DialTcp(const base::IpAddress& addr, uint16_t port, ConnectFn done) override {
    ++counts->started;
    real_.DialTcp(addr, port, [counts = counts, done = std::move(done)](
                                  absl::StatusOr<std::unique_ptr<net::Stream>> s) mutable {
      ++counts->finished;
      if (s.ok()) ++counts->connected;
      done(std::move(s));
    });
  }
  absl::StatusOr<std::unique_ptr<client::OverlayUdp>> OpenUdp(RecvFn recv) override {
    return real_.OpenUdp(std::move(recv));
  }
  std::shared_ptr<DialCounts> counts = std::make_shared<DialCounts>();

 private:
  client::Overlay& real_;
};

// ClientThread runs |fn| on its own thread while the test's thread runs the loop; when |fn|
// returns, done() turns true and the loop wakes (uv_async_send is the one thread-safe libuv call).
class ClientThread {
 public:
  ClientThread(net::Loop& loop, std::function<void()> fn) {
    uv_async_init(loop.uv(), wake_.get(), [](uv_async_t*) {});
    wake_.MarkInitialized();
    thread_ = std::thread([this, fn = std::move(fn)] {
      fn();
      done_ = true;
      uv_async_send(wake_.get());
    });
  }
  ~ClientThread() { Join(); }
  bool done() const { return done_; }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  net::UvHandle<uv_async_t> wake_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// Harness is a loop, the kernel overlay, names that map the echo servers' private names to
// 127.0.0.1, the echo servers, and the proxies (SOCKS5 and HTTP on 127.0.0.1:0 unless |tune|
// says otherwise).
struct Harness {
  explicit Harness(const std::function<void(Harness&, LocalProxyOptions&)>& tune = nullptr) {
    names.Set({"example.internal"}, {{"echo.example.internal", base::IpAddress::V4(127, 0, 0, 1)},
                                     {"udpecho.example.internal", base::IpAddress::V4(127, 0, 0, 1)}});
    LocalProxyOptions o;
    o.socks5 = *base::SocketAddress::Parse("127.0.0.1:0");
    o.http = *base::SocketAddress::Parse("127.0.0.1:0");
    if (tune) tune(*this, o);
    auto p = LocalProxies::Start(loop, overlay, names, std::move(o));
    REQUIRE(p.ok());
    proxies = std::move(*p);
  }

  // Client runs |fn| on a client thread until it returns (bounded).
  void Client(const std::function<void()>& fn) {
    ClientThread t(loop, fn);
    const bool finished = loop.RunUntil([&] { return t.done(); }, kWait);
    t.Join();
    REQUIRE(finished);
  }

  // AllClosed runs the loop until no local connection is open (bounded) and says whether so.
  bool AllClosed() {
    return loop.RunUntil([&] { return proxies->open_connections() == 0 && proxies->udp_associations_open() == 0; },
                         kWait);
  }

  base::SocketAddress socks5() const { return *proxies->socks5_address(); }
  base::SocketAddress http() const { return *proxies->http_address(); }

  net::Loop loop;
  std::unique_ptr<client::Overlay> kernel = client::KernelOverlay(loop);
  CountingOverlay overlay{*kernel};
  client::PrivateNames names;
  TcpEcho echo{loop};
  UdpEcho udp_echo{loop};
  std::unique_ptr<LocalProxies> proxies;
};

// SocksAnswer is what a SOCKS5 client saw: the method selection, the reply, then the rest up to
// the end of the connection.
struct SocksAnswer {
  std::string method;
  std::string reply;
  Received rest;
};

// SocksTry sends |greeting| and, if the proxy accepts method 0, |request|, and reads the answer.
SocksAnswer SocksTry(const base::SocketAddress& proxy, const std::string& greeting, const std::string& request) {
  SocksAnswer a;
  Fd fd = Dial(proxy);
  if (!fd.ok() || !SendAll(fd.get(), greeting)) return a;
  a.method = ReceiveN(fd.get(), 2);
  if (a.method == kMethodNoAuth && SendAll(fd.get(), request)) a.reply = ReceiveN(fd.get(), 10);
  a.rest = ReceiveToEnd(fd.get());
  return a;
}

// OpenSocks opens a SOCKS5 CONNECT to |request|'s destination; the fd is invalid unless the
// proxy answered success.
Fd OpenSocks(const base::SocketAddress& proxy, const std::string& request) {
  Fd fd = Dial(proxy);
  if (!fd.ok() || !SendAll(fd.get(), kGreeting + request)) return Fd();
  if (ReceiveN(fd.get(), 2) != kMethodNoAuth || ReceiveN(fd.get(), 10) != Reply(0)) return Fd();
  return fd;
}

std::string HttpConnectHead(std::string_view authority) {
  return "CONNECT " + std::string(authority) + " HTTP/1.1\r\nHost: " + std::string(authority) +
         "\r\nUser-Agent: local_proxy_test\r\n\r\n";
}

const std::string kHttp200 = "HTTP/1.1 200 Connection established\r\n\r\n";


// BoundOf reads BND.ADDR:BND.PORT of a 10-byte IPv4 reply.
base::SocketAddress BoundOf(const std::string& reply) {
  if (reply.size() != 10 || reply[3] != 0x01) return {};
  const auto* u = reinterpret_cast<const uint8_t*>(reply.data());
  const std::string ip = std::to_string(u[4]) + "." + std::to_string(u[5]) + "." + std::to_string(u[6]) + "." +
                         std::to_string(u[7]);
  auto a = base::SocketAddress::FromIp(ip, static_cast<uint16_t>(u[8] << 8 | u[9]));
  return a.ok() ? *a : base::SocketAddress();
}

// UdpToName is the header of a UDP ASSOCIATE datagram to DOMAINNAME |name|:|port|.
std::string UdpToName(std::string_view name, uint16_t port) {
  return B({0x00, 0x00, 0x00, 0x03, static_cast<int>(name.size())}) + std::string(name) + Port16(port);
}

// UdpFromLoopback is the header the relay puts before an answer from 127.0.0.1:|port|.
std::string UdpFromLoopback(uint16_t port) { return B({0x00, 0x00, 0x00, 0x01, 127, 0, 0, 1}) + Port16(port); }

// RefusedPort is a TCP port on 127.0.0.1 that is bound but not listening: a connect to it is
// refused for as long as |holder| stays open, and no other test can take it meanwhile.
uint16_t RefusedPort(Fd* holder) {
  *holder = Fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(holder->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 0;
  socklen_t len = sizeof(a);
  getsockname(holder->get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool Closed(const Received& r) { return r.end == End::kEof || r.end == End::kReset; }

}  // namespace


// ---- SOCKS5 CONNECT ----

TEST_CASE("local proxy: SOCKS5 CONNECT to a private name carries bytes both ways, and the client's half-close ends it",
          "[local_proxy]") {
  Harness h;
  const auto socks = h.socks5();
  const uint16_t port = h.echo.port();
  const std::string big = Pattern(48 * 1024, 7);
  std::string method, reply, small_back, big_back;
  Received end;
  h.Client([&] {
    Fd fd = Dial(socks);
    SendAll(fd.get(), kGreeting);
    method = ReceiveN(fd.get(), 2);
    SendAll(fd.get(), NameRequest("Echo.Example.Internal.", port));  // case and a trailing dot: the same name
    reply = ReceiveN(fd.get(), 10);
    SendAll(fd.get(), "ping");
    small_back = ReceiveN(fd.get(), 4);
    SendAll(fd.get(), big);
    big_back = ReceiveN(fd.get(), big.size());
    shutdown(fd.get(), SHUT_WR);
    end = ReceiveToEnd(fd.get());
  });
  CHECK(method == kMethodNoAuth);
  CHECK(reply == Reply(client::socks5::kRepSucceeded));
  CHECK(small_back == "ping");
  CHECK((big_back == big));  // (parenthesized: Catch would print 48 KiB on failure)
  // The client's FIN reached the echo, whose FIN came back: a clean end both ways.
  INFO("end: " << EndName(end.end));
  CHECK(end.end == End::kEof);
  CHECK(end.data.empty());
  CHECK(h.echo.eofs == 1);
  CHECK(h.echo.errors == 0);
  CHECK(h.echo.received == "ping" + big);
  CHECK(h.proxies->counters().accepted == 1);
  CHECK(h.proxies->counters().spliced == 1);
  REQUIRE(h.AllClosed());
}

TEST_CASE("local proxy: SOCKS5 CONNECT passes on the bytes a client sends before the reply", "[local_proxy]") {
  Harness h;
  const auto socks = h.socks5();
  const uint16_t port = h.echo.port();
  // Longer than the 600 bytes a SOCKS5 handshake may take: bytes after a complete request are
  // the tunnel's (a TLS ClientHello sent without waiting is often over 600).
  const std::string early = "SSH-2.0-OpenSSH_9.6\r\n" + std::string(2000, 'x');
  std::string method, reply, back;
  Received end;
  SECTION("greeting, request and data in one write (as p2proxy-client connect sends them)") {
    h.Client([&] {
      Fd fd = Dial(socks);
      SendAll(fd.get(), kGreeting + NameRequest("echo.example.internal", port) + early);
      method = ReceiveN(fd.get(), 2);
      reply = ReceiveN(fd.get(), 10);
      back = ReceiveN(fd.get(), early.size());
      shutdown(fd.get(), SHUT_WR);
      end = ReceiveToEnd(fd.get());
    });
  }
  SECTION("data right behind the request, after the method selection") {
    h.Client([&] {
      Fd fd = Dial(socks);
      SendAll(fd.get(), kGreeting);
      method = ReceiveN(fd.get(), 2);
      SendAll(fd.get(), NameRequest("echo.example.internal", port) + early);
      reply = ReceiveN(fd.get(), 10);
      back = ReceiveN(fd.get(), early.size());
      shutdown(fd.get(), SHUT_WR);
      end = ReceiveToEnd(fd.get());
    });
  }
  CHECK(method == kMethodNoAuth);
  CHECK(reply == Reply(client::socks5::kRepSucceeded));
  CHECK(back == early);
  CHECK(h.echo.received == early);
  CHECK(end.end == End::kEof);
  REQUIRE(h.AllClosed());
}

TEST_CASE("local proxy: SOCKS5 CONNECT to an IPv4 literal", "[local_proxy]") {
  Harness h;
  const auto socks = h.socks5();
  const uint16_t port = h.echo.port();
  std::string back;
  Received end;
  bool opened = false;
  h.Client([&] {
    Fd fd = OpenSocks(socks, V4Request(port));
    opened = fd.ok();
    if (!opened) return;
    SendAll(fd.get(), "literal");
    back = ReceiveN(fd.get(), 7);
    shutdown(fd.get(), SHUT_WR);
    end = ReceiveToEnd(fd.get());
  });
  REQUIRE(opened);
  CHECK(back == "literal");
  CHECK(end.end == End::kEof);
  CHECK(h.proxies->counters().unknown_names == 0);
  REQUIRE(h.AllClosed());
}

TEST_CASE("local proxy: SOCKS5 refusals answer the RFC 1928 code, then close", "[local_proxy]") {
  Harness h;
  const auto socks = h.socks5();
  const uint16_t port = h.echo.port();
  const auto& c = h.proxies->counters();
  SocksAnswer a;

  // Refused runs one exchange and checks that the reply is |rep| and the proxy closed cleanly.
  auto refused = [&](const std::string& greeting, const std::string& request, int rep) {
    h.Client([&] { a = SocksTry(socks, greeting, request); });
    CHECK(a.method == kMethodNoAuth);
    CHECK(a.reply == Reply(rep));
    INFO("end: " << EndName(a.rest.end));
    CHECK(a.rest.end == End::kEof);
    CHECK(a.rest.data.empty());
  };

  SECTION("a name outside the private zones: host unreachable") {
    refused(kGreeting, NameRequest("example.com", 80), client::socks5::kRepHostUnreachable);
    CHECK(c.unknown_names == 1);
    CHECK(c.dial_failures == 1);
  }
  SECTION("an unknown name inside a private zone: host unreachable") {
    refused(kGreeting, NameRequest("nope.example.internal", port), client::socks5::kRepHostUnreachable);
    CHECK(c.unknown_names == 1);
  }
  SECTION("a port where nothing listens: connection refused") {
    Fd holder;
    const uint16_t closed_port = RefusedPort(&holder);
    REQUIRE(closed_port != 0);
    refused(kGreeting, NameRequest("echo.example.internal", closed_port), client::socks5::kRepConnectionRefused);
    CHECK(c.dial_failures == 1);
    CHECK(c.unknown_names == 0);
  }
  SECTION("BIND: command not supported") {
    refused(kGreeting, V4Request(port, client::socks5::kCmdBind), client::socks5::kRepCommandNotSupported);
    CHECK(c.bad_handshake == 1);
  }
  SECTION("ATYP 0x09: address type not supported") {
    refused(kGreeting, B({0x05, 0x01, 0x00, 0x09, 127, 0, 0, 1, 0, 7}), client::socks5::kRepAddressTypeNotSupported);
    CHECK(c.bad_handshake == 1);
  }
  SECTION("a greeting without method 0: 05 FF, then close") {
    h.Client([&] { a = SocksTry(socks, B({0x05, 0x02, 0x01, 0x02}), ""); });
    CHECK(a.method == B({0x05, 0xFF}));
    CHECK(a.reply.empty());
    CHECK(a.rest.end == End::kEof);
    CHECK(a.rest.data.empty());
    CHECK(c.bad_handshake == 1);
  }
  SECTION("a SOCKS4a client: closed without a SOCKS5 answer") {
    Received r;
    h.Client([&] {
      Fd fd = Dial(socks);
      // As curl --socks4a sends it: VER 4, CONNECT, port 80, 0.0.0.1, user "", host.
      SendAll(fd.get(), B({0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0}) + std::string("vault.example.internal") + B({0}));
      r = ReceiveToEnd(fd.get());
    });
    INFO("end: " << EndName(r.end));
    CHECK(Closed(r));
    CHECK(r.data.empty());
    CHECK(c.bad_handshake == 1);
  }
  CHECK(h.echo.accepted() == 0);
  CHECK(c.spliced == 0);
  REQUIRE(h.AllClosed());
}

// ---- SOCKS5 UDP ASSOCIATE ----

TEST_CASE("local proxy: SOCKS5 UDP ASSOCIATE relays to a private name, drops other ports, ends with its TCP connection",
          "[local_proxy]") {
  Harness h;
  const auto socks = h.socks5();
  const uint16_t uport = h.udp_echo.port();
  const std::string header = UdpToName("udpecho.example.internal", uport);
  Fd ctl;
  std::string method, reply, answer1, answer2, stray;
  h.Client([&] {
    ctl = Dial(socks);
    SendAll(ctl.get(), kGreeting);
    method = ReceiveN(ctl.get(), 2);
    // From 0.0.0.0:0, as most clients ask: the first datagram's source port becomes the client's.
    SendAll(ctl.get(), B({0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
    reply = ReceiveN(ctl.get(), 10);
    const base::SocketAddress relay = BoundOf(reply);
    if (!relay.valid()) return;
    UdpClient u1, u2;
    u1.SendTo(relay, header + "one");
    answer1 = u1.Recv();
    u2.SendTo(relay, header + "stray");
    // The relay takes datagrams in order: once "two" is back, "stray" was seen (and, had it been
    // relayed, its echo would have come back to u1 first).
    u1.SendTo(relay, header + "two");
    answer2 = u1.Recv();
    stray = u2.Recv(/*wait=*/false);
  });
  CHECK(method == kMethodNoAuth);
  REQUIRE(reply.size() == 10);
  CHECK(reply.substr(0, 8) == B({0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1}));
  CHECK(BoundOf(reply).port() != 0);
  CHECK(answer1 == UdpFromLoopback(uport) + "one");
  CHECK(answer2 == UdpFromLoopback(uport) + "two");
  CHECK(stray.empty());
  const auto& c = h.proxies->counters();
  CHECK(c.udp_associations == 1);
  CHECK(c.udp_datagrams_out == 2);
  CHECK(c.udp_datagrams_in == 2);
  CHECK(c.udp_dropped == 1);
  CHECK(h.udp_echo.datagrams == 2);
  CHECK(h.proxies->open_connections() == 1);
  CHECK(h.proxies->udp_associations_open() == 1);
  ctl.Reset();  // the association lives as long as its TCP connection
  REQUIRE(h.AllClosed());
}

// ---- HTTP CONNECT ----

TEST_CASE("local proxy: HTTP CONNECT", "[local_proxy]") {
  Harness h;
  const auto http = h.http();
  const uint16_t port = h.echo.port();
  const std::string authority = "echo.example.internal:" + std::to_string(port);
  const auto& c = h.proxies->counters();

  SECTION("200, then a tunnel") {
    std::string head, back;
    Received end;
    h.Client([&] {
      Fd fd = Dial(http);
      SendAll(fd.get(), HttpConnectHead(authority));
      head = ReceiveN(fd.get(), kHttp200.size());
      SendAll(fd.get(), "through the tunnel");
      back = ReceiveN(fd.get(), 18);
      shutdown(fd.get(), SHUT_WR);
      end = ReceiveToEnd(fd.get());
    });
    CHECK(head == kHttp200);
    CHECK(back == "through the tunnel");
    CHECK(end.end == End::kEof);
    CHECK(h.echo.eofs == 1);
    CHECK(c.spliced == 1);
  }
  SECTION("a TLS ClientHello sent right behind the head reaches the resource") {
    // A record header (handshake, TLS 1.0 record version, 47 bytes) and a ClientHello's start.
    const std::string hello = B({0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03}) + Pattern(42, 3);
    std::string got;
    h.Client([&] {
      Fd fd = Dial(http);
      SendAll(fd.get(), HttpConnectHead(authority) + hello);
      got = ReceiveN(fd.get(), kHttp200.size() + hello.size());
    });
    CHECK((got == kHttp200 + hello));
    CHECK((h.echo.received == hello));
  }
  SECTION("an unknown name: 404 with a body that says why") {
    Received r;
    h.Client([&] {
      Fd fd = Dial(http);
      SendAll(fd.get(), HttpConnectHead("nope.example.internal:443"));
      r = ReceiveToEnd(fd.get());
    });
    CHECK(r.end == End::kEof);
    CHECK(r.data.rfind("HTTP/1.1 404 ", 0) == 0);
    const size_t blank = r.data.find("\r\n\r\n");
    REQUIRE(blank != std::string::npos);
    const std::string head = r.data.substr(0, blank);
    const std::string body = r.data.substr(blank + 4);
    CHECK(head.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
    CHECK(body.find("nope.example.internal") != std::string::npos);
    CHECK(c.unknown_names == 1);
    CHECK(h.echo.accepted() == 0);
  }
  SECTION("GET: 405 with Allow: CONNECT") {
    Received r;
    h.Client([&] {
      Fd fd = Dial(http);
      SendAll(fd.get(), "GET http://echo.example.internal/ HTTP/1.1\r\nHost: echo.example.internal\r\n\r\n");
      r = ReceiveToEnd(fd.get());
    });
    INFO("end: " << EndName(r.end) << ", answer: " << r.data);
    CHECK(Closed(r));
    CHECK(r.data.rfind("HTTP/1.1 405 ", 0) == 0);
    CHECK(r.data.find("Allow: CONNECT\r\n") != std::string::npos);
    CHECK(c.bad_handshake == 1);
    CHECK(h.echo.accepted() == 0);
  }
  REQUIRE(h.AllClosed());
}

// ---- port forwards ----

TEST_CASE("local proxy: ParsePortForward reads [LISTEN_IP:]LISTEN_PORT:HOST:PORT and names the wrong part",
          "[local_proxy]") {
  auto f = client::ParsePortForward("2222:echo.example.internal:7");
  REQUIRE(f.ok());
  CHECK(f->listen.ToString() == "127.0.0.1:2222");
  CHECK(f->host == "echo.example.internal");
  CHECK(f->port == 7);

  f = client::ParsePortForward("127.0.0.2:0:x.example.internal:1");
  REQUIRE(f.ok());
  CHECK(f->listen.ToString() == "127.0.0.2:0");
  CHECK(f->host == "x.example.internal");
  CHECK(f->port == 1);

  f = client::ParsePortForward("8080:100.96.0.7:80");  // an IPv4 literal as the host
  REQUIRE(f.ok());
  CHECK(f->host == "100.96.0.7");

  struct Bad {
    const char* text;
    const char* names;  // the part the message must name
  };
  for (const Bad& bad : {
           Bad{"70000:echo.example.internal:7", "listen port '70000'"},
           Bad{"x:echo.example.internal:7", "listen port 'x'"},
           Bad{"2222:echo.example.internal:0", "port '0'"},
           Bad{"2222:echo.example.internal:65536", "port '65536'"},
           Bad{"2222:echo.example.internal:-1", "port '-1'"},
           Bad{"2222:bad..example.internal:22", "host 'bad..example.internal'"},
           Bad{"2222:10.1:22", "host '10.1'"},
           Bad{"2222::22", "host ''"},
           Bad{"256.0.0.1:2222:echo.example.internal:22", "listen address '256.0.0.1'"},
           Bad{"2222:echo.example.internal", "expected [LISTEN_IP:]LISTEN_PORT:HOST:PORT"},
           Bad{"a:b:c:d:e", "expected [LISTEN_IP:]LISTEN_PORT:HOST:PORT"},
       }) {
    INFO(bad.text);
    auto r = client::ParsePortForward(bad.text);
    REQUIRE_FALSE(r.ok());
    CHECK(absl::IsInvalidArgument(r.status()));
    CHECK(std::string(r.status().message()).find(bad.names) != std::string::npos);
  }
}

TEST_CASE("local proxy: a port forward reaches its resource, and one whose resource refuses resets the client",
          "[local_proxy]") {
  Fd holder;
  const uint16_t refused_port = RefusedPort(&holder);
  REQUIRE(refused_port != 0);
  Harness h([&](Harness& self, LocalProxyOptions& o) {
    o.socks5.reset();
    o.http.reset();
    o.forwards.push_back({*base::SocketAddress::Parse("127.0.0.1:0"), "echo.example.internal", self.echo.port()});
    o.forwards.push_back({*base::SocketAddress::Parse("127.0.0.1:0"), "echo.example.internal", refused_port});
  });
  CHECK_FALSE(h.proxies->socks5_address().has_value());
  CHECK_FALSE(h.proxies->http_address().has_value());
  const std::vector<base::SocketAddress> at = h.proxies->forward_addresses();
  REQUIRE(at.size() == 2);
  CHECK(at[0].port() != 0);
  std::string back;
  Received end, refused;
  h.Client([&] {
    Fd fd = Dial(at[0]);
    SendAll(fd.get(), "forwarded");  // before the resource answered: waits in the kernel
    back = ReceiveN(fd.get(), 9);
    shutdown(fd.get(), SHUT_WR);
    end = ReceiveToEnd(fd.get());
    Fd bad = Dial(at[1]);
    refused = ReceiveToEnd(bad.get());
  });
  CHECK(back == "forwarded");
  CHECK(end.end == End::kEof);
  INFO("refused: " << EndName(refused.end));
  CHECK(refused.end == End::kReset);
  CHECK(refused.data.empty());
  const auto& c = h.proxies->counters();
  CHECK(c.spliced == 1);
  CHECK(c.dial_failures == 1);
  REQUIRE(h.AllClosed());
}

// ---- limits ----

TEST_CASE("local proxy: max_connections closes the connection over the limit at once", "[local_proxy]") {
  Harness h([](Harness&, LocalProxyOptions& o) { o.max_connections = 2; });
  const auto socks = h.socks5();
  Fd a, b;
  std::string a_method, b_method;
  Received third;
  h.Client([&] {
    // Each answered greeting proves its connection is accepted and counted before the next.
    a = Dial(socks);
    SendAll(a.get(), kGreeting);
    a_method = ReceiveN(a.get(), 2);
    b = Dial(socks);
    SendAll(b.get(), kGreeting);
    b_method = ReceiveN(b.get(), 2);
    Fd over = Dial(socks);
    SendAll(over.get(), kGreeting);
    third = ReceiveToEnd(over.get());
  });
  CHECK(a_method == kMethodNoAuth);
  CHECK(b_method == kMethodNoAuth);
  INFO("third: " << EndName(third.end));
  CHECK(Closed(third));
  CHECK(third.data.empty());
  const auto& c = h.proxies->counters();
  CHECK(c.accepted == 3);
  CHECK(c.refused_limit == 1);
  CHECK(h.proxies->open_connections() == 2);
  a.Reset();
  b.Reset();
  REQUIRE(h.AllClosed());

  // Below the limit again: served.
  std::string d_method;
  h.Client([&] {
    Fd d = Dial(socks);
    SendAll(d.get(), kGreeting);
    d_method = ReceiveN(d.get(), 2);
  });
  CHECK(d_method == kMethodNoAuth);
  CHECK(c.refused_limit == 1);
  REQUIRE(h.AllClosed());
}

TEST_CASE("local proxy: handshake_timeout closes silent clients, not spliced ones", "[local_proxy]") {
  Harness h([](Harness&, LocalProxyOptions& o) { o.handshake_timeout = absl::Milliseconds(200); });
  const auto socks = h.socks5();
  const auto http = h.http();
  const uint16_t port = h.echo.port();
  Received silent, half_greeting, half_head;
  std::string back;
  h.Client([&] {
    Fd spliced = OpenSocks(socks, NameRequest("echo.example.internal", port));
    Fd a = Dial(socks);
    silent = ReceiveToEnd(a.get());
    Fd b = Dial(socks);
    SendAll(b.get(), B({0x05}));
    half_greeting = ReceiveToEnd(b.get());
    Fd c = Dial(http);
    SendAll(c.get(), "CONNECT echo.example.internal:7 HTTP/1.1\r\n");
    half_head = ReceiveToEnd(c.get());
    // At least three timeouts later, the spliced connection still works.
    if (!spliced.ok()) return;
    SendAll(spliced.get(), "still here");
    back = ReceiveN(spliced.get(), 10);
  });
  // Each wait ends well before the client's own 5 s receive timeout, with the proxy's FIN.
  CHECK(silent.end == End::kEof);
  CHECK(half_greeting.end == End::kEof);
  CHECK(half_head.end == End::kEof);
  CHECK(silent.data.empty());
  CHECK(half_greeting.data.empty());
  CHECK(half_head.data.empty());
  CHECK(back == "still here");
  CHECK(h.proxies->counters().handshake_timeouts == 3);
  REQUIRE(h.AllClosed());
}

// ---- nothing left open ----

// The client side of the e2e run (tests/e2e/control_test.sh, userspace part) step by step, with
// the count of open connections checked after each: the status there once showed "1 open".
TEST_CASE("local proxy: no connection stays open after any of the e2e run's clients", "[local_proxy]") {
  Harness h([](Harness& self, LocalProxyOptions& o) {
    o.forwards.push_back({*base::SocketAddress::Parse("127.0.0.1:0"), "echo.example.internal", self.echo.port()});
  });
  const auto socks = h.socks5();
  const auto http = h.http();
  const auto forward = h.proxies->forward_addresses().at(0);
  const uint16_t port = h.echo.port();
  const uint16_t uport = h.udp_echo.port();
  std::string step;
  bool ok = false;
  uint64_t connections = 0;
  // Each step opens one connection. A client may close before the proxy accepted it: wait for
  // the accept before asking whether everything is closed.
  auto run = [&](std::string name, const std::function<bool()>& client) {
    step = std::move(name);
    INFO("step: " << step);
    ok = false;
    h.Client([&] { ok = client(); });
    CHECK(ok);
    ++connections;
    REQUIRE(h.loop.RunUntil([&] { return h.proxies->counters().accepted == connections; }, kWait));
    INFO("open connections: " << h.proxies->open_connections()
                              << ", UDP associations: " << h.proxies->udp_associations_open());
    REQUIRE(h.AllClosed());
  };

  run("curl --socks5-hostname: a request, the answer, close", [&] {
    Fd fd = Dial(socks);
    SendAll(fd.get(), B({0x05, 0x02, 0x00, 0x01}));  // curl offers no authentication and GSSAPI
    if (ReceiveN(fd.get(), 2) != kMethodNoAuth) return false;
    SendAll(fd.get(), NameRequest("echo.example.internal", port));
    if (ReceiveN(fd.get(), 10) != Reply(0)) return false;
    SendAll(fd.get(), "GET / HTTP/1.1\r\n\r\n");
    return ReceiveN(fd.get(), 18) == "GET / HTTP/1.1\r\n\r\n";  // then close, no half-close
  });
  run("p2proxy-client connect (ssh ProxyCommand): pipelined, the server ends the session", [&] {
    Fd fd = Dial(socks);
    SendAll(fd.get(), kGreeting + NameRequest("echo.example.internal", port) + "SSH-2.0-x\r\n");
    if (ReceiveN(fd.get(), 12) != kMethodNoAuth + Reply(0)) return false;
    if (ReceiveN(fd.get(), 11) != "SSH-2.0-x\r\n") return false;
    SendAll(fd.get(), "BYE");
    const Received r = ReceiveToEnd(fd.get());
    shutdown(fd.get(), SHUT_WR);  // Pump: the remote finished, so are we
    return r.data == "BYE" && r.end == End::kEof;
  });
  run("ssh -p 2222 through the forward, the server ends the session", [&] {
    Fd fd = Dial(forward);
    SendAll(fd.get(), "SSH-2.0-x\r\n");
    if (ReceiveN(fd.get(), 11) != "SSH-2.0-x\r\n") return false;
    SendAll(fd.get(), "BYE");
    const Received r = ReceiveToEnd(fd.get());
    return r.data == "BYE" && r.end == End::kEof;
  });
  run("socks5_udp.py: UDP ASSOCIATE, one datagram, exit", [&] {
    Fd ctl = Dial(socks);
    SendAll(ctl.get(), kGreeting);
    if (ReceiveN(ctl.get(), 2) != kMethodNoAuth) return false;
    SendAll(ctl.get(), B({0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
    const base::SocketAddress relay = BoundOf(ReceiveN(ctl.get(), 10));
    UdpClient u;
    u.SendTo(relay, UdpToName("udpecho.example.internal", uport) + "udp");
    return u.Recv() == UdpFromLoopback(uport) + "udp";
  });
  run("curl --socks5-hostname example.com: refused (host unreachable)", [&] {
    const SocksAnswer a = SocksTry(socks, B({0x05, 0x02, 0x00, 0x01}), NameRequest("example.com", 80));
    return a.reply == Reply(client::socks5::kRepHostUnreachable) && a.rest.end == End::kEof;
  });
  run("curl --socks4a: closed", [&] {
    Fd fd = Dial(socks);
    SendAll(fd.get(), B({0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0}) + "vault.example.internal" + B({0}));
    return Closed(ReceiveToEnd(fd.get()));
  });
  run("curl -x http: CONNECT nope.example.internal, 404", [&] {
    Fd fd = Dial(http);
    SendAll(fd.get(), HttpConnectHead("nope.example.internal:443"));
    const Received r = ReceiveToEnd(fd.get());
    return r.data.rfind("HTTP/1.1 404 ", 0) == 0 && r.end == End::kEof;
  });
  run("HTTP CONNECT tunnel, the client closes without reading the echo", [&] {
    Fd fd = Dial(http);
    SendAll(fd.get(), HttpConnectHead("echo.example.internal:" + std::to_string(port)));
    if (ReceiveN(fd.get(), kHttp200.size()) != kHttp200) return false;
    return SendAll(fd.get(), Pattern(4096, 9));  // and close with the echo unread: a reset
  });
  run("SOCKS5 client that closes before its reply", [&] {
    Fd fd = Dial(socks);
    return SendAll(fd.get(), kGreeting + NameRequest("echo.example.internal", port) + "early");
  });
  run("a client that closes in the middle of its greeting", [&] {
    Fd fd = Dial(socks);
    return SendAll(fd.get(), B({0x05, 0x02}));
  });
  const auto& c = h.proxies->counters();
  INFO("accepted " << c.accepted << ", spliced " << c.spliced << ", bad_handshake " << c.bad_handshake
                   << ", dial_failures " << c.dial_failures << ", unknown_names " << c.unknown_names
                   << ", handshake_timeouts " << c.handshake_timeouts << ", dials " << h.overlay.counts->started
                   << "/" << h.overlay.counts->finished << "/" << h.overlay.counts->connected);
  CHECK(c.spliced == 5);
  CHECK(c.udp_associations == 1);
}

// ---- destruction ----

TEST_CASE("local proxy: destroying LocalProxies closes spliced, handshaking and UDP connections", "[local_proxy]") {
  Harness h;
  const auto socks = h.socks5();
  const auto http = h.http();
  const uint16_t port = h.echo.port();
  Fd spliced, greeted, silent, half_head, udp;
  std::string back;
  h.Client([&] {
    spliced = OpenSocks(socks, NameRequest("echo.example.internal", port));
    SendAll(spliced.get(), "x");
    back = ReceiveN(spliced.get(), 1);
    greeted = Dial(socks);  // waits for its request
    SendAll(greeted.get(), kGreeting);
    ReceiveN(greeted.get(), 2);
    silent = Dial(socks);  // waits for its greeting
    half_head = Dial(http);
    SendAll(half_head.get(), "CONNECT echo.example.internal:");
    udp = Dial(socks);
    SendAll(udp.get(), kGreeting + B({0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
    ReceiveN(udp.get(), 12);
  });
  REQUIRE(back == "x");
  REQUIRE(h.loop.RunUntil([&] { return h.proxies->counters().accepted == 5; }, kWait));
  CHECK(h.proxies->open_connections() == 5);
  CHECK(h.proxies->udp_associations_open() == 1);

  h.proxies.reset();

  std::vector<Received> ends(5);
  h.Client([&] {
    ends[0] = ReceiveToEnd(spliced.get());
    ends[1] = ReceiveToEnd(greeted.get());
    ends[2] = ReceiveToEnd(silent.get());
    ends[3] = ReceiveToEnd(half_head.get());
    ends[4] = ReceiveToEnd(udp.get());
  });
  for (size_t i = 0; i < ends.size(); ++i) {
    INFO("connection " << i << ": " << EndName(ends[i].end));
    CHECK(Closed(ends[i]));
    CHECK(ends[i].data.empty());
  }
  CHECK(ends[0].end == End::kReset);  // Splice::Abort resets the local side
  // The resource's side is closed too.
  CHECK(h.loop.RunUntil([&] { return h.echo.eofs + h.echo.errors == 1; }, kWait));
}

// A dial still in flight when the proxies are destroyed: its late result must neither touch the
// destroyed LocalProxies nor leak the stream.
TEST_CASE("local proxy: destroying LocalProxies while a dial is in flight", "[local_proxy]") {
  Harness h;
  const auto socks = h.socks5();
  const uint16_t port = h.echo.port();
  Fd fd;
  ClientThread t(h.loop, [&] {
    fd = Dial(socks);
    SendAll(fd.get(), kGreeting + NameRequest("echo.example.internal", port));
  });
  const std::shared_ptr<DialCounts> dials = h.overlay.counts;
  REQUIRE(h.loop.RunUntil([&] { return dials->started == 1; }, kWait));
  REQUIRE(dials->finished == 0);  // the connect completes on a later turn
  h.proxies.reset();
  REQUIRE(h.loop.RunUntil([&] { return dials->finished == 1 && t.done(); }, kWait));
  t.Join();
  CHECK(dials->connected == 1);  // a late stream, not an error
  // The late stream is closed: the echo sees the connection end.
  CHECK(h.loop.RunUntil([&] { return h.echo.accepted() == 1 && h.echo.eofs + h.echo.errors == 1; }, kWait));
}

// A UDP association whose session ended (its TCP connection closed) waits in the loop's
// deferred-delete queue; destroying the proxies before the loop drains it must be safe (ASan
// checks the association's destructor does not reach the destroyed LocalProxies).
TEST_CASE("local proxy: destroying LocalProxies right after a UDP association ended", "[local_proxy]") {
  Harness h;
  const auto socks = h.socks5();
  Fd ctl;
  std::string reply;
  h.Client([&] {
    ctl = Dial(socks);
    SendAll(ctl.get(), kGreeting + B({0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
    reply = ReceiveN(ctl.get(), 12);
  });
  REQUIRE(reply.substr(0, 4) == kMethodNoAuth + B({0x05, 0x00}));
  ctl.Reset();
  REQUIRE(h.loop.RunUntil([&] { return h.proxies->open_connections() == 0; }, kWait));
  // The session is gone from the proxies and so is its association's count and sockets, though
  // the objects are deleted on a later turn (after the proxies, below).
  CHECK(h.proxies->udp_associations_open() == 0);
  h.proxies.reset();
  h.loop.RunOnce(/*block=*/false);
  h.loop.RunOnce(/*block=*/false);
}

TEST_CASE("local proxy: PrivateNames resolves names and literals the overlay holds", "[local_proxy]") {
  client::PrivateNames names;
  names.Set({"example.internal"}, {{"vault.example.internal", base::IpAddress::V4(100, 96, 128, 2)},
                                   {"*.apps.example.internal", base::IpAddress::V4(100, 96, 128, 3)}});
  CHECK(names.Resolve("VAULT.example.internal.")->ToString() == "100.96.128.2");
  CHECK(names.Resolve("a.apps.example.internal")->ToString() == "100.96.128.3");
  CHECK(names.Resolve("b.a.apps.example.internal")->ToString() == "100.96.128.3");
  CHECK(absl::IsNotFound(names.Resolve("apps.example.internal").status()));
  CHECK(absl::IsNotFound(names.Resolve("example.com").status()));
  // IPv6 literals: the overlay is IPv4 (the stack would otherwise read the first four bytes).
  CHECK(absl::IsInvalidArgument(names.Resolve("[fd00::1]").status()));
  CHECK(absl::IsInvalidArgument(names.Resolve("fd00::1").status()));
  // IPv4 literals only where the tunnel routes them, once the predicate is set.
  CHECK(names.Resolve("198.51.100.7").ok());
  names.SetRoutable([](const base::IpAddress& a) { return base::IpPrefix::Parse("100.96.128.0/18")->Contains(a); });
  CHECK(names.Resolve("100.96.128.9").ok());
  auto outside = names.Resolve("198.51.100.7");
  REQUIRE(absl::IsInvalidArgument(outside.status()));
  CHECK(absl::StrContains(outside.status().message(), "no peer routes it"));
}
