// Two WireGuard devices in memory, joined by a fake network and driven by a fake clock: the
// handshake, data both ways, rekeying, timers, cookies, replay and bad input. No privileges,
// no sockets, no sleeping.
#include "wg/device.h"

#include <catch2/catch.hpp>

#include <deque>
#include <memory>
#include <string>

#include "crypto/x25519.h"

using namespace p2proxy;
using namespace p2proxy::wg;

namespace {

struct Wire {
  base::SocketAddress to, from;
  std::vector<uint8_t> bytes;
};

// Node is a device with its own address on the fake network, its outbox and what it delivered.
struct Node : DeviceOutput {
  Node(base::Clock& clock, const std::string& addr)
      : address(*base::SocketAddress::Parse(addr)), device(clock, *this) {
    crypto::GeneratePrivateKey(&key);
    device.SetPrivateKey(key);
  }
  void SendDatagram(const base::SocketAddress& to, base::ByteSpan d) override {
    outbox.push_back(Wire{to, address, {d.begin(), d.end()}});
  }
  void DeliverPacket(Peer&, base::ByteSpan p) override { delivered.emplace_back(p.begin(), p.end()); }
  void EndpointChanged(Peer& peer) override { endpoint_changes.push_back(*peer.endpoint()); }

  crypto::PublicKey pub() const { return device.identity().public_key; }

  base::SocketAddress address;
  crypto::Key key;
  Device device;
  std::deque<Wire> outbox;
  std::vector<std::vector<uint8_t>> delivered;
  std::vector<base::SocketAddress> endpoint_changes;
};

// Net moves datagrams between nodes by address until nothing is in flight.
struct Net {
  base::FakeClock clock;
  Node a{clock, "192.0.2.1:51820"};
  Node b{clock, "198.51.100.2:51820"};
  bool link_up = true;
  std::vector<Wire> captured;  // everything that crossed, for replay tests
  int dropped = 0;

  Peer* pa = nullptr;  // a's view of b
  Peer* pb = nullptr;  // b's view of a

  Net(bool psk = false, uint16_t keepalive = 0) {
    PeerConfig to_b;
    to_b.public_key = b.pub();
    to_b.endpoint = b.address;
    to_b.allowed_ips = {*base::IpPrefix::Parse("10.0.0.2/32")};
    to_b.persistent_keepalive = keepalive;
    PeerConfig to_a;
    to_a.public_key = a.pub();
    to_a.allowed_ips = {*base::IpPrefix::Parse("10.0.0.1/32")};
    if (psk) {
      crypto::Key k;
      crypto::GeneratePrivateKey(&k);
      to_b.preshared_key = k;
      to_a.preshared_key = k;
    }
    pb = *b.device.AddPeer(to_a);  // b learns a's endpoint from a's first message
    pa = *a.device.AddPeer(to_b);
  }

  Node& NodeAt(const base::SocketAddress& addr) { return addr == a.address ? a : b; }

  // Pump delivers in-flight datagrams (each node's outbox in turn) until all are empty.
  void Pump(int max_rounds = 100) {
    for (int i = 0; i < max_rounds && (!a.outbox.empty() || !b.outbox.empty()); ++i) {
      for (Node* n : {&a, &b}) {
        while (!n->outbox.empty()) {
          Wire w = std::move(n->outbox.front());
          n->outbox.pop_front();
          if (!link_up) {
            ++dropped;
            continue;
          }
          captured.push_back(w);
          Datagram d{w.bytes, w.from};
          NodeAt(w.to).device.ReceiveDatagrams(absl::MakeConstSpan(&d, 1));
        }
      }
    }
  }

  // Advance moves time forward in steps, running both devices' timers as they come due.
  void Advance(absl::Duration d, absl::Duration step = absl::Milliseconds(100)) {
    const absl::Duration end = clock.Monotonic() + d;
    while (clock.Monotonic() < end) {
      clock.Advance(std::min(step, end - clock.Monotonic()));
      a.device.RunTimers();
      b.device.RunTimers();
      Pump();
    }
  }
};

// IPv4 packet from src to dst (last octet of 10.0.0.x) with a payload.
std::vector<uint8_t> Packet(uint8_t src, uint8_t dst, const std::string& payload) {
  std::vector<uint8_t> p(20 + payload.size(), 0);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>(p.size() >> 8);
  p[3] = static_cast<uint8_t>(p.size());
  p[8] = 64;
  p[9] = 17;
  p[12] = 10, p[15] = src;
  p[16] = 10, p[19] = dst;
  std::copy(payload.begin(), payload.end(), p.begin() + 20);
  return p;
}

void SendFrom(Node& n, const std::vector<uint8_t>& pkt) {
  base::ByteSpan s = pkt;
  n.device.SendPackets(absl::MakeConstSpan(&s, 1));
}

int InitiationsIn(const std::deque<Wire>& box) {
  int n = 0;
  for (auto& w : box) n += Classify(w.bytes) == MessageType::kInitiation;
  return n;
}

}  // namespace

