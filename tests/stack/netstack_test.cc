// The userspace stack against the kernel's, with no WireGuard in between: a TUN in a private
// network namespace carries the kernel's packets to NetStack and back. Kernel TCP/UDP (through
// net::TcpStream / UdpSocket on the same loop) talk to lwIP listeners at a served address.
// Needs root (unshare, TUN); skips with a message otherwise.
#include "stack/netstack.h"

#include <catch2/catch.hpp>
#include <openssl/sha.h>
#include <sched.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "net/tcp.h"
#include "net/tun.h"
#include "net/udp.h"
#include "stack/tcp_stream.h"
#include "stack/udp_endpoint.h"

using namespace p2proxy;

namespace {

const base::IpAddress kNode = base::IpAddress::V4(100, 96, 0, 10);
const base::IpAddress kResource = base::IpAddress::V4(100, 96, 128, 20);

// Rig: a TUN (kernel side 100.96.0.5) wired to a NetStack serving 100.96.128.0/18.
struct Rig {
  net::Loop loop;
  std::unique_ptr<net::TunDevice> tun;
  std::unique_ptr<stack::NetStack> stack;
  bool ok = false;

  Rig() {
    if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) return;
    auto t = net::TunDevice::Open(loop, "p2pst%d", [this](absl::Span<const base::ByteSpan> pkts) {
      if (stack) stack->Input(pkts);
    });
    if (!t.ok()) return;
    tun = std::move(*t);
    auto s = stack::NetStack::Create(loop, kNode, 1420, [this](absl::Span<const base::ByteSpan> pkts) {
      tun->WriteBatch(pkts);
    });
    REQUIRE(s.ok());
    stack = std::move(*s);
    stack->Serve(*base::IpPrefix::Parse("100.96.128.0/18"));
    REQUIRE(tun->SetMtu(1420).ok());
    REQUIRE(tun->AddAddress(base::IpAddress::V4(100, 96, 0, 5), 24).ok());
    REQUIRE(tun->SetUp(true).ok());
    REQUIRE(tun->AddRoute(*base::IpPrefix::Parse("100.96.128.0/17")).ok());
    ok = true;
  }
};

#define NEED_RIG(rig)                                                       \
  Rig rig;                                                                  \
  if (!rig.ok) {                                                            \
    WARN("skipped: needs root to create a TUN in a private network namespace"); \
    return;                                                                 \
  }

// Collector keeps what a stream delivers.
struct Collector : net::StreamHandler {
  std::string data;
  bool ended = false;
  absl::Status error;
  std::function<void(base::ByteSpan)> on_data;
  void OnData(base::ByteSpan d) override {
    data.append(d.begin(), d.end());
    if (on_data) on_data(d);
  }
  void OnEnd() override { ended = true; }
  void OnError(const absl::Status& s) override { error = s; }
};

// Echo writes back what it reads and shuts down after end of stream.
struct Echo : net::StreamHandler {
  std::unique_ptr<net::Stream> s;
  void OnData(base::ByteSpan d) override { s->Write(d); }
  void OnEnd() override { s->Shutdown(); }
  void OnError(const absl::Status&) override {}
};

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  uint32_t x = 7;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 23);
  }
  return s;
}

}  // namespace

