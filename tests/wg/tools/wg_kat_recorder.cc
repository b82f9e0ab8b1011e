// wg_kat_recorder: our side of the wireguard-go known-answer recording. It is a wg::Device with
// the fixed keys of testdata/wireguard_go_kat_keys.h, made to use a fixed ephemeral key and
// fixed indexes, answering on a UDP socket. It waits for wireguard-go's initiation, answers it,
// waits for the first transport message wireguard-go sends with the new session, and writes the
// three datagrams as a C++ header. Run by record_wireguard_go_kat.sh, never by the tests.
//   wg_kat_recorder config                          the initiator's settings, key=value per line
//   wg_kat_recorder record PORT OUT [COMMENT...]    answer on 127.0.0.1:PORT, write OUT
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/encoding.h"
#include "base/ip_prefix.h"
#include "crypto/keys.h"
#include "wg/device.h"
#include "wg/testdata/wireguard_go_kat_keys.h"

using namespace p2proxy;
using namespace p2proxy::wg;

namespace {

constexpr absl::Duration kDeadline = absl::Seconds(30);

int Fail(const std::string& what) {
  std::fprintf(stderr, "wg_kat_recorder: %s\n", what.c_str());
  return 1;
}

// Output sends on the socket and keeps our response and what the device delivered.
struct Output : DeviceOutput {
  int fd = -1;
  std::vector<std::vector<uint8_t>> responses;
  std::vector<std::vector<uint8_t>> delivered;
  void SendDatagram(const base::SocketAddress& to, base::ByteSpan d) override {
    if (Classify(d) == MessageType::kResponse) responses.emplace_back(d.begin(), d.end());
    if (sendto(fd, d.data(), d.size(), 0, to.sa(), to.sa_len()) < 0) {
      std::fprintf(stderr, "wg_kat_recorder: sendto %s: %s\n", to.ToString().c_str(), std::strerror(errno));
    }
  }
  void DeliverPacket(Peer&, base::ByteSpan p) override { delivered.emplace_back(p.begin(), p.end()); }
};

// HexLines writes |bytes| as a C++ string literal split into lines of 32 bytes, ending in ";".
std::string HexLines(const std::vector<uint8_t>& bytes) {
  const std::string hex = base::HexEncode(bytes);
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 64) {
    out += "    \"" + hex.substr(i, 64) + "\"" + (i + 64 < hex.size() ? "\n" : ";\n");
  }
  return out;
}

int PrintConfig() {
  std::printf("initiator_private_key=%s\n", kat::kInitiatorPrivateKey);
  std::printf("responder_public_key=%s\n", kat::kResponderPublicKey);
  std::printf("preshared_key=%s\n", kat::kPresharedKey);
  std::printf("initiator_tunnel_ip=%s\n", kat::kInitiatorTunnelIp);
  std::printf("responder_tunnel_ip=%s\n", kat::kResponderTunnelIp);
  std::printf("udp_port=%u\n", unsigned{kat::kUdpPort});
  std::printf("udp_payload=%s\n", kat::kUdpPayload);
  return 0;
}