TEST_CASE("handshake, then data both ways, padded and intact") {
  Net net;
  auto hello = Packet(1, 2, "hello from a");
  SendFrom(net.a, hello);
  REQUIRE(net.a.outbox.size() == 1);  // the packet waits; an initiation goes out
  REQUIRE(net.pa->staged_packets() == 1);
  net.Pump();
  REQUIRE(net.b.delivered.size() == 1);
  REQUIRE(net.b.delivered[0] == hello);  // padding stripped by the IP length
  REQUIRE(net.pa->has_current_keypair());
  REQUIRE(net.pb->has_current_keypair());  // confirmed by a's first data message
  REQUIRE(net.pb->endpoint() != nullptr);
  REQUIRE(*net.pb->endpoint() == net.a.address);

  auto reply = Packet(2, 1, "and hello back, a bit longer to cross a padding boundary");
  SendFrom(net.b, reply);
  net.Pump();
  REQUIRE(net.a.delivered.size() == 1);
  REQUIRE(net.a.delivered[0] == reply);
  REQUIRE(net.a.device.counters().handshakes_completed == 1);
  REQUIRE(net.b.device.counters().handshakes_completed == 1);
  REQUIRE(net.pa->stats().tx_bytes > 0);
  REQUIRE(net.pb->stats().rx_bytes == net.pa->stats().tx_bytes);
  // Every transport message is padded to a multiple of 16 (32 bytes of framing on top).
  for (const auto& w : net.captured) {
    if (Classify(w.bytes) == MessageType::kTransport) REQUIRE((w.bytes.size() - 32) % 16 == 0);
  }
}

TEST_CASE("a preshared key on both sides works, a mismatch fails the handshake") {
  Net with_psk(/*psk=*/true);
  SendFrom(with_psk.a, Packet(1, 2, "x"));
  with_psk.Pump();
  REQUIRE(with_psk.b.delivered.size() == 1);

  Net mismatch(/*psk=*/true);
  crypto::Key other;
  crypto::GeneratePrivateKey(&other);
  mismatch.b.device.SetPresharedKey(mismatch.pb, other);
  SendFrom(mismatch.a, Packet(1, 2, "x"));
  mismatch.Pump();
  REQUIRE(mismatch.b.delivered.empty());
  REQUIRE(mismatch.a.device.counters().drop(Drop::kHandshakeFailed) == 1);  // response does not open
}

TEST_CASE("REKEY_AFTER_TIME: the initiator starts a new handshake after 120 s and traffic flows on") {
  Net net;
  SendFrom(net.a, Packet(1, 2, "first"));
  net.Pump();
  net.Advance(absl::Seconds(119));
  SendFrom(net.a, Packet(1, 2, "before"));
  REQUIRE(InitiationsIn(net.a.outbox) == 0);
  net.Pump();
  net.Advance(absl::Seconds(2));
  SendFrom(net.a, Packet(1, 2, "after"));
  REQUIRE(InitiationsIn(net.a.outbox) == 1);  // sent with the old key, then a rekey
  net.Pump();
  REQUIRE(net.a.device.counters().handshakes_completed == 2);
  SendFrom(net.a, Packet(1, 2, "new keys"));
  net.Pump();
  REQUIRE(net.b.delivered.back() == Packet(1, 2, "new keys"));
}

TEST_CASE("REJECT_AFTER_TIME: a keypair older than 180 s is never used") {
  Net net;
  SendFrom(net.a, Packet(1, 2, "first"));
  net.Pump();
  const size_t delivered = net.b.delivered.size();
  net.link_up = false;  // no rekey can complete
  net.Advance(absl::Seconds(181), absl::Seconds(1));
  net.a.outbox.clear();
  SendFrom(net.a, Packet(1, 2, "late"));
  // Nothing is encrypted with the expired key: the packet waits for a handshake.
  for (const auto& w : net.a.outbox) REQUIRE(Classify(w.bytes) != MessageType::kTransport);
  REQUIRE(net.pa->staged_packets() == 1);
  net.link_up = true;
  net.Advance(absl::Seconds(6));
  REQUIRE(net.b.delivered.size() == delivered + 1);
}