TEST_CASE("kernel TCP reaches an lwIP listener at a served address and gets its bytes echoed") {
  NEED_RIG(rig);
  std::vector<std::unique_ptr<Echo>> echoes;
  base::IpAddress seen_peer;
  auto listener = rig.stack->ListenTcp(kResource, 7, [&](std::unique_ptr<net::Stream> s,
                                                         const base::IpAddress& peer, uint16_t) {
    seen_peer = peer;
    auto e = std::make_unique<Echo>();
    e->s = std::move(s);
    e->s->SetHandler(e.get());
    echoes.push_back(std::move(e));
  });
  REQUIRE(listener.ok());

  std::unique_ptr<net::TcpStream> client;
  absl::Status status = absl::UnknownError("pending");
  net::TcpStream::Connect(rig.loop, *base::SocketAddress::Parse("100.96.128.20:7"),
                          [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
                            status = s.status();
                            if (s.ok()) client = std::move(*s);
                          });
  REQUIRE(rig.loop.RunUntil([&] { return !absl::IsUnknown(status); }, absl::Seconds(10)));
  REQUIRE(status.ok());
  REQUIRE(client->local_address().IpString() == "100.96.0.5");
  Collector got;
  client->SetHandler(&got);
  const std::string payload = Pattern(4 << 20);
  client->Write(base::ByteSpan(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  client->Shutdown();
  REQUIRE(rig.loop.RunUntil([&] { return got.ended || !got.error.ok(); }, absl::Seconds(30)));
  REQUIRE(got.error.ok());
  REQUIRE(got.data.size() == payload.size());
  REQUIRE(got.data == payload);
  REQUIRE(seen_peer.ToString() == "100.96.0.5");
  REQUIRE(rig.stack->counters().tcp_accepted == 1);
}

TEST_CASE("a port with no listener at a served address refuses with RST, counted") {
  NEED_RIG(rig);
  auto listener = rig.stack->ListenTcp(kResource, 443, [](auto, auto&, auto) {});
  REQUIRE(listener.ok());
  absl::Status status = absl::UnknownError("pending");
  net::TcpStream::Connect(rig.loop, *base::SocketAddress::Parse("100.96.128.20:444"),
                          [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) { status = s.status(); });
  REQUIRE(rig.loop.RunUntil([&] { return !absl::IsUnknown(status); }, absl::Seconds(10)));
  REQUIRE(status.code() == absl::StatusCode::kUnavailable);
  REQUIRE(std::string(status.message()).find("refused") != std::string::npos);
  REQUIRE(rig.stack->counters().tcp_rst_sent >= 1);
  REQUIRE(rig.stack->counters().tcp_accepted == 0);
}

TEST_CASE("packets to an address the stack does not serve are dropped and counted, never answered") {
  NEED_RIG(rig);
  auto listener = rig.stack->ListenTcp(kResource, 80, [](auto, auto&, auto) {});
  REQUIRE(listener.ok());
  std::unique_ptr<net::TcpStream> never;
  net::TcpStream::Connect(rig.loop, *base::SocketAddress::Parse("100.96.255.9:80"),
                          [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) {
                            if (s.ok()) never = std::move(*s);
                          });
  REQUIRE(rig.loop.RunUntil([&] { return rig.stack->counters().dropped_not_served >= 1; }, absl::Seconds(10)));
  REQUIRE(rig.stack->counters().tcp_rst_sent == 0);
  REQUIRE(never == nullptr);
}

TEST_CASE("UDP to a served address and back, from the right source") {
  NEED_RIG(rig);
  std::unique_ptr<stack::UdpEndpoint> ep;
  // The reply goes out on a later turn of the loop, as a relayed answer would (lwIP's UDP
  // checks the source address against the netif at send time).
  auto bound = rig.stack->BindUdp(kResource, 53, [&](base::ByteSpan d, const base::IpAddress& from, uint16_t port) {
    std::string reply = "re:" + std::string(d.begin(), d.end());
    rig.loop.Post([&, reply, from, port] {
      REQUIRE(ep->SendTo(base::ByteSpan(reinterpret_cast<const uint8_t*>(reply.data()), reply.size()), from, port));
    });
  });
  REQUIRE(bound.ok());
  ep = std::move(*bound);
  std::string got;
  base::SocketAddress from;
  auto sock = net::UdpSocket::Bind(rig.loop, *base::SocketAddress::Parse("0.0.0.0:0"),
                                   [&](absl::Span<const base::Datagram> b) {
                                     for (auto& d : b) {
                                       got.assign(d.data.begin(), d.data.end());
                                       from = d.addr;
                                     }
                                   });
  REQUIRE(sock.ok());
  const std::string q = "query";
  (*sock)->Send(*base::SocketAddress::Parse("100.96.128.20:53"),
                base::ByteSpan(reinterpret_cast<const uint8_t*>(q.data()), q.size()));
  REQUIRE(rig.loop.RunUntil([&] { return !got.empty(); }, absl::Seconds(10)));
  REQUIRE(got == "re:query");
  REQUIRE(from.ToString() == "100.96.128.20:53");
}

TEST_CASE("an outbound connection from the node address reaches a kernel listener") {
  NEED_RIG(rig);
  std::unique_ptr<net::TcpStream> accepted;
  Collector server_got;
  auto l = net::TcpListener::Listen(rig.loop, *base::SocketAddress::Parse("100.96.0.5:8080"),
                                    [&](std::unique_ptr<net::TcpStream> s) {
                                      accepted = std::move(s);
                                      accepted->SetHandler(&server_got);
                                    });
  REQUIRE(l.ok());
  std::unique_ptr<net::Stream> conn;
  absl::Status status = absl::UnknownError("pending");
  rig.stack->ConnectTcp(base::IpAddress::V4(100, 96, 0, 5), 8080,
                        [&](absl::StatusOr<std::unique_ptr<net::Stream>> s) {
                          status = s.status();
                          if (s.ok()) conn = std::move(*s);
                        });
  REQUIRE(rig.loop.RunUntil([&] { return !absl::IsUnknown(status); }, absl::Seconds(10)));
  REQUIRE(status.ok());
  REQUIRE(rig.loop.RunUntil([&] { return accepted != nullptr; }, absl::Seconds(10)));
  REQUIRE(accepted->peer_address().IpString() == "100.96.0.10");
  conn->Write(base::ByteSpan(reinterpret_cast<const uint8_t*>("hi"), 2));
  conn->Shutdown();
  REQUIRE(rig.loop.RunUntil([&] { return server_got.ended; }, absl::Seconds(10)));
  REQUIRE(server_got.data == "hi");
}

TEST_CASE("a paused lwIP reader closes the window: the sender's bytes wait in its own queue") {
  NEED_RIG(rig);
  std::unique_ptr<net::Stream> server;
  Collector got;
  auto listener = rig.stack->ListenTcp(kResource, 9000, [&](std::unique_ptr<net::Stream> s, auto&, auto) {
    server = std::move(s);
    got.on_data = [&](base::ByteSpan) {
      if (got.data.size() >= (1 << 20)) server->PauseReading();
    };
    server->SetHandler(&got);
  });
  REQUIRE(listener.ok());
  std::unique_ptr<net::TcpStream> client;
  net::TcpStream::Connect(rig.loop, *base::SocketAddress::Parse("100.96.128.20:9000"),
                          [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) { client = std::move(*s); });
  REQUIRE(rig.loop.RunUntil([&] { return client && server; }, absl::Seconds(10)));
  const std::string payload = Pattern(32 << 20);
  client->Write(base::ByteSpan(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  REQUIRE(rig.loop.RunUntil([&] { return got.data.size() >= (1 << 20); }, absl::Seconds(20)));
  // Whatever the stack holds for a paused reader is bounded by its window (256 KiB) and the
  // out-of-order cap; the kernel sender keeps the rest.
  REQUIRE(rig.loop.RunUntil([&] { return client->WriteQueueSize() > 0; }, absl::Seconds(10)));
  const size_t delivered_while_paused = got.data.size();
  REQUIRE(delivered_while_paused < (1 << 20) + 64 * 1024);
  got.on_data = nullptr;
  server->ResumeReading();
  client->Shutdown();
  REQUIRE(rig.loop.RunUntil([&] { return got.ended; }, absl::Seconds(60)));
  REQUIRE(got.data == payload);
}
