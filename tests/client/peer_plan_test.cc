// The client's live peer and route diff: PlanPeers/ApplyPeerPlan on a real wg::Device (no I/O,
// fake clock, an in-memory network to a second device for sessions) and PlanRoutes.
#include "client/peer_plan.h"

#include <catch2/catch.hpp>

#include <deque>
#include <string>
#include <vector>

#include "crypto/x25519.h"

using namespace p2proxy;
using client::ClientPeer;

namespace {

crypto::PublicKey Pub(uint8_t fill) {
  crypto::PublicKey k;
  k.fill(fill);
  return k;
}

base::IpPrefix P(const char* text) { return *base::IpPrefix::Parse(text); }
base::SocketAddress Ep(const char* text) { return *base::SocketAddress::Parse(text); }

ClientPeer Peer(const crypto::PublicKey& key, std::vector<base::IpPrefix> ips, const char* endpoint = nullptr,
                uint16_t keepalive = 0) {
  ClientPeer p;
  p.public_key = key;
  p.allowed_ips = std::move(ips);
  if (endpoint != nullptr) p.endpoint = Ep(endpoint);
  p.persistent_keepalive = keepalive;
  return p;
}

std::vector<std::string> Texts(const std::vector<base::IpPrefix>& prefixes) {
  std::vector<std::string> out;
  for (const auto& p : prefixes) out.push_back(p.ToString());
  return out;
}

// Node is a device on an in-memory network, with what it sent and delivered.
struct Wire {
  base::SocketAddress to, from;
  std::vector<uint8_t> bytes;
};
struct Node : wg::DeviceOutput {
  Node(base::Clock& clock, const char* addr) : address(Ep(addr)), device(clock, *this) {
    crypto::Key key;
    crypto::GeneratePrivateKey(&key);
    device.SetPrivateKey(key);
  }
  void SendDatagram(const base::SocketAddress& to, base::ByteSpan d) override {
    outbox.push_back(Wire{to, address, {d.begin(), d.end()}});
  }
  void DeliverPacket(wg::Peer&, base::ByteSpan) override {}
  crypto::PublicKey pub() const { return device.identity().public_key; }
  base::SocketAddress address;
  wg::Device device;
  std::deque<Wire> outbox;
};

// Pump moves datagrams between |a| and |b| until none is in flight.
void Pump(Node& a, Node& b) {
  for (int round = 0; round < 100 && (!a.outbox.empty() || !b.outbox.empty()); ++round) {
    for (Node* n : {&a, &b}) {
      while (!n->outbox.empty()) {
        Wire w = std::move(n->outbox.front());
        n->outbox.pop_front();
        Node& to = w.to == a.address ? a : b;
        base::Datagram d{w.bytes, w.from};
        to.device.ReceiveDatagrams(absl::MakeConstSpan(&d, 1));
      }
    }
  }
}

}  // namespace