TEST_CASE("REKEY_TIMEOUT: an unanswered initiation is retried after 5 s plus at most 333 ms jitter") {
  Net net;
  net.link_up = false;
  SendFrom(net.a, Packet(1, 2, "x"));
  REQUIRE(net.a.device.counters().initiations_sent == 1);
  net.Advance(absl::Milliseconds(4999), absl::Milliseconds(1));
  REQUIRE(net.a.device.counters().initiations_sent == 1);
  net.Advance(absl::Milliseconds(335), absl::Milliseconds(1));
  REQUIRE(net.a.device.counters().initiations_sent == 2);
  REQUIRE(net.pa->handshake_attempts() == 1);
}

TEST_CASE("REKEY_ATTEMPT_TIME: after 90 s of retries the initiator gives up and drops staged packets") {
  Net net;
  net.link_up = false;
  SendFrom(net.a, Packet(1, 2, "x"));
  net.Advance(absl::Seconds(200), absl::Milliseconds(50));
  // One first try plus 18 retries (90 s / 5 s), then nothing more.
  REQUIRE(net.a.device.counters().initiations_sent == 19);
  REQUIRE(net.pa->staged_packets() == 0);
  // New traffic starts over.
  net.link_up = true;
  SendFrom(net.a, Packet(1, 2, "y"));
  net.Pump();
  REQUIRE(net.b.delivered.size() == 1);
}

TEST_CASE("keepalive: a peer that received data and has nothing to send answers after 10 s") {
  Net net;
  SendFrom(net.a, Packet(1, 2, "x"));
  net.Pump();
  const uint64_t before = net.b.device.counters().keepalives_sent;
  net.Advance(absl::Milliseconds(9900));
  REQUIRE(net.b.device.counters().keepalives_sent == before);
  net.Advance(absl::Milliseconds(200));
  REQUIRE(net.b.device.counters().keepalives_sent == before + 1);
  REQUIRE(net.a.device.counters().keepalives_received >= 1);
  // a's new_handshake timer (data sent, nothing back for 15 s) was cancelled by the keepalive.
  net.Advance(absl::Seconds(20));
  REQUIRE(net.a.device.counters().initiations_sent == 1);
}

TEST_CASE("persistent keepalive: sent every N seconds of silence") {
  Net net(/*psk=*/false, /*keepalive=*/25);
  net.Pump();  // enabling it sent one keepalive (and so a handshake)
  REQUIRE(net.pb->has_current_keypair());
  const uint64_t k0 = net.a.device.counters().keepalives_sent;
  net.Advance(absl::Seconds(75), absl::Milliseconds(500));
  const uint64_t sent = net.a.device.counters().keepalives_sent - k0;
  REQUIRE(sent >= 3);
  REQUIRE(sent <= 4);
}

TEST_CASE("under load the responder demands a cookie, the initiator retries with mac2 and succeeds") {
  Net net;
  net.b.device.ForceUnderLoad(true);
  SendFrom(net.a, Packet(1, 2, "x"));
  net.Pump();
  REQUIRE(net.b.device.counters().cookie_replies_sent == 1);
  REQUIRE(net.b.device.counters().drop(Drop::kBadMac2) == 1);
  REQUIRE(net.b.device.counters().responses_sent == 0);
  REQUIRE(net.b.delivered.empty());
  // The retry carries mac2 made from the cookie and is accepted.
  net.Advance(absl::Milliseconds(5400));
  REQUIRE(net.b.device.counters().responses_sent == 1);
  REQUIRE(net.b.delivered.size() == 1);
}

TEST_CASE("a forged cookie reply is refused") {
  Net net;
  net.link_up = false;
  SendFrom(net.a, Packet(1, 2, "x"));
  const Wire init = net.a.outbox.front();
  std::vector<uint8_t> reply(kCookieReplySize, 0x55);
  reply[0] = 3, reply[1] = reply[2] = reply[3] = 0;
  std::copy(init.bytes.begin() + 4, init.bytes.begin() + 8, reply.begin() + 4);  // our index
  Datagram d{reply, net.b.address};
  net.a.device.ReceiveDatagrams(absl::MakeConstSpan(&d, 1));
  REQUIRE(net.a.device.counters().drop(Drop::kBadCookieReply) == 1);
}

