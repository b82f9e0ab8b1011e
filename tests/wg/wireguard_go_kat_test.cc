// Known-answer test against wireguard-go: one real handshake, recorded once with fixed static keys
// on both sides, a fixed preshared key and a fixed ephemeral on ours (testdata/, written by
// tools/record_wireguard_go_kat.sh). wireguard-go's initiation must carry a valid mac1 and name
// its static key; our responder, fed the same initiation, must answer with exactly the bytes
// wireguard-go accepted; and the transport message wireguard-go sent next must decrypt, with the
// keys we derive, to the datagram the recording sent. Needs neither root nor wireguard-go.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "base/clock.h"
#include "base/encoding.h"
#include "crypto/keys.h"
#include "crypto/x25519.h"
#include "wg/cookie.h"
#include "wg/device.h"
#include "wg/noise.h"
#include "wg/testdata/wireguard_go_handshake.h"
#include "wg/testdata/wireguard_go_kat_keys.h"

using namespace p2proxy;
using namespace p2proxy::wg;

namespace {

std::vector<uint8_t> Hex(const char* hex) {
  auto bytes = base::HexDecode(hex);
  REQUIRE(bytes.ok());
  return *bytes;
}

crypto::Key PrivateKey(const char* base64) {
  auto key = crypto::ParseKey(base64);
  REQUIRE(key.ok());
  return *key;
}

crypto::PublicKey PublicKey(const char* base64) {
  auto key = crypto::ParsePublicKey(base64);
  REQUIRE(key.ok());
  return *key;
}

// Responder is our side as it was recorded: fixed keys, ephemeral and indexes, on a fake clock
// (the responder compares wireguard-go's timestamp only with the last one it saw).
struct Responder : DeviceOutput {
  base::FakeClock clock;
  Device device{clock, *this};
  uint32_t next_index = kat::kResponderIndex;
  std::vector<std::vector<uint8_t>> sent;
  std::vector<std::vector<uint8_t>> delivered;
  const base::SocketAddress wireguard_go = *base::SocketAddress::Parse("127.0.0.1:51000");

