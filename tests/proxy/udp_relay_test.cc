// UdpRelay against a kernel UDP echo target on loopback.
#include "proxy/udp_relay.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace p2proxy;

TEST_CASE("UDP relay: per-client sessions, replies to the right client, idle expiry, a cap") {
  net::Loop loop;
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
  proxy::UdpRelay relay(loop, target->local_address(), absl::Milliseconds(300), /*max_sessions=*/2,
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
  // Idle sessions expire, which frees room for new clients.
  REQUIRE(loop.RunUntil([&] { return relay.sessions() == 0; }, absl::Seconds(10)));
  REQUIRE(relay.counters().sessions_expired == 2);
  send("four", 7, 3000);
  REQUIRE(loop.RunUntil([&] { return replies.size() == 3; }, absl::Seconds(10)));
  REQUIRE(replies.back().client == "100.96.0.7:3000");
}

TEST_CASE("UDP relay: each ended session is reported once with its bytes (for audit)") {
  net::Loop loop;
  std::unique_ptr<net::UdpSocket> target;
  target = *net::UdpSocket::Bind(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                 [&](absl::Span<const base::Datagram> b) {
                                   for (auto& d : b) target->Send(d.addr, d.data);  // echo
                                 });
  size_t replies = 0;
  std::vector<proxy::UdpRelay::SessionStats> ended;
  {
    proxy::UdpRelay relay(loop, target->local_address(), absl::Milliseconds(200), 8,
                          [&](base::ByteSpan, const base::IpAddress&, uint16_t) { ++replies; });
    relay.SetSessionEnd([&](const proxy::UdpRelay::SessionStats& st) { ended.push_back(st); });
    const std::string hello = "hello";
    const auto span = base::ByteSpan(reinterpret_cast<const uint8_t*>(hello.data()), hello.size());
    relay.FromClient(span, base::IpAddress::V4(100, 96, 0, 5), 1000);
    relay.FromClient(span, base::IpAddress::V4(100, 96, 0, 5), 1000);
    REQUIRE(loop.RunUntil([&] { return replies == 2; }, absl::Seconds(10)));
    REQUIRE(loop.RunUntil([&] { return !ended.empty(); }, absl::Seconds(10)));  // idle expiry
    REQUIRE(ended.size() == 1);
    CHECK(ended[0].client.ToString() == "100.96.0.5");
    CHECK(ended[0].client_port == 1000);
    CHECK(ended[0].bytes_in == 10);
    CHECK(ended[0].bytes_out == 10);
    // A session still open when the relay goes away is reported by the destructor.
    relay.FromClient(span, base::IpAddress::V4(100, 96, 0, 6), 2000);
    REQUIRE(loop.RunUntil([&] { return replies == 3; }, absl::Seconds(10)));
  }
  REQUIRE(ended.size() == 2);
  CHECK(ended[1].client.ToString() == "100.96.0.6");
  CHECK(ended[1].bytes_in == 5);
}