TEST_CASE("replayed transport messages and initiations are dropped and counted") {
  Net net;
  SendFrom(net.a, Packet(1, 2, "once"));
  net.Pump();
  REQUIRE(net.b.delivered.size() == 1);
  for (const auto& w : net.captured) {
    Datagram d{w.bytes, w.from};
    net.NodeAt(w.to).device.ReceiveDatagrams(absl::MakeConstSpan(&d, 1));
  }
  REQUIRE(net.b.delivered.size() == 1);
  REQUIRE(net.b.device.counters().drop(Drop::kReplayedInitiation) == 1);
  REQUIRE(net.b.device.counters().drop(Drop::kReplay) >= 1);
}

TEST_CASE("roaming: the responder follows the initiator to a new address") {
  Net net;
  SendFrom(net.a, Packet(1, 2, "x"));
  net.Pump();
  const auto moved = *base::SocketAddress::Parse("192.0.2.1:40000");
  net.a.address = moved;
  SendFrom(net.a, Packet(1, 2, "from elsewhere"));
  net.Pump();
  REQUIRE(*net.pb->endpoint() == moved);
  SendFrom(net.b, Packet(2, 1, "found you"));
  REQUIRE(net.b.outbox.back().to == moved);
  // The output heard of each new address once (the first handshake, then the move), not of
  // every packet.
  REQUIRE(net.b.endpoint_changes.size() == 2);
  CHECK(net.b.endpoint_changes[0] == *base::SocketAddress::Parse("192.0.2.1:51820"));
  CHECK(net.b.endpoint_changes[1] == moved);
}

TEST_CASE("a peer may only send from its allowed IPs, unknown destinations have no route") {
  Net net;
  SendFrom(net.a, Packet(1, 2, "x"));
  net.Pump();
  // b's allowed IPs for a are 10.0.0.1/32; a sends with source 10.0.0.9.
  auto spoofed = Packet(9, 2, "spoof");
  base::ByteSpan s = spoofed;
  net.a.device.SendPacketsTo(net.pa, absl::MakeConstSpan(&s, 1));
  net.Pump();
  REQUIRE(net.b.device.counters().drop(Drop::kSourceNotAllowed) == 1);
  REQUIRE(net.b.delivered.size() == 1);
  SendFrom(net.a, Packet(1, 77, "nowhere"));
  REQUIRE(net.a.device.counters().drop(Drop::kNoRoute) == 1);
}

TEST_CASE("shared sources: a peer may send from a prefix routed to another peer once it is shared") {
  Net net;
  SendFrom(net.a, Packet(1, 2, "x"));
  net.Pump();
  // A third peer of b owns 10.0.0.9/32 in b's routing table (the resource's first site).
  crypto::Key other;
  crypto::GeneratePrivateKey(&other);
  PeerConfig third;
  third.public_key = crypto::PublicFromPrivate(other);
  third.allowed_ips = {*base::IpPrefix::Parse("10.0.0.9/32")};
  REQUIRE(net.b.device.AddPeer(third).ok());
  auto from_shared = Packet(9, 2, "from the resource");
  base::ByteSpan s = from_shared;
  net.a.device.SendPacketsTo(net.pa, absl::MakeConstSpan(&s, 1));
  net.Pump();
  REQUIRE(net.b.device.counters().drop(Drop::kSourceNotAllowed) == 1);
  REQUIRE(net.b.delivered.size() == 1);
  net.b.device.SetSharedSources(net.pb, {*base::IpPrefix::Parse("10.0.0.9/32")});
  net.a.device.SendPacketsTo(net.pa, absl::MakeConstSpan(&s, 1));
  net.Pump();
  REQUIRE(net.b.delivered.size() == 2);
  // Sharing one address does not open others.
  auto spoofed = Packet(8, 2, "spoof");
  base::ByteSpan sp = spoofed;
  net.a.device.SendPacketsTo(net.pa, absl::MakeConstSpan(&sp, 1));
  net.Pump();
  REQUIRE(net.b.device.counters().drop(Drop::kSourceNotAllowed) == 2);
  REQUIRE(net.b.delivered.size() == 2);
}