  Responder() {
    device.SetIndexSourceForTesting([this] { return next_index++; });
    device.SetEphemeralForTesting(PrivateKey(kat::kResponderEphemeralPrivateKey));
    device.SetPrivateKey(PrivateKey(kat::kResponderPrivateKey));
    PeerConfig peer;
    peer.public_key = PublicKey(kat::kInitiatorPublicKey);
    peer.preshared_key = PrivateKey(kat::kPresharedKey);
    peer.allowed_ips = {*base::IpPrefix::Parse(std::string(kat::kInitiatorTunnelIp) + "/32")};
    REQUIRE(device.AddPeer(peer).ok());
  }
  void SendDatagram(const base::SocketAddress&, base::ByteSpan d) override { sent.emplace_back(d.begin(), d.end()); }
  void DeliverPacket(Peer&, base::ByteSpan p) override { delivered.emplace_back(p.begin(), p.end()); }
  void Receive(const std::vector<uint8_t>& bytes) {
    Datagram d{bytes, wireguard_go};
    device.ReceiveDatagrams(absl::MakeConstSpan(&d, 1));
  }
};

uint32_t Be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// InternetChecksumOk: the one's-complement sum of a header with its checksum field is all ones.
bool InternetChecksumOk(const uint8_t* p, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += Be16(p + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

uint32_t Ip(const char* text) {
  auto a = base::SocketAddress::FromIp(text, 0);
  REQUIRE(a.ok());
  return ntohl(reinterpret_cast<const sockaddr_in*>(a->sa())->sin_addr.s_addr);
}

}  // namespace

TEST_CASE("wireguard-go KAT: our public keys match wg pubkey's for the fixed private keys") {
  REQUIRE(crypto::PublicFromPrivate(PrivateKey(kat::kInitiatorPrivateKey)) == PublicKey(kat::kInitiatorPublicKey));
  REQUIRE(crypto::PublicFromPrivate(PrivateKey(kat::kResponderPrivateKey)) == PublicKey(kat::kResponderPublicKey));
  REQUIRE(crypto::PublicFromPrivate(PrivateKey(kat::kResponderEphemeralPrivateKey)) ==
          PublicKey(kat::kResponderEphemeralPublicKey));
}

TEST_CASE("wireguard-go KAT: the initiation has a valid mac1 and names wireguard-go's static key") {
  const auto init = Hex(kat::kInitiationHex);
  REQUIRE(Classify(init) == MessageType::kInitiation);
  CookieChecker ours;
  ours.Init(PublicKey(kat::kResponderPublicKey));
  REQUIRE(ours.CheckMac1(init, kInitiationMac1Offset));
  // mac1 is keyed by the receiver's public key: checked against another key it fails.
  CookieChecker other;
  other.Init(PublicKey(kat::kInitiatorPublicKey));
  REQUIRE(!other.CheckMac1(init, kInitiationMac1Offset));
  Initiation msg;
  REQUIRE(ParseInitiation(init, &msg));
  REQUIRE(msg.mac2 == std::array<uint8_t, 16>{});  // wireguard-go held no cookie from us

  // e, es, s: the static key inside is wireguard-go's.
  LocalIdentity local;
  local.Set(PrivateKey(kat::kResponderPrivateKey));
  ConsumedInitiation st;
  REQUIRE(ConsumeInitiationStatic(local, msg, &st));
  REQUIRE(st.remote_static == PublicKey(kat::kInitiatorPublicKey));
  // ss, {t}: the timestamp opens, and is TAI64N as wireguard-go writes it: 2^62 + 10 + Unix
  // seconds (a plausible date: it was recorded in December 2026), nanoseconds whitened to a
  // multiple of 2^24 as ours are.
  PeerKeys peer;
  peer.remote_static = st.remote_static;
  peer.preshared_key = PrivateKey(kat::kPresharedKey);
  peer.Precompute(local);
  REQUIRE(ConsumeInitiationFinish(peer, msg, &st));
  const uint64_t tai_seconds = uint64_t{Be32(st.timestamp.data())} << 32 | Be32(st.timestamp.data() + 4);
  const int64_t unix_seconds = static_cast<int64_t>(tai_seconds - ((uint64_t{1} << 62) + 10));
  const absl::Time recorded = absl::FromUnixSeconds(unix_seconds);
  REQUIRE(recorded >= absl::FromCivil(absl::CivilDay(2026, 1, 1), absl::UTCTimeZone()));
  REQUIRE(recorded < absl::FromCivil(absl::CivilDay(2100, 1, 1), absl::UTCTimeZone()));
  REQUIRE((Be32(st.timestamp.data() + 8) & 0xffffff) == 0);

  // A flipped bit in the encrypted static key: mac1 fails, and so would the AEAD.
  auto mangled = init;
  mangled[20] ^= 1;
  REQUIRE(!ours.CheckMac1(mangled, kInitiationMac1Offset));
  Initiation mangled_msg;
  REQUIRE(ParseInitiation(mangled, &mangled_msg));
  ConsumedInitiation mangled_st;
  REQUIRE(!ConsumeInitiationStatic(local, mangled_msg, &mangled_st));
}

TEST_CASE("wireguard-go KAT: our response is byte for byte the one wireguard-go accepted") {
  Responder r;
  r.Receive(Hex(kat::kInitiationHex));
  REQUIRE(r.device.counters().responses_sent == 1);
  REQUIRE(r.sent.size() == 1);
  const auto expected = Hex(kat::kResponseHex);
  REQUIRE(base::HexEncode(r.sent[0]) == base::HexEncode(expected));
}

TEST_CASE("wireguard-go KAT: wireguard-go's first transport message decrypts with the keys we derived") {
  Responder r;
  r.Receive(Hex(kat::kInitiationHex));
  REQUIRE(r.sent.size() == 1);
  const auto transport = Hex(kat::kTransportHex);
  REQUIRE(Classify(transport) == MessageType::kTransport);
  // A copy with one bit flipped in the ciphertext does not authenticate (and burns nothing).
  auto mangled = transport;
  mangled[40] ^= 1;
  r.Receive(mangled);
  REQUIRE(r.device.counters().drop(Drop::kDecryptFailed) == 1);
  REQUIRE(r.delivered.empty());

  r.Receive(transport);
  REQUIRE(r.device.counters().data_packets_received == 1);
  REQUIRE(r.delivered.size() == 1);
  // The plaintext is the datagram the recording sent into wireguard-go's TUN: an IPv4/UDP packet
  // from its tunnel address to ours, with a valid header checksum and the known payload.
  const std::vector<uint8_t>& ip = r.delivered[0];
  const std::string payload = kat::kUdpPayload;
  REQUIRE(ip.size() == 20 + 8 + payload.size());
  REQUIRE(ip[0] == 0x45);
  REQUIRE(Be16(&ip[2]) == ip.size());
  REQUIRE(ip[9] == 17);
  REQUIRE(InternetChecksumOk(ip.data(), 20));
  REQUIRE(Be32(&ip[12]) == Ip(kat::kInitiatorTunnelIp));
  REQUIRE(Be32(&ip[16]) == Ip(kat::kResponderTunnelIp));
  REQUIRE(Be16(&ip[22]) == kat::kUdpPort);
  REQUIRE(Be16(&ip[24]) == 8 + payload.size());
  REQUIRE(std::string(ip.begin() + 28, ip.end()) == payload);
  // wireguard-go padded it to a multiple of 16 before sealing.
  REQUIRE((transport.size() - kTransportMinSize) % 16 == 0);
  REQUIRE(transport.size() - kTransportMinSize >= ip.size());
}
