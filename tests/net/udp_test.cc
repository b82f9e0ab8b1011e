// UDP over loopback: an echo server and a client that checks every datagram comes back intact.
#include "net/udp.h"

#include <catch2/catch.hpp>
#include <algorithm>
#include <set>
#include <string>

using namespace p2proxy;
using namespace p2proxy::net;

TEST_CASE("UDP echo over loopback") {
  Loop loop;
  std::unique_ptr<UdpSocket> server;
  auto bound = UdpSocket::Bind(loop, *SocketAddress::Parse("127.0.0.1:0"),
                               [&](absl::Span<const base::Datagram> batch) {
                                 for (const auto& d : batch) server->Send(d.addr, d.data);
                               });
  REQUIRE(bound.ok());
  server = std::move(*bound);
  const SocketAddress server_addr = server->local_address();
  REQUIRE(server_addr.port() != 0);

  std::set<std::string> received;
  auto client = UdpSocket::Bind(loop, *SocketAddress::Parse("127.0.0.1:0"),
                                [&](absl::Span<const base::Datagram> batch) {
                                  for (const auto& d : batch) {
                                    REQUIRE(d.addr == server_addr);
                                    received.emplace(d.data.begin(), d.data.end());
                                  }
                                });
  REQUIRE(client.ok());
  constexpr int kCount = 200;
  std::set<std::string> sent;
  for (int i = 0; i < kCount; ++i) {
    std::string payload = "datagram-" + std::to_string(i) + std::string(static_cast<size_t>(i * 7), 'x');
    sent.insert(payload);
    REQUIRE((*client)->Send(server_addr, base::ByteSpan(reinterpret_cast<const uint8_t*>(payload.data()), payload.size())));
  }
  // Loopback with 4 MiB buffers does not drop 200 small datagrams.
  REQUIRE(loop.RunUntil([&] { return received.size() == sent.size(); }, absl::Seconds(10)));
  REQUIRE(received == sent);
  REQUIRE(server->counters().rx_packets == kCount);
  REQUIRE((*client)->counters().tx_packets == kCount);
}

TEST_CASE("a datagram larger than the receive slot is dropped and counted") {
  Loop loop;
  int delivered = 0;
  UdpSocket::Options small;
  small.max_datagram = 512;
  small.batch = 1;
  auto server = UdpSocket::Bind(loop, *SocketAddress::Parse("127.0.0.1:0"),
                                [&](absl::Span<const base::Datagram> b) { delivered += static_cast<int>(b.size()); }, small);
  REQUIRE(server.ok());
  auto client = UdpSocket::Bind(loop, *SocketAddress::Parse("127.0.0.1:0"),
                                [](absl::Span<const base::Datagram>) {});
  REQUIRE(client.ok());
  std::vector<uint8_t> big(2000, 0xab), fits(100, 0xcd);
  REQUIRE((*client)->Send((*server)->local_address(), big));
  REQUIRE((*client)->Send((*server)->local_address(), fits));
  REQUIRE(loop.RunUntil([&] { return delivered == 1; }, absl::Seconds(10)));
  REQUIRE((*server)->counters().rx_truncated == 1);
}

TEST_CASE("binding a port in use fails with a message naming the address") {
  Loop loop;
  auto first = UdpSocket::Bind(loop, *SocketAddress::Parse("127.0.0.1:0"),
                               [](absl::Span<const base::Datagram>) {});
  REQUIRE(first.ok());
  auto addr = (*first)->local_address();
  auto second = UdpSocket::Bind(loop, addr, [](absl::Span<const base::Datagram>) {});
  REQUIRE_FALSE(second.ok());
  REQUIRE(second.status().message().find(addr.ToString()) != absl::string_view::npos);
}

TEST_CASE("SendBatch sends many datagrams in few calls, and the receiver gets them in batches") {
  Loop loop;
  std::set<std::string> received;
  size_t largest_batch = 0;
  auto server = UdpSocket::Bind(loop, *SocketAddress::Parse("127.0.0.1:0"),
                                [&](absl::Span<const base::Datagram> batch) {
                                  largest_batch = std::max(largest_batch, batch.size());
                                  for (const auto& d : batch) received.emplace(d.data.begin(), d.data.end());
                                });
  REQUIRE(server.ok());
  auto client = UdpSocket::Bind(loop, *SocketAddress::Parse("127.0.0.1:0"),
                                [](absl::Span<const base::Datagram>) {});
  REQUIRE(client.ok());
  std::vector<std::string> payloads;
  for (int i = 0; i < 150; ++i) payloads.push_back("batched-" + std::to_string(i));
  std::vector<base::Datagram> batch;
  for (const auto& p : payloads) {
    batch.push_back(base::Datagram{
        base::ByteSpan(reinterpret_cast<const uint8_t*>(p.data()), p.size()), (*server)->local_address()});
  }
  REQUIRE((*client)->SendBatch(batch) == payloads.size());
  REQUIRE((*client)->counters().tx_packets == payloads.size());
  REQUIRE(loop.RunUntil([&] { return received.size() == payloads.size(); }, absl::Seconds(10)));
  // All 150 were queued before the receiver ran, so recvmmsg returned more than one at a time.
  REQUIRE(largest_batch > 1);
}