int Record(int port, const std::string& out_path, const std::vector<std::string>& comment) {
  auto our_key = crypto::ParseKey(kat::kResponderPrivateKey);
  auto ephemeral = crypto::ParseKey(kat::kResponderEphemeralPrivateKey);
  auto psk = crypto::ParseKey(kat::kPresharedKey);
  auto their_pub = crypto::ParsePublicKey(kat::kInitiatorPublicKey);
  auto allowed = base::IpPrefix::Parse(std::string(kat::kInitiatorTunnelIp) + "/32");
  if (!our_key.ok() || !ephemeral.ok() || !psk.ok() || !their_pub.ok() || !allowed.ok()) {
    return Fail("bad fixed keys in wireguard_go_kat_keys.h");
  }

  Output out;
  out.fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (out.fd < 0) return Fail(std::string("socket: ") + std::strerror(errno));
  auto bind_addr = base::SocketAddress::Parse("127.0.0.1:" + std::to_string(port));
  if (!bind_addr.ok()) return Fail("bad port");
  if (bind(out.fd, bind_addr->sa(), bind_addr->sa_len()) != 0) {
    return Fail("bind " + bind_addr->ToString() + ": " + std::strerror(errno));
  }

  Device device(base::RealClock::Get(), out);
  uint32_t next_index = kat::kResponderIndex;
  device.SetIndexSourceForTesting([&] { return next_index++; });
  device.SetEphemeralForTesting(*ephemeral);
  device.SetPrivateKey(*our_key);
  PeerConfig peer;
  peer.public_key = *their_pub;
  peer.preshared_key = *psk;
  peer.allowed_ips = {*allowed};
  if (!device.AddPeer(peer).ok()) return Fail("add peer");
  std::fprintf(stderr, "wg_kat_recorder: ready on %s\n", bind_addr->ToString().c_str());

  std::vector<uint8_t> initiation, transport;
  int initiations = 0;
  const absl::Time deadline = absl::Now() + kDeadline;
  std::vector<uint8_t> buf(65536);
  while (transport.empty()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return Fail("timed out waiting for wireguard-go");
    pollfd pfd{out.fd, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    const ssize_t n = recvfrom(out.fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return Fail(std::string("recvfrom: ") + std::strerror(errno));
    const base::ByteSpan data(buf.data(), static_cast<size_t>(n));
    const MessageType type = Classify(data);
    if (type == MessageType::kInitiation) {
      // Exactly one handshake, so the test can replay it with the first fixed index.
      if (++initiations > 1) return Fail("wireguard-go sent a second initiation; record again");
      initiation.assign(data.begin(), data.end());
    }
    const uint64_t before = device.counters().data_packets_received + device.counters().keepalives_received;
    Datagram d{data, base::SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&from))};
    device.ReceiveDatagrams(absl::MakeConstSpan(&d, 1));
    const uint64_t after = device.counters().data_packets_received + device.counters().keepalives_received;
    if (type == MessageType::kTransport && after > before) transport.assign(data.begin(), data.end());
    std::fprintf(stderr, "wg_kat_recorder: received type %u, %zd bytes\n", static_cast<unsigned>(type), n);
  }
  if (initiation.empty() || out.responses.size() != 1) return Fail("no complete handshake recorded");
  if (!out.delivered.empty()) {
    std::fprintf(stderr, "wg_kat_recorder: first packet decrypted: %s\n", base::HexEncode(out.delivered[0]).c_str());
  }

  std::ofstream f(out_path);
  f << "// wireguard_go_handshake.h: one real WireGuard handshake with wireguard-go as the initiator and\n"
       "// our device as the responder (fixed keys, ephemeral and index: wireguard_go_kat_keys.h), for\n"
       "// wireguard_go_kat_test.cc. Written by tests/wg/tools/wg_kat_recorder; do not edit.\n";
  for (const auto& line : comment) f << "// " << line << "\n";
  f << "#ifndef P2PROXY_TESTS_WG_TESTDATA_WIREGUARD_GO_HANDSHAKE_H_\n"
       "#define P2PROXY_TESTS_WG_TESTDATA_WIREGUARD_GO_HANDSHAKE_H_\n\n"
       "namespace p2proxy::wg::kat {\n\n"
       "// wireguard-go's handshake initiation (type 1), as it arrived.\n"
       "inline constexpr char kInitiationHex[] =\n" << HexLines(initiation) << "\n"
       "// Our handshake response (type 2), which wireguard-go accepted.\n"
       "inline constexpr char kResponseHex[] =\n" << HexLines(out.responses[0]) << "\n"
       "// The first transport message (type 4) wireguard-go sent with the new session.\n"
       "inline constexpr char kTransportHex[] =\n" << HexLines(transport) << "\n"
       "}  // namespace p2proxy::wg::kat\n\n"
       "#endif  // P2PROXY_TESTS_WG_TESTDATA_WIREGUARD_GO_HANDSHAKE_H_\n";
  f.close();
  if (!f) return Fail("write " + out_path);
  std::fprintf(stderr, "wg_kat_recorder: wrote %s\n", out_path.c_str());
  close(out.fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage =
      "usage: wg_kat_recorder config | wg_kat_recorder record PORT OUT [COMMENT...]";
  if (argc == 2 && std::strcmp(argv[1], "config") == 0) return PrintConfig();
  if (argc >= 4 && std::strcmp(argv[1], "record") == 0) {
    uint64_t port = 0;
    if (!base::ParseDecimal(argv[2], 65535, &port) || port == 0) return Fail(usage);
    return Record(static_cast<int>(port), argv[3], std::vector<std::string>(argv + 4, argv + argc));
  }
  return Fail(usage);
}
