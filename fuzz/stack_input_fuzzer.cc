// stack_input_fuzzer: arbitrary IP packets into the userspace stack through its netif, as a
// peer inside the tunnel could send them. The stack serves 100.96.128.0/24 and has a TCP echo
// listener at 100.96.128.20:80 and a UDP echo at 100.96.128.20:53, so handshakes, data,
// reassembly and UDP are reached. The input is a sequence of [u16 length][packet] records
// (big-endian length). Nothing may crash, hang or leak; output is discarded.
#include <cstdint>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "net/loop.h"
#include "stack/netstack.h"
#include "stack/tcp_stream.h"
#include "stack/udp_endpoint.h"

using namespace p2proxy;

namespace {

struct Echo : net::StreamHandler {
  std::unique_ptr<net::Stream> s;
  void OnData(base::ByteSpan d) override { s->Write(d); }
  void OnEnd() override { s->Shutdown(); }
  void OnError(const absl::Status&) override {}
};

struct Fixture {
  net::Loop loop;
  std::unique_ptr<stack::NetStack> stack;
  std::unique_ptr<stack::TcpListener> listener;
  std::unique_ptr<stack::UdpEndpoint> udp;
  std::vector<std::unique_ptr<Echo>> conns;
  size_t output_packets = 0;

  Fixture() {
    stack = std::move(*stack::NetStack::Create(loop, base::IpAddress::V4(100, 96, 0, 10), 1420,
                                               [this](absl::Span<const base::ByteSpan> p) { output_packets += p.size(); }));
    stack->Serve(*base::IpPrefix::Parse("100.96.128.0/24"));
    listener = std::move(*stack->ListenTcp(base::IpAddress::V4(100, 96, 128, 20), 80,
                                           [this](std::unique_ptr<net::Stream> s, auto&, auto) {
                                             // Keep a bounded number of live connections.
                                             if (conns.size() > 64) conns.erase(conns.begin());
                                             auto e = std::make_unique<Echo>();
                                             e->s = std::move(s);
                                             e->s->SetHandler(e.get());
                                             conns.push_back(std::move(e));
                                           }));
    udp = std::move(*stack->BindUdp(base::IpAddress::V4(100, 96, 128, 20), 53,
                                    [this](base::ByteSpan d, const base::IpAddress& from, uint16_t port) {
                                      udp->SendTo(d, from, port);
                                    }));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = new Fixture();
  base::ByteReader r(base::ByteSpan(data, size));
  std::vector<base::ByteSpan> packets;
  uint16_t len;
  base::ByteSpan pkt;
  while (r.ReadU16(&len) && r.ReadBytes(len, &pkt)) packets.push_back(pkt);
  f->stack->Input(packets);
  f->loop.RunOnce(/*block=*/false);
  return 0;
}
