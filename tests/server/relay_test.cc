// relay_test.cc: the server's relay forwards only between authenticated nodes, only in the
// sender's own name, and within each node's rate, counting every drop.
#include "server/relay.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "nat/relay_frame.h"

namespace p2proxy {
namespace {

class ManualClock : public base::Clock {
 public:
  absl::Time Wall() const override { return absl::UnixEpoch() + mono; }
  absl::Duration Monotonic() const override { return mono; }
  absl::Duration mono = absl::Seconds(100);
};

const base::IpAddress kSite = base::IpAddress::V4(100, 96, 0, 2);
const base::IpAddress kClient = base::IpAddress::V4(100, 96, 0, 3);
const base::IpAddress kOther = base::IpAddress::V4(100, 96, 0, 4);

base::SocketAddress Ep(const char* text) { return *base::SocketAddress::Parse(text); }

std::vector<uint8_t> Frame(const base::IpAddress& dst, const base::IpAddress& src) {
  std::vector<uint8_t> f(nat::kRelayHeaderSize + 148, 0x5A);
  nat::WriteRelayHeader(dst, src, f.data());
  f[12] = 1;
  f[13] = f[14] = f[15] = 0;
  return f;
}

struct Sent {
  std::vector<std::pair<std::string, size_t>> out;
  server::Relay::SendFn fn() {
    return [this](const base::SocketAddress& to, base::ByteSpan frame) { out.emplace_back(to.ToString(), frame.size()); };
  }
};

TEST_CASE("Relay: forwards between authenticated nodes, refuses strangers, spoofers and unknown destinations",
          "[server]") {
  ManualClock clock;
  server::Relay relay(clock, {});
  relay.SetEndpoint(kSite, Ep("198.18.5.2:40000"));
  relay.SetEndpoint(kClient, Ep("198.18.6.2:50000"));
  Sent sent;
  auto frame = Frame(kSite, kClient);

  // WireGuard's own messages are not the relay's.
  std::vector<uint8_t> wg(148, 0);
  wg[0] = 1;
  CHECK_FALSE(relay.Handle(base::Datagram{wg, Ep("198.18.6.2:50000")}, sent.fn()));

  REQUIRE(relay.Handle(base::Datagram{frame, Ep("198.18.6.2:50000")}, sent.fn()));
  REQUIRE(sent.out.size() == 1);
  CHECK(sent.out[0].first == "198.18.5.2:40000");
  CHECK(sent.out[0].second == frame.size());
  CHECK(relay.counters().forwarded == 1);

  // Not enrolled (no authenticated endpoint there): nothing relayed.
  CHECK(relay.Handle(base::Datagram{frame, Ep("203.0.113.9:1234")}, sent.fn()));
  CHECK(relay.counters().unknown_sender == 1);
  // The client claiming to be another node: nothing relayed.
  CHECK(relay.Handle(base::Datagram{Frame(kSite, kOther), Ep("198.18.6.2:50000")}, sent.fn()));
  CHECK(relay.counters().spoofed == 1);
  // To a node with no endpoint.
  CHECK(relay.Handle(base::Datagram{Frame(kOther, kClient), Ep("198.18.6.2:50000")}, sent.fn()));
  CHECK(relay.counters().unknown_destination == 1);
  // Malformed.
  auto broken = frame;
  broken[12] = 9;
  CHECK(relay.Handle(base::Datagram{broken, Ep("198.18.6.2:50000")}, sent.fn()));
  CHECK(relay.counters().malformed == 1);
  CHECK(sent.out.size() == 1);

  // A node that moved is known only at its new endpoint; a removed node at none.
  relay.SetEndpoint(kClient, Ep("198.18.6.2:50001"));
  CHECK(relay.Handle(base::Datagram{frame, Ep("198.18.6.2:50000")}, sent.fn()));
  CHECK(relay.counters().unknown_sender == 2);
  CHECK(relay.Handle(base::Datagram{frame, Ep("198.18.6.2:50001")}, sent.fn()));
  CHECK(sent.out.size() == 2);
  relay.RemoveNode(kSite);
  CHECK(relay.Handle(base::Datagram{frame, Ep("198.18.6.2:50001")}, sent.fn()));
  CHECK(relay.counters().unknown_destination == 2);
}

TEST_CASE("Relay: one node's flood is cut at its rate while another node's frames pass", "[server]") {
  ManualClock clock;
  server::Relay::Options o;
  o.frames_per_second = 1000;
  o.burst = 100;
  server::Relay relay(clock, o);
  relay.SetEndpoint(kSite, Ep("198.18.5.2:40000"));
  relay.SetEndpoint(kClient, Ep("198.18.6.2:50000"));
  relay.SetEndpoint(kOther, Ep("198.18.7.2:60000"));
  Sent sent;
  const auto flood = Frame(kSite, kClient);
  const auto fair = Frame(kSite, kOther);
  size_t fair_sent = 0;
  // One simulated second in 1 ms steps: the flooder sends 100 frames per step (100,000/s), the
  // other node 1 per step (1,000/s, its whole rate).
  for (int step = 0; step < 1000; ++step) {
    clock.mono += absl::Milliseconds(1);
    for (int i = 0; i < 100; ++i) relay.Handle(base::Datagram{flood, Ep("198.18.6.2:50000")}, sent.fn());
    const size_t before = sent.out.size();
    relay.Handle(base::Datagram{fair, Ep("198.18.7.2:60000")}, sent.fn());
    fair_sent += sent.out.size() - before;
  }
  const uint64_t flood_forwarded = relay.counters().forwarded - fair_sent;
  INFO("flood forwarded " << flood_forwarded << ", rate limited " << relay.counters().rate_limited);
  CHECK(flood_forwarded <= 100 + 1000 + 1);  // its burst plus one second at its rate
  CHECK(flood_forwarded >= 1000);
  CHECK(relay.counters().rate_limited >= 98000);
  CHECK(fair_sent == 1000);  // every frame of the other node went through
}

}  // namespace
}  // namespace p2proxy
