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