TEST_CASE("garbage, truncated and mangled datagrams are dropped and counted, never delivered") {
  Net net;
  SendFrom(net.a, Packet(1, 2, "x"));
  net.Pump();
  auto transport = net.captured.back().bytes;
  REQUIRE(Classify(transport) == MessageType::kTransport);
  std::vector<std::vector<uint8_t>> bad = {
      {}, {1}, {4, 0, 0, 0}, std::vector<uint8_t>(kInitiationSize, 0),
      std::vector<uint8_t>(kInitiationSize + 1, 1), std::vector<uint8_t>(2000, 0xff),
  };
  std::vector<uint8_t> junk_initiation(kInitiationSize, 0x07);
  junk_initiation[0] = 1, junk_initiation[1] = junk_initiation[2] = junk_initiation[3] = 0;
  bad.push_back(junk_initiation);
  // A fresh message, mangled: it fails to decrypt, and must not burn its counter.
  SendFrom(net.a, Packet(1, 2, "fresh"));
  auto fresh = net.a.outbox.back().bytes;
  net.a.outbox.clear();
  auto flipped = fresh;
  flipped.back() ^= 1;
  bad.push_back(flipped);
  auto truncated = transport;
  truncated.resize(kTransportMinSize - 1);
  bad.push_back(truncated);
  auto wrong_index = transport;
  wrong_index[4] ^= 0xff;
  bad.push_back(wrong_index);
  for (const auto& g : bad) {
    Datagram d{g, net.a.address};
    net.b.device.ReceiveDatagrams(absl::MakeConstSpan(&d, 1));
  }
  const auto& c = net.b.device.counters();
  REQUIRE(c.drop(Drop::kInvalidMessage) >= 4);
  REQUIRE(c.drop(Drop::kBadMac1) == 1);
  REQUIRE(c.drop(Drop::kDecryptFailed) == 1);
  REQUIRE(c.drop(Drop::kUnknownIndex) == 1);
  REQUIRE(net.b.delivered.size() == 1);
  Datagram good{fresh, net.a.address};
  net.b.device.ReceiveDatagrams(absl::MakeConstSpan(&good, 1));
  REQUIRE(net.b.delivered.size() == 2);
}

// ---- per-source rate limit under load ----------------------------------------------------

namespace {

// CookiedInitiation returns an initiation that |to| will find carrying a valid mac1 and, for
// source |from|, a valid mac2: it first asks |to| (under load) for a cookie as a real sender
// would, then stamps the message with mac2 made from it. Its body is junk, so each copy that
// gets past the limiter costs |to| a Diffie-Hellman and is dropped as handshake_failed.
std::vector<uint8_t> CookiedInitiation(Node& to, const base::SocketAddress& from, absl::Duration now) {
  std::vector<uint8_t> msg(kInitiationSize, 0x42);
  msg[0] = 1, msg[1] = msg[2] = msg[3] = 0;
  CookieGenerator gen;
  gen.Init(to.pub());
  gen.AddMacs(absl::MakeSpan(msg), kInitiationMac1Offset, now);
  Datagram d{msg, from};
  to.device.ReceiveDatagrams(absl::MakeConstSpan(&d, 1));
  REQUIRE(!to.outbox.empty());
  REQUIRE(to.outbox.back().to == from);
  CookieReply reply;
  REQUIRE(ParseCookieReply(to.outbox.back().bytes, &reply));
  to.outbox.pop_back();
  REQUIRE(gen.ConsumeReply(reply, now));
  gen.AddMacs(absl::MakeSpan(msg), kInitiationMac1Offset, now);
  return msg;
}

// Flood hands |to| |n| copies of |msg| from |from| in one batch.
void Flood(Node& to, const std::vector<uint8_t>& msg, const base::SocketAddress& from, int n) {
  std::vector<Datagram> batch(n, Datagram{msg, from});
  to.device.ReceiveDatagrams(batch);
}

}  // namespace

