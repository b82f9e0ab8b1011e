// wg_device_fuzzer: arbitrary datagrams into a WireGuard device that is mid-session with a real
// peer. Each run: two devices with fixed keys and reproducible indexes complete a handshake in
// memory once, then each input, read as a sequence of [u16 length][datagram] records (big-endian
// length), is fed to the responder. Transport records may name the live session's index, so
// decryption, replay and inner-packet checks are reached. Nothing may crash, nothing that did
// not authenticate may be delivered, and the per-source rate limiter's table stays bounded.
//
// A one-byte record is not sent (as a datagram it would only be one more invalid message): it
// sets how the records after it are sent. Bit 0 puts the responder under load; bit 1 stamps
// handshake records with a valid mac1 and, from a cookie the fixture fetched for their source,
// a valid mac2, so they reach the per-source rate limiter and the Diffie-Hellman behind it;
// bits 2-3 pick one of four sources (two IPv4 addresses, the first again as IPv4-mapped IPv6,
// and an IPv6 address).
#include <array>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <vector>

#include "base/clock.h"
#include "base/encoding.h"
#include "crypto/keys.h"
#include "wg/cookie.h"
#include "wg/device.h"

using namespace p2proxy;
using namespace p2proxy::wg;

namespace {

struct Sink : DeviceOutput {
  std::vector<std::vector<uint8_t>> sent;
  size_t delivered = 0;
  void SendDatagram(const base::SocketAddress&, base::ByteSpan d) override { sent.emplace_back(d.begin(), d.end()); }
  void DeliverPacket(Peer&, base::ByteSpan) override { ++delivered; }
};

// Fixed keys (any 32 bytes are a valid X25519 private key after clamping).
crypto::Key FixedKey(uint8_t seed) {
  crypto::Key k;
  for (int i = 0; i < 32; ++i) k.data()[i] = static_cast<uint8_t>(seed + i * 13);
  k.data()[0] &= 248;
  k.data()[31] = static_cast<uint8_t>((k.data()[31] & 127) | 64);
  return k;
}

// Fixture is built once (a handshake costs milliseconds under the sanitizers) and reused; each
// input then runs against the live session.
struct Fixture {
  base::FakeClock clock;
  Sink out_a, out_b;
  Device a{clock, out_a}, b{clock, out_b};
  uint32_t next_a = 0x10, next_b = 0x20;  // responder's indexes: 0x20, 0x21, ...
  const base::SocketAddress addr_a = *base::SocketAddress::Parse("192.0.2.1:1");
  const base::SocketAddress addr_b = *base::SocketAddress::Parse("192.0.2.2:2");
  const std::array<base::SocketAddress, 4> sources = {
      addr_a, *base::SocketAddress::Parse("192.0.2.3:3"),
      *base::SocketAddress::Parse("[::ffff:192.0.2.1]:4"),
      *base::SocketAddress::Parse("[2001:db8::1]:5")};
  std::array<CookieGenerator, 4> cookies;

  Fixture() {
    a.SetIndexSourceForTesting([this] { return next_a++; });
    b.SetIndexSourceForTesting([this] { return next_b++; });
    a.SetPrivateKey(FixedKey(1));
    b.SetPrivateKey(FixedKey(2));
    PeerConfig pa{b.identity().public_key, std::nullopt, addr_b, 0, {*base::IpPrefix::Parse("10.0.0.2/32")}};
    PeerConfig pb{a.identity().public_key, std::nullopt, std::nullopt, 0, {*base::IpPrefix::Parse("10.0.0.0/24")}};
    Peer* peer_b = *a.AddPeer(pa);
    (void)*b.AddPeer(pb);
    // Handshake: a initiates, b answers, a confirms with a keepalive.
    a.InitiateHandshake(peer_b);
    for (int round = 0; round < 3; ++round) {
      for (auto& d : out_a.sent) {
        Datagram dg{d, addr_a};
        b.ReceiveDatagrams(absl::MakeConstSpan(&dg, 1));
      }
      out_a.sent.clear();
      for (auto& d : out_b.sent) {
        Datagram dg{d, addr_b};
        a.ReceiveDatagrams(absl::MakeConstSpan(&dg, 1));
      }
      out_b.sent.clear();
    }
    if (b.counters().handshakes_completed != 1) std::abort();
    // A small table, so that three source keys can fill it.
    if (!b.SetHandshakeRateLimit(RateLimitOptions{20, 5, 2}).ok()) std::abort();
    for (auto& c : cookies) c.Init(b.identity().public_key);
  }

  // FetchCookie asks b (under load) for a cookie for sources[i], as a real sender would.
  void FetchCookie(size_t i, bool under_load) {
    std::vector<uint8_t> ask(kInitiationSize, 0);
    ask[0] = 1;
    cookies[i] = CookieGenerator();  // no cookie held: the ask carries no mac2 and gets a reply
    cookies[i].Init(b.identity().public_key);
    cookies[i].AddMacs(absl::MakeSpan(ask), kInitiationMac1Offset, clock.Monotonic());
    b.ForceUnderLoad(true);
    Datagram d{ask, sources[i]};
    b.ReceiveDatagrams(absl::MakeConstSpan(&d, 1));
    b.ForceUnderLoad(under_load);
    CookieReply reply;
    if (out_b.sent.empty() || !ParseCookieReply(out_b.sent.back(), &reply)) std::abort();
    if (!cookies[i].ConsumeReply(reply, clock.Monotonic())) std::abort();
    out_b.sent.clear();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = new Fixture();
  const size_t delivered_before = f->out_b.delivered;
  base::ByteReader r(base::ByteSpan(data, size));
  std::vector<Datagram> batch;
  std::deque<std::vector<uint8_t>> stamped;  // stable storage for the batch's stamped copies
  std::array<bool, 4> fetched{};             // cookies are fetched once per input, when needed
  bool under_load = false, stamp = false;
  size_t source = 0;
  f->b.ForceUnderLoad(false);
  uint16_t len;
  base::ByteSpan dg;
  while (r.ReadU16(&len) && r.ReadBytes(len, &dg)) {
    if (dg.size() == 1) {
      f->b.ReceiveDatagrams(batch);
      batch.clear();
      under_load = dg[0] & 1;
      stamp = dg[0] & 2;
      source = (dg[0] >> 2) & 3;
      f->b.ForceUnderLoad(under_load);
      continue;
    }
    const MessageType type = Classify(dg);
    if (stamp && (type == MessageType::kInitiation || type == MessageType::kResponse)) {
      if (!fetched[source]) {
        f->b.ReceiveDatagrams(batch);  // in order: what came before goes first
        batch.clear();
        f->FetchCookie(source, under_load);
        fetched[source] = true;
      }
      auto& copy = stamped.emplace_back(dg.begin(), dg.end());
      f->cookies[source].AddMacs(absl::MakeSpan(copy),
                                 type == MessageType::kInitiation ? kInitiationMac1Offset : kResponseMac1Offset,
                                 f->clock.Monotonic());
      dg = copy;
    }
    batch.push_back(Datagram{dg, f->sources[source]});
  }
  f->b.ReceiveDatagrams(batch);
  f->b.ForceUnderLoad(false);
  const auto& limiter = f->b.handshake_rate_limiter();
  if (limiter.size() > limiter.options().max_sources) std::abort();
  f->clock.Advance(absl::Milliseconds(10));
  f->b.RunTimers();
  f->out_b.sent.clear();
  // Forged transport messages cannot authenticate: nothing new reaches the stack.
  if (f->out_b.delivered != delivered_before) std::abort();
  return 0;
}
