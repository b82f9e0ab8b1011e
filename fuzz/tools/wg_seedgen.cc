// wg_seedgen: writes seed corpora for the WireGuard fuzzers from a real in-memory handshake
// between two devices (the same fixed keys and indexes as wg_device_fuzzer).
//   wg_seedgen fuzz/corpus
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "wg/device.h"

using namespace p2proxy;
using namespace p2proxy::wg;

namespace {

struct Sink : DeviceOutput {
  std::vector<std::vector<uint8_t>> sent;
  void SendDatagram(const base::SocketAddress&, base::ByteSpan d) override { sent.emplace_back(d.begin(), d.end()); }
  void DeliverPacket(Peer&, base::ByteSpan) override {}
};

crypto::Key FixedKey(uint8_t seed) {
  crypto::Key k;
  for (int i = 0; i < 32; ++i) k.data()[i] = static_cast<uint8_t>(seed + i * 13);
  k.data()[0] &= 248;
  k.data()[31] = static_cast<uint8_t>((k.data()[31] & 127) | 64);
  return k;
}

void Write(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> Record(const std::vector<std::vector<uint8_t>>& datagrams) {
  std::vector<uint8_t> out;
  for (const auto& d : datagrams) {
    out.push_back(static_cast<uint8_t>(d.size() >> 8));
    out.push_back(static_cast<uint8_t>(d.size()));
    out.insert(out.end(), d.begin(), d.end());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: wg_seedgen CORPUS_DIR (e.g. fuzz/corpus)\n");
    return 2;
  }
  const std::string dir = argv[1];
  base::FakeClock clock;
  Sink out_a, out_b;
  Device a(clock, out_a), b(clock, out_b);
  uint32_t next_a = 0x10, next_b = 0x20;
  a.SetIndexSourceForTesting([&] { return next_a++; });
  b.SetIndexSourceForTesting([&] { return next_b++; });
  a.SetPrivateKey(FixedKey(1));
  b.SetPrivateKey(FixedKey(2));
  const auto addr_a = *base::SocketAddress::Parse("192.0.2.1:1");
  const auto addr_b = *base::SocketAddress::Parse("192.0.2.2:2");
  Peer* pb = *a.AddPeer({b.identity().public_key, std::nullopt, addr_b, 0, {*base::IpPrefix::Parse("10.0.0.2/32")}});
  (void)*b.AddPeer({a.identity().public_key, std::nullopt, std::nullopt, 0, {*base::IpPrefix::Parse("10.0.0.0/24")}});
  a.InitiateHandshake(pb);
  const auto initiation = out_a.sent.at(0);
  Datagram d1{initiation, addr_a};
  b.ReceiveDatagrams(absl::MakeConstSpan(&d1, 1));
  const auto response = out_b.sent.at(0);
  Datagram d2{response, addr_b};
  a.ReceiveDatagrams(absl::MakeConstSpan(&d2, 1));
  const auto keepalive = out_a.sent.at(1);
  std::vector<uint8_t> ip = {0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                             0x30, 0x39, 0x00, 0x35, 0, 8, 0, 0};
  base::ByteSpan s = ip;
  a.SendPackets(absl::MakeConstSpan(&s, 1));
  const auto data = out_a.sent.at(2);
  b.ForceUnderLoad(true);
  Datagram d3{initiation, addr_a};
  b.ReceiveDatagrams(absl::MakeConstSpan(&d3, 1));
  const auto cookie = out_b.sent.back();

  Write(dir + "/wg_message/initiation", initiation);
  Write(dir + "/wg_message/response", response);
  Write(dir + "/wg_message/cookie_reply", cookie);
  Write(dir + "/wg_message/keepalive", keepalive);
  Write(dir + "/wg_message/transport", data);
  Write(dir + "/wg_message/not_wireguard", {'G', 'E', 'T', ' ', '/'});
  Write(dir + "/wg_device/replayed_initiation", Record({initiation}));
  Write(dir + "/wg_device/stray_response", Record({response}));
  Write(dir + "/wg_device/cookie_reply", Record({cookie}));
  Write(dir + "/wg_device/foreign_transport", Record({keepalive, data}));
  std::vector<uint8_t> to_live = data;
  to_live[4] = 0x20;  // b's live receiver index
  to_live[5] = to_live[6] = to_live[7] = 0;
  Write(dir + "/wg_device/forged_transport_live_index", Record({to_live}));
  Write(dir + "/wg_device/too_short", Record({{4, 0, 0, 0, 0x20, 0, 0, 0}}));
  std::printf("seeds written under %s/wg_message and %s/wg_device\n", dir.c_str(), dir.c_str());
  return 0;
}