TEST_CASE("PlanPeers: added, removed, updated and unchanged by public key") {
  const std::vector<ClientPeer> current = {
      Peer(Pub(1), {P("100.96.0.1/32")}, "203.0.113.7:51820", 25),  // the server: unchanged
      Peer(Pub(2), {P("100.96.0.10/32"), P("100.96.128.20/32")}, "198.51.100.1:40000"),
      Peer(Pub(3), {P("100.96.0.11/32")}),  // goes
      Peer(Pub(4), {P("100.96.0.12/32")}, "198.51.100.4:1"),
  };
  const std::vector<ClientPeer> next = {
      Peer(Pub(5), {P("100.96.0.13/32")}, "198.51.100.5:5"),                          // new
      Peer(Pub(2), {P("100.96.0.10/32"), P("100.96.128.21/32")}, "198.51.100.1:40000"),  // IPs
      Peer(Pub(1), {P("100.96.0.1/32")}, "203.0.113.7:51820", 25),
      Peer(Pub(4), {P("100.96.0.12/32")}, "198.51.100.4:2"),  // the configured endpoint moved
  };
  const client::PeerPlan plan = client::PlanPeers(current, next);
  CHECK(plan.remove == std::vector<crypto::PublicKey>{Pub(3)});
  CHECK(plan.add == std::vector<size_t>{0});
  REQUIRE(plan.update.size() == 2);
  CHECK(plan.update[0].index == 1);
  CHECK_FALSE(plan.update[0].set_endpoint);  // same configured endpoint: a roamed one is kept
  CHECK(plan.update[1].index == 3);
  CHECK(plan.update[1].set_endpoint);
  CHECK(plan.num_unchanged == 1);

  // Same lists: nothing to do. Keepalive alone is a change.
  const client::PeerPlan same = client::PlanPeers(next, next);
  CHECK(same.add.empty());
  CHECK(same.remove.empty());
  CHECK(same.update.empty());
  CHECK(same.num_unchanged == 4);
  std::vector<ClientPeer> keepalive = next;
  keepalive[2].persistent_keepalive = 10;
  const client::PeerPlan k = client::PlanPeers(next, keepalive);
  REQUIRE(k.update.size() == 1);
  CHECK(k.update[0].index == 2);
  CHECK_FALSE(k.update[0].set_endpoint);

  // From nothing: all added; to nothing: all removed.
  CHECK(client::PlanPeers({}, next).add == std::vector<size_t>{0, 1, 2, 3});
  CHECK(client::PlanPeers(current, {}).remove.size() == 4);
}

TEST_CASE("ApplyPeerPlan: updates in place, keeps a roamed endpoint and untouched peers") {
  base::FakeClock clock;
  Node client(clock, "192.0.2.1:51820");
  Node site(clock, "198.51.100.2:51820");
  const crypto::PublicKey server_key = Pub(9);

  std::vector<ClientPeer> current = {
      Peer(site.pub(), {P("100.96.0.10/32"), P("100.96.128.20/32")}, "198.51.100.2:51820"),
      Peer(server_key, {P("100.96.0.1/32")}, "203.0.113.7:51820", 25),
      Peer(Pub(7), {P("100.96.0.11/32")}, "198.51.100.7:7"),
  };
  REQUIRE(client::ApplyPeerPlan(client.device, client::PlanPeers({}, current), current).ok());
  wg::Peer* to_site = client.device.FindPeer(site.pub());
  wg::Peer* to_server = client.device.FindPeer(server_key);
  REQUIRE(to_site != nullptr);
  REQUIRE(to_server != nullptr);
  REQUIRE(client.device.FindPeer(Pub(7)) != nullptr);
  CHECK(to_site->endpoint()->ToString() == "198.51.100.2:51820");
  CHECK(client.device.allowed_ips().Lookup(*base::IpAddress::Parse("100.96.128.20")) == to_site);

  // A session with the site, so the test can see it survive the update.
  wg::PeerConfig back;
  back.public_key = client.pub();
  back.allowed_ips = {P("100.96.0.5/32")};
  REQUIRE(site.device.AddPeer(back).ok());
  client.device.SendKeepalive(to_site);
  Pump(client, site);
  REQUIRE(to_site->has_current_keypair());

  // Both peers roam (what an authenticated packet from a new address does).
  client.device.SetEndpoint(to_site, Ep("198.51.100.99:60000"));
  client.device.SetEndpoint(to_server, Ep("203.0.113.8:4444"));

  // The snapshot moves 100.96.128.20 to .21 for the site, drops peer 7, keeps the server.
  std::vector<ClientPeer> next = {
      Peer(server_key, {P("100.96.0.1/32")}, "203.0.113.7:51820", 25),
      Peer(site.pub(), {P("100.96.0.10/32"), P("100.96.128.21/32")}, "198.51.100.2:51820"),
  };
  const client::PeerPlan plan = client::PlanPeers(current, next);
  REQUIRE(client::ApplyPeerPlan(client.device, plan, next).ok());

  CHECK(client.device.FindPeer(Pub(7)) == nullptr);
  CHECK(client.device.allowed_ips().Lookup(*base::IpAddress::Parse("100.96.0.11")) == nullptr);
  // The site: the same peer object, its session kept, its new prefixes exactly, the endpoint it
  // roamed to kept (the configured one did not change).
  CHECK(client.device.FindPeer(site.pub()) == to_site);
  CHECK(to_site->has_current_keypair());
  CHECK(to_site->endpoint()->ToString() == "198.51.100.99:60000");
  CHECK(client.device.allowed_ips().Lookup(*base::IpAddress::Parse("100.96.128.21")) == to_site);
  CHECK(client.device.allowed_ips().Lookup(*base::IpAddress::Parse("100.96.128.20")) == nullptr);
  CHECK(client.device.allowed_ips().Lookup(*base::IpAddress::Parse("100.96.0.10")) == to_site);
  // The server: untouched.
  CHECK(client.device.FindPeer(server_key) == to_server);
  CHECK(to_server->endpoint()->ToString() == "203.0.113.8:4444");
  CHECK(to_server->persistent_keepalive() == 25);

  // Now the configured endpoint of the site changes: it is set, the session still kept.
  std::vector<ClientPeer> moved = next;
  moved[1].endpoint = Ep("198.51.100.3:51820");
  moved[1].persistent_keepalive = 15;
  REQUIRE(client::ApplyPeerPlan(client.device, client::PlanPeers(next, moved), moved).ok());
  CHECK(to_site->endpoint()->ToString() == "198.51.100.3:51820");
  CHECK(to_site->persistent_keepalive() == 15);
  CHECK(to_site->has_current_keypair());
  CHECK(client.device.peers().size() == 2);
}

