// wg_device_fuzzer: arbitrary datagrams into a WireGuard device that is mid-session with a real
// peer. Each run: two devices with fixed keys and reproducible indexes complete a handshake in
// memory once, then each input, read as a sequence of [u16 length][datagram] records (big-endian
// length), is fed to the responder. Transport records may name the live session's index, so
// decryption, replay and inner-packet checks are reached. Nothing may crash, and nothing that
// did not authenticate may be delivered.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "base/clock.h"
#include "base/encoding.h"
#include "crypto/keys.h"
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
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = new Fixture();
  const size_t delivered_before = f->out_b.delivered;
  base::ByteReader r(base::ByteSpan(data, size));
  std::vector<Datagram> batch;
  uint16_t len;
  base::ByteSpan dg;
  while (r.ReadU16(&len) && r.ReadBytes(len, &dg)) batch.push_back(Datagram{dg, f->addr_a});
  f->b.ReceiveDatagrams(batch);
  f->clock.Advance(absl::Milliseconds(10));
  f->b.RunTimers();
  f->out_b.sent.clear();
  // Forged transport messages cannot authenticate: nothing new reaches the stack.
  if (f->out_b.delivered != delivered_before) std::abort();
  return 0;
}
