// Tests for SiteSelector: two sites serve one resource; probes answered with different delays
// choose the faster; flows stay on their site; a site that stops answering is down after three
// misses and its flows move; it comes back only after answering three times in a row, and new
// flows move back to it when it is clearly faster. All on a fake time line, no sockets.
#include "client/site_selector.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <map>

using namespace p2proxy;
using namespace p2proxy::client;

namespace {

const base::IpAddress kSelf = *base::IpAddress::Parse("100.96.0.5");
const base::IpAddress kResource = *base::IpAddress::Parse("100.96.128.7");

SiteCandidate Site(uint8_t tag, const char* addr, const char* name) {
  SiteCandidate c;
  c.key.fill(tag);
  c.node_address = *base::IpAddress::Parse(addr);
  c.name = name;
  return c;
}

// Answer turns a probe into the site's echo reply.
std::vector<uint8_t> Answer(const std::vector<uint8_t>& probe) {
  std::vector<uint8_t> r = probe;
  std::memcpy(r.data() + 12, probe.data() + 16, 4);
  std::memcpy(r.data() + 16, probe.data() + 12, 4);
  r[20] = 0;
  return r;
}

// Tcp builds the first bytes of a TCP packet from the client to the resource.
std::vector<uint8_t> Tcp(uint16_t src_port, uint16_t dst_port = 443) {
  std::vector<uint8_t> p(40, 0);
  p[0] = 0x45;
  p[3] = 40;
  p[9] = 6;
  std::memcpy(p.data() + 12, kSelf.bytes.data(), 4);
  std::memcpy(p.data() + 16, kResource.bytes.data(), 4);
  p[20] = static_cast<uint8_t>(src_port >> 8);
  p[21] = static_cast<uint8_t>(src_port);
  p[22] = static_cast<uint8_t>(dst_port >> 8);
  p[23] = static_cast<uint8_t>(dst_port);
  return p;
}

// World runs the selector over fake time: each site answers its probes after its delay, or
// not at all when it is dead.
struct World {
  SiteSelector sel;
  absl::Duration now = absl::Seconds(100);
  SiteCandidate a = Site(1, "100.96.0.2", "a"), b = Site(2, "100.96.0.3", "b");
  std::map<uint8_t, absl::Duration> delay = {{1, absl::Milliseconds(40)}, {2, absl::Milliseconds(1)}};
  std::map<uint8_t, bool> dead;
  std::multimap<absl::Duration, std::vector<uint8_t>> in_flight;

  World() { sel.Configure(kSelf, {SharedResource{kResource, {a, b}}}, now); }

  // Run advances time in 10 ms steps for |d|, delivering answers when due.
  void Run(absl::Duration d) {
    const absl::Duration end = now + d;
    while (now < end) {
      for (auto& probe : sel.Tick(now)) {
        REQUIRE(probe.packet.size() >= 28);
        if (!dead[probe.site[0]]) in_flight.emplace(now + delay[probe.site[0]], Answer(probe.packet));
      }
      now += absl::Milliseconds(10);
      while (!in_flight.empty() && in_flight.begin()->first <= now) {
        REQUIRE(sel.OnDelivered(in_flight.begin()->second, now));
        in_flight.erase(in_flight.begin());
      }
    }
  }
  uint8_t RouteOf(uint16_t port) { return (*sel.Route(Tcp(port), now))[0]; }
};

}  // namespace

TEST_CASE("site selector: the faster site carries new flows, each flow stays, a dead site is routed around") {
  World w;
  // Before any answer: the server's first site.
  CHECK(w.RouteOf(1000) == 1);
  w.Run(absl::Seconds(3));
  // b answers in 1 ms, a in 40 ms: new flows go to b; the old flow stays on a.
  CHECK(w.sel.PreferredFor(kResource)->name == "b");
  CHECK(w.RouteOf(1001) == 2);
  CHECK(w.RouteOf(1000) == 1);

  // b dies. Within three missed probes (200 ms each, after at most a 1 s wait for the next
  // probe) it is down, and new and existing flows of b go to a.
  w.dead[2] = true;
  w.Run(absl::Seconds(1) + absl::Milliseconds(900) + absl::Milliseconds(50));
  CHECK(w.sel.Status()[1].health == SiteSelector::Health::kDown);
  auto status = w.sel.Status();
  REQUIRE(status.size() == 2);
  CHECK(status[1].health == SiteSelector::Health::kDown);
  CHECK(w.RouteOf(1002) == 1);
  CHECK(w.RouteOf(1001) == 1);
  CHECK(w.RouteOf(1000) == 1);
  auto events = w.sel.TakeEvents();
  bool down = false;
  for (const auto& e : events) down |= e.what == "site_down" && e.site == "b";
  CHECK(down);

  // b returns: it is up only after three answers in a row; then new flows move back to it,
  // and flows begun on a while b was down stay on a.
  w.dead[2] = false;
  w.Run(absl::Milliseconds(1500));
  CHECK(w.sel.Status()[1].health == SiteSelector::Health::kDown);
  w.Run(absl::Seconds(3));
  CHECK(w.sel.Status()[1].health == SiteSelector::Health::kUp);
  CHECK(w.RouteOf(1003) == 2);
  CHECK(w.RouteOf(1002) == 1);
}