TEST_CASE("ApplyPeerPlan: the device refuses its own key") {
  base::FakeClock clock;
  Node client(clock, "192.0.2.1:51820");
  const std::vector<ClientPeer> next = {Peer(client.pub(), {P("100.96.0.1/32")})};
  const absl::Status st = client::ApplyPeerPlan(client.device, client::PlanPeers({}, next), next);
  CHECK_FALSE(st.ok());
  CHECK(client.device.peers().empty());
}

TEST_CASE("PlanRoutes: routes for new prefixes, removal of prefixes no peer has") {
  const std::vector<ClientPeer> current = {
      Peer(Pub(1), {P("100.96.0.1/32")}),
      Peer(Pub(2), {P("100.96.0.10/32"), P("100.96.128.20/32"), P("100.96.128.22/32")}),
      Peer(Pub(3), {P("100.96.0.11/32"), P("100.96.128.22/32")}),
  };
  const std::vector<ClientPeer> next = {
      Peer(Pub(1), {P("100.96.0.1/32")}),
      // .22 moves from site 2 to site 3 only: it stays routed through the TUN.
      Peer(Pub(2), {P("100.96.0.10/32"), P("100.96.128.21/32")}),
      Peer(Pub(3), {P("100.96.0.11/32"), P("100.96.128.22/32"), P("fd00::/64"), P("0.0.0.0/0")}),
  };
  const client::RoutePlan plan = client::PlanRoutes(current, next);
  CHECK(Texts(plan.add) == std::vector<std::string>{"100.96.128.21/32", "fd00::/64"});
  CHECK(Texts(plan.remove) == std::vector<std::string>{"100.96.128.20/32"});
  CHECK(Texts(plan.skipped) == std::vector<std::string>{"0.0.0.0/0"});

  // Nothing changes: no route touched.
  const client::RoutePlan same = client::PlanRoutes(next, next);
  CHECK(same.add.empty());
  CHECK(same.remove.empty());

  // A removed peer takes only the prefixes no other peer has.
  const std::vector<ClientPeer> fewer = {next[0], next[2]};
  const client::RoutePlan gone = client::PlanRoutes(next, fewer);
  CHECK(gone.add.empty());
  CHECK(Texts(gone.remove) == std::vector<std::string>{"100.96.0.10/32", "100.96.128.21/32"});

  // From nothing: every prefix once, sorted, the default route skipped.
  const client::RoutePlan fresh = client::PlanRoutes({}, current);
  CHECK(Texts(fresh.add) == std::vector<std::string>{"100.96.0.1/32", "100.96.0.10/32", "100.96.0.11/32",
                                                     "100.96.128.20/32", "100.96.128.22/32"});
  CHECK(fresh.remove.empty());
}