TEST_CASE("under load, a source over its handshake rate is dropped while another source's handshake completes") {
  Net net;
  net.b.device.ForceUnderLoad(true);
  const auto flooder = *base::SocketAddress::Parse("203.0.113.7:4000");
  const auto junk = CookiedInitiation(net.b, flooder, net.clock.Monotonic());
  // a starts a handshake and is handed a cookie too.
  SendFrom(net.a, Packet(1, 2, "x"));
  net.Pump();
  REQUIRE(net.b.device.counters().cookie_replies_sent == 2);
  // The flood and a's retry (with mac2) arrive in the same instant.
  net.clock.Advance(absl::Seconds(6));
  Flood(net.b, junk, flooder, 50);
  const auto& c = net.b.device.counters();
  REQUIRE(c.drop(Drop::kHandshakeFailed) == kHandshakeBurstPerSource);  // reached Diffie-Hellman
  REQUIRE(c.drop(Drop::kRateLimited) == 50 - kHandshakeBurstPerSource);
  net.a.device.RunTimers();  // REKEY_TIMEOUT passed: a retries
  net.Pump();
  REQUIRE(net.b.delivered.size() == 1);
  REQUIRE(c.handshakes_completed == 1);
  REQUIRE(c.drop(Drop::kRateLimited) == 50 - kHandshakeBurstPerSource);  // a was never limited
  Flood(net.b, junk, flooder, 1);
  REQUIRE(c.drop(Drop::kRateLimited) == 50 - kHandshakeBurstPerSource + 1);  // the flooder still is
}

TEST_CASE("under load, a source's handshake tokens refill with time, up to the burst") {
  Net net;
  net.b.device.ForceUnderLoad(true);
  const auto flooder = *base::SocketAddress::Parse("203.0.113.7:4000");
  const auto junk = CookiedInitiation(net.b, flooder, net.clock.Monotonic());
  const auto& c = net.b.device.counters();
  Flood(net.b, junk, flooder, 20);
  REQUIRE(c.drop(Drop::kHandshakeFailed) == 5);
  REQUIRE(c.drop(Drop::kRateLimited) == 15);
  net.clock.Advance(absl::Milliseconds(49));
  Flood(net.b, junk, flooder, 1);
  REQUIRE(c.drop(Drop::kHandshakeFailed) == 5);
  net.clock.Advance(absl::Milliseconds(1));  // 1/20 s: one token
  Flood(net.b, junk, flooder, 3);
  REQUIRE(c.drop(Drop::kHandshakeFailed) == 6);
  REQUIRE(c.drop(Drop::kRateLimited) == 15 + 1 + 2);
  net.clock.Advance(absl::Seconds(10));  // refills to the burst, not to 200
  Flood(net.b, junk, flooder, 20);
  REQUIRE(c.drop(Drop::kHandshakeFailed) == 6 + 5);
  // Not under load, the per-source limit does not apply (mac1 alone lets messages in).
  net.b.device.ForceUnderLoad(false);
  Flood(net.b, junk, flooder, 20);
  REQUIRE(c.drop(Drop::kHandshakeFailed) == 6 + 5 + 20);
  REQUIRE(c.drop(Drop::kRateLimited) == 15 + 1 + 2 + 15);
}

TEST_CASE("under load, the per-source table stays bounded under many sources and drains in time") {
  Net net;
  REQUIRE(!net.b.device.SetHandshakeRateLimit(RateLimitOptions{20, 5, 0}).ok());
  REQUIRE(net.b.device.SetHandshakeRateLimit(RateLimitOptions{20, 5, 16}).ok());
  net.b.device.ForceUnderLoad(true);
  const auto& c = net.b.device.counters();
  // a asks for a handshake and gets a cookie; its retry will come in the middle of the flood.
  SendFrom(net.a, Packet(1, 2, "x"));
  net.Pump();
  net.clock.Advance(absl::Seconds(6));
  for (int i = 0; i < 64; ++i) {
    const auto from = *base::SocketAddress::Parse("203.0.113." + std::to_string(i + 1) + ":4000");
    Flood(net.b, CookiedInitiation(net.b, from, net.clock.Monotonic()), from, 1);
    REQUIRE(net.b.device.handshake_rate_limiter().size() <= 16);
  }
  REQUIRE(net.b.device.handshake_rate_limiter().size() == 16);
  REQUIRE(c.drop(Drop::kHandshakeFailed) == 16);
  REQUIRE(c.drop(Drop::kRateLimitTableFull) == 64 - 16);
  // While the table is full a new source is refused, even a real peer (the trade-off that keeps
  // the Diffie-Hellman work bounded; see ratelimiter.h).
  net.a.device.RunTimers();
  net.Pump();
  REQUIRE(c.drop(Drop::kRateLimitTableFull) == 64 - 16 + 1);
  REQUIRE(net.b.delivered.empty());
  // The flood stopped more than kRateLimiterEntryIdle ago: the table drains, a gets through.
  net.Advance(absl::Seconds(6));
  REQUIRE(net.b.delivered.size() == 1);
  REQUIRE(net.b.device.handshake_rate_limiter().size() == 1);
}
