// Tests for the server's WireGuard interface: a node (a real WgTransport on loopback) pings
// 100.96.0.1 and is answered; the server learns the node's endpoint from its packets; a node
// removed from the deployment is no longer a peer. EchoReply refuses everything but an echo
// request to the server's own address.
#include "server/tunnel.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <optional>
#include <vector>

#include "crypto/x25519.h"
#include "net/loop.h"
#include "tunnel/wg_transport.h"

using namespace p2proxy;
using namespace p2proxy::server;

namespace {

uint16_t Sum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += (p[i] << 8) | p[i + 1];
  if (n % 2) s += p[n - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

// Echo builds an ICMP echo request from |src| to |dst| with |payload|.
std::vector<uint8_t> Echo(const char* src, const char* dst, const std::string& payload, uint8_t type = 8) {
  std::vector<uint8_t> p(28 + payload.size(), 0);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>(p.size() >> 8);
  p[3] = static_cast<uint8_t>(p.size());
  p[8] = 64;
  p[9] = 1;
  std::memcpy(&p[12], base::IpAddress::Parse(src)->bytes.data(), 4);
  std::memcpy(&p[16], base::IpAddress::Parse(dst)->bytes.data(), 4);
  uint16_t c = Sum(p.data(), 20);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p[20] = type;
  p[24] = 0x12;  // identifier
  p[27] = 7;     // sequence
  std::memcpy(&p[28], payload.data(), payload.size());
  c = Sum(p.data() + 20, p.size() - 20);
  p[22] = c >> 8;
  p[23] = c & 0xff;
  return p;
}

const base::IpAddress kSelf = *base::IpAddress::Parse("100.96.0.1");

}  // namespace

TEST_CASE("EchoReply answers an echo request to the server's address, with valid checksums") {
  auto p = Echo("100.96.0.2", "100.96.0.1", "hello");
  REQUIRE(EchoReply(kSelf, absl::MakeSpan(p)));
  CHECK(p[20] == 0);  // echo reply
  CHECK(p[12] == 100);
  CHECK(p[15] == 1);   // from 100.96.0.1
  CHECK(p[19] == 2);   // to 100.96.0.2
  CHECK(Sum(p.data(), 20) == 0);
  CHECK(Sum(p.data() + 20, p.size() - 20) == 0);
  CHECK(std::string(p.begin() + 28, p.end()) == "hello");
}

TEST_CASE("EchoReply refuses anything else and leaves it as it was") {
  std::vector<std::vector<uint8_t>> bad;
  bad.push_back(Echo("100.96.0.2", "100.96.0.9", "x"));      // not to the server
  bad.push_back(Echo("100.96.0.2", "100.96.0.1", "x", 0));   // a reply, not a request
  auto corrupt = Echo("100.96.0.2", "100.96.0.1", "x");
  corrupt[30 - 2] ^= 1;                                       // ICMP checksum no longer holds
  bad.push_back(corrupt);
  auto frag = Echo("100.96.0.2", "100.96.0.1", "x");
  frag[6] = 0x20;                                             // more fragments
  bad.push_back(frag);
  auto longer = Echo("100.96.0.2", "100.96.0.1", "x");
  longer[3] += 10;                                            // total length beyond the packet
  bad.push_back(longer);
  auto truncated = Echo("100.96.0.2", "100.96.0.1", "x");
  truncated.resize(24);
  bad.push_back(truncated);
  bad.push_back({0x60, 0, 0, 0});                             // IPv6 header start
  for (auto& p : bad) {
    const auto before = p;
    CHECK_FALSE(EchoReply(kSelf, absl::MakeSpan(p)));
    CHECK(p == before);
  }
}

TEST_CASE("ServerTunnel: a node pings 100.96.0.1, the server learns its endpoint, removal ends it") {
  net::Loop loop;
  crypto::Key server_key, node_key;
  crypto::GeneratePrivateKey(&server_key);
  crypto::GeneratePrivateKey(&node_key);
  const crypto::PublicKey server_pub = crypto::PublicFromPrivate(server_key);
  const crypto::PublicKey node_pub = crypto::PublicFromPrivate(node_key);

  std::vector<std::pair<std::string, base::SocketAddress>> learned;
  auto tunnel = ServerTunnel::Start(loop, base::RealClock::Get(), *base::SocketAddress::Parse("127.0.0.1:0"),
                                    server_key, kSelf,
                                    [&](const std::string& id, const base::SocketAddress& ep) { learned.emplace_back(id, ep); });
  REQUIRE(tunnel.ok());
  ServerTunnel& t = **tunnel;

  Deployment d;
  NodeRecord site;
  site.id = "s-1";
  site.kind = wire::NODE_KIND_SITE;
  site.wireguard_public_key.assign(reinterpret_cast<const char*>(node_pub.data()), node_pub.size());
  site.address = "100.96.0.2";
  d.sites.push_back(site);
  NodeRecord revoked = site;
  revoked.id = "s-2";
  revoked.wireguard_public_key.assign(32, 'r');
  revoked.revoked = absl::Now();
  d.sites.push_back(revoked);
  t.Sync(d);
  REQUIRE(t.peer_count() == 1);  // the revoked node is no peer

  std::vector<std::vector<uint8_t>> got;
  tunnel::WgTransport::Options options;
  options.bind_ip = "127.0.0.1";
  auto node = tunnel::WgTransport::Create(loop, base::RealClock::Get(), std::move(options),
                                          [&](wg::Peer&, base::ByteSpan p) { got.emplace_back(p.begin(), p.end()); });
  REQUIRE(node.ok());
  (*node)->device().SetPrivateKey(node_key);
  wg::PeerConfig to_server;
  to_server.public_key = server_pub;
  to_server.endpoint = *base::SocketAddress::Parse(absl::StrCat("127.0.0.1:", t.port()));
  to_server.allowed_ips = {*base::IpPrefix::Parse("100.96.0.1/32")};
  REQUIRE((*node)->device().AddPeer(to_server).ok());

  auto ping = Echo("100.96.0.2", "100.96.0.1", "are you there");
  base::ByteSpan span(ping.data(), ping.size());
  (*node)->SendPackets(absl::MakeConstSpan(&span, 1));
  REQUIRE(loop.RunUntil([&] { return !got.empty(); }, absl::Seconds(10)));
  REQUIRE(got[0].size() == ping.size());
  CHECK(got[0][20] == 0);
  CHECK(std::string(got[0].begin() + 28, got[0].end()) == "are you there");
  CHECK(t.counters().echo_replies == 1);

  REQUIRE(learned.size() == 1);
  CHECK(learned[0].first == "s-1");
  CHECK(learned[0].second.port() == (*node)->listen_port());
  REQUIRE(t.EndpointOf("s-1") != nullptr);
  CHECK(*t.EndpointOf("s-1") == learned[0].second);

  // A packet to another overlay address is not forwarded.
  auto elsewhere = Echo("100.96.0.2", "100.96.0.7", "x");
  // (the node routes only 100.96.0.1 to the server; send it inside the tunnel regardless)
  base::ByteSpan e(elsewhere.data(), elsewhere.size());
  (*node)->device().SendPacketsTo((*node)->device().FindPeer(server_pub), absl::MakeConstSpan(&e, 1));
  REQUIRE(loop.RunUntil([&] { return t.counters().dropped == 1; }, absl::Seconds(10)));
  CHECK(got.size() == 1);

  // The node is removed: no peer, no endpoint, no answer.
  Deployment empty;
  t.Sync(empty);
  CHECK(t.peer_count() == 0);
  CHECK(t.EndpointOf("s-1") == nullptr);
}
