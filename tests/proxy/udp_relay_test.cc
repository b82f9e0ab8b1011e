// UdpRelay against a kernel UDP echo target on loopback.
#include "proxy/udp_relay.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace p2proxy;

TEST_CASE("UDP relay: per-client sessions, replies to the right client, idle expiry, a cap") {
  net::Loop loop;
  loop.UseManualTime();
  std::unique_ptr<net::UdpSocket> target;
  target = *net::UdpSocket::Bind(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                 [&](absl::Span<const base::Datagram> b) {
                                   for (auto& d : b) target->Send(d.addr, d.data);
                                 });
  struct Reply {
    std::string data;
    std::string client;
  };
  std::vector<Reply> replies;
  // Idle after 120 s; sessions are swept every 30 s (a quarter of that).
  proxy::UdpRelay relay(loop, target->local_address(), absl::Seconds(120), /*max_sessions=*/2,
                        [&](base::ByteSpan d, const base::IpAddress& ip, uint16_t port) {
                          replies.push_back({std::string(d.begin(), d.end()), ip.ToString() + ":" + std::to_string(port)});
                        });
  auto send = [&](const std::string& s, uint8_t last, uint16_t port) {
    relay.FromClient(base::ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()),
                     base::IpAddress::V4(100, 96, 0, last), port);
  };
  send("one", 5, 1000);
  send("two", 6, 2000);
  send("three", 7, 3000);  // a third client: over the cap of 2
  REQUIRE(loop.RunUntil([&] { return replies.size() == 2; }, absl::Seconds(10)));
  REQUIRE(relay.sessions() == 2);
  REQUIRE(relay.counters().sessions_refused == 1);
  for (const auto& r : replies) {
    if (r.data == "one") REQUIRE(r.client == "100.96.0.5:1000");
    if (r.data == "two") REQUIRE(r.client == "100.96.0.6:2000");
  }
  // Traffic 60 s in keeps the first session: its idle clock starts again.
  loop.AdvanceTime(absl::Seconds(60));
  send("one again", 5, 1000);
  REQUIRE(loop.RunUntil([&] { return replies.size() == 3; }, absl::Seconds(10)));
  // Idle sessions expire, which frees room for new clients.
  loop.AdvanceTime(absl::Milliseconds(59999));  // 119.999 s
  REQUIRE(relay.sessions() == 2);
  loop.AdvanceTime(absl::Milliseconds(1));  // the second client idle for 120 s
  REQUIRE(relay.sessions() == 1);
  REQUIRE(relay.counters().sessions_expired == 1);
  loop.AdvanceTime(absl::Milliseconds(59999));  // 179.999 s
  REQUIRE(relay.sessions() == 1);
  loop.AdvanceTime(absl::Milliseconds(1));  // the first client idle for 120 s
  REQUIRE(relay.sessions() == 0);
  REQUIRE(relay.counters().sessions_expired == 2);
  send("four", 7, 3000);
  REQUIRE(loop.RunUntil([&] { return replies.size() == 4; }, absl::Seconds(10)));
  REQUIRE(replies.back().client == "100.96.0.7:3000");
}

TEST_CASE("UDP relay: each ended session is reported once with its bytes (for audit)") {
  net::Loop loop;
  loop.UseManualTime();
  std::unique_ptr<net::UdpSocket> target;
  target = *net::UdpSocket::Bind(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                 [&](absl::Span<const base::Datagram> b) {
                                   for (auto& d : b) target->Send(d.addr, d.data);  // echo
                                 });
  size_t replies = 0;
  std::vector<proxy::UdpRelay::SessionStats> ended;
  {
    // Idle after 60 s, swept every 15 s.
    proxy::UdpRelay relay(loop, target->local_address(), absl::Seconds(60), 8,
                          [&](base::ByteSpan, const base::IpAddress&, uint16_t) { ++replies; });
    relay.SetSessionEnd([&](const proxy::UdpRelay::SessionStats& st) { ended.push_back(st); });
    const std::string hello = "hello";
    const auto span = base::ByteSpan(reinterpret_cast<const uint8_t*>(hello.data()), hello.size());
    const uint64_t start = loop.NowMs();
    relay.FromClient(span, base::IpAddress::V4(100, 96, 0, 5), 1000);
    REQUIRE(loop.RunUntil([&] { return replies == 1; }, absl::Seconds(10)));
    loop.AdvanceTime(absl::Seconds(15));
    relay.FromClient(span, base::IpAddress::V4(100, 96, 0, 5), 1000);
    REQUIRE(loop.RunUntil([&] { return replies == 2; }, absl::Seconds(10)));
    loop.AdvanceTime(absl::Milliseconds(59999));  // idle for just under 60 s
    REQUIRE(ended.empty());
    loop.AdvanceTime(absl::Milliseconds(1));  // idle expiry
    REQUIRE(ended.size() == 1);
    CHECK(ended[0].client.ToString() == "100.96.0.5");
    CHECK(ended[0].client_port == 1000);
    CHECK(ended[0].bytes_in == 10);
    CHECK(ended[0].bytes_out == 10);
    CHECK(ended[0].started_ms == start);
    CHECK(ended[0].duration_ms == 15000);  // first datagram to last reply
    // A session still open when the relay goes away is reported by the destructor.
    relay.FromClient(span, base::IpAddress::V4(100, 96, 0, 6), 2000);
    REQUIRE(loop.RunUntil([&] { return replies == 3; }, absl::Seconds(10)));
  }
  REQUIRE(ended.size() == 2);
  CHECK(ended[1].client.ToString() == "100.96.0.6");
  CHECK(ended[1].bytes_in == 5);
}
