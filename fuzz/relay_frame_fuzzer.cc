// relay_frame_fuzzer: relay frames (nat/relay_frame.h) and the server's relay (server/relay.h)
// on arbitrary datagrams. A frame that parses must carry its fields as laid out and write back
// to the same header; the relay must never forward anything that does not parse, nor in
// another node's name, and must account for every frame it takes.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "nat/relay_frame.h"
#include "server/relay.h"

using namespace p2proxy;

namespace {

class FixedClock : public base::Clock {
 public:
  absl::Time Wall() const override { return absl::UnixEpoch(); }
  absl::Duration Monotonic() const override { return absl::Seconds(1); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  base::ByteSpan in(data, size);
  nat::RelayFrame f;
  const bool parsed = nat::ParseRelayFrame(in, &f);
  if (parsed) {
    if (!nat::IsRelayFrame(in)) std::abort();
    uint8_t header[nat::kRelayHeaderSize];
    nat::WriteRelayHeader(f.dst, f.src, header);
    if (std::memcmp(header, data, sizeof(header)) != 0) std::abort();
    if (f.payload.data() != data + nat::kRelayHeaderSize || f.payload.size() != size - nat::kRelayHeaderSize) std::abort();
  }
  // The relay, with two nodes known: the sender is always node 100.96.0.3.
  static FixedClock clock;
  server::Relay relay(clock, {});
  const auto sender = *base::SocketAddress::Parse("198.18.6.2:50000");
  relay.SetEndpoint(base::IpAddress::V4(100, 96, 0, 3), sender);
  relay.SetEndpoint(base::IpAddress::V4(100, 96, 0, 2), *base::SocketAddress::Parse("198.18.5.2:40000"));
  size_t sent = 0;
  const bool taken = relay.Handle(base::Datagram{in, sender}, [&](const base::SocketAddress&, base::ByteSpan frame) {
    if (frame.data() != data || frame.size() != size) std::abort();  // forwarded unchanged
    ++sent;
  });
  if (taken != nat::IsRelayFrame(in)) std::abort();
  if (sent != 0 && (!parsed || !(f.src == base::IpAddress::V4(100, 96, 0, 3)) ||
                    !(f.dst == base::IpAddress::V4(100, 96, 0, 2)))) {
    std::abort();
  }
  const auto& c = relay.counters();
  if (taken && c.forwarded + c.malformed + c.unknown_sender + c.spoofed + c.unknown_destination + c.rate_limited != 1) {
    std::abort();
  }
  return 0;
}