TEST_CASE("site selector: a new flow has its site checked at once, so a dead site is found within a second") {
  World w;
  w.Run(absl::Seconds(3));
  REQUIRE(w.RouteOf(2000) == 2);
  w.Run(absl::Milliseconds(500));  // mid-interval: the next regular probe is 500 ms away
  w.dead[2] = true;
  // New flows keep coming (as a user retries); b is down after three 200 ms timeouts.
  for (int i = 0; i < 10 && w.sel.Status()[1].health != SiteSelector::Health::kDown; ++i) {
    (void)w.RouteOf(static_cast<uint16_t>(2001 + i));
    w.Run(absl::Milliseconds(100));
  }
  CHECK(w.sel.Status()[1].health == SiteSelector::Health::kDown);
  CHECK(w.RouteOf(3000) == 1);
}

TEST_CASE("site selector: hysteresis keeps the preferred site unless another is clearly faster") {
  World w;
  w.delay = {{1, absl::Milliseconds(9)}, {2, absl::Milliseconds(10)}};
  w.Run(absl::Seconds(5));
  CHECK(w.sel.PreferredFor(kResource)->name == "a");
  // b becomes a little faster than a (8 ms against 9): not enough to move new flows.
  w.delay[2] = absl::Milliseconds(8);
  w.Run(absl::Seconds(20));
  CHECK(w.sel.PreferredFor(kResource)->name == "a");
  // a slows to 30 ms: b is clearly faster now.
  w.delay[1] = absl::Milliseconds(30);
  w.Run(absl::Seconds(20));
  CHECK(w.sel.PreferredFor(kResource)->name == "b");
}

TEST_CASE("site selector: only shared resources are routed, other packets and foreign replies pass") {
  World w;
  std::vector<uint8_t> elsewhere = Tcp(5);
  elsewhere[19] = 99;  // another destination
  CHECK_FALSE(w.sel.Route(elsewhere, w.now).has_value());
  CHECK_FALSE(w.sel.Route(std::vector<uint8_t>{0x60, 0, 0}, w.now).has_value());
  // An echo reply with another identifier (the user's own ping) is not consumed.
  auto probes = w.sel.Tick(w.now);
  REQUIRE(probes.size() == 2);
  auto reply = Answer(probes[0].packet);
  reply[24] ^= 0xff;
  CHECK_FALSE(w.sel.OnDelivered(reply, w.now));
  CHECK(w.sel.OnDelivered(Answer(probes[0].packet), w.now + absl::Milliseconds(5)));
}

TEST_CASE("site selector: reconfiguring keeps health, drops flows to sites that left, caps flows") {
  SiteSelector::Options o;
  o.max_flows = 4;
  SiteSelector sel(o);
  const SiteCandidate a = Site(1, "100.96.0.2", "a"), b = Site(2, "100.96.0.3", "b");
  absl::Duration now = absl::Seconds(1);
  sel.Configure(kSelf, {SharedResource{kResource, {a, b}}}, now);
  for (uint16_t port = 1; port <= 10; ++port) REQUIRE(sel.Route(Tcp(port), now).has_value());
  CHECK(sel.flow_count() == 4);
  sel.Configure(kSelf, {SharedResource{kResource, {b}}}, now);
  CHECK(sel.flow_count() == 0);  // all were on a
  CHECK((*sel.Route(Tcp(1), now))[0] == 2);
  sel.Configure(kSelf, {}, now);
  CHECK(sel.empty());
  CHECK_FALSE(sel.Route(Tcp(1), now).has_value());
}
