// echo_reply_fuzzer: the server's ICMP echo responder (server/tunnel.h EchoReply) on arbitrary
// packets, as an enrolled node could send them inside the tunnel.
//
// A packet refused must be left exactly as it was. A packet answered must be the same size,
// carry the request's addresses swapped (the reply goes from the server's address to the
// sender), be an echo reply (type 0) with the request's payload, and have both checksums valid;
// the reply itself is not an echo request, so answering it again is refused. A failure aborts.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/ip_prefix.h"
#include "server/tunnel.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

uint16_t Sum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += (p[i] << 8) | p[i + 1];
  if (n % 2) s += p[n - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const p2proxy::base::IpAddress self = p2proxy::base::IpAddress::V4(100, 96, 0, 1);
  std::vector<uint8_t> p(data, data + size);
  if (!p2proxy::server::EchoReply(self, absl::MakeSpan(p))) {
    Check(p.size() == size && (size == 0 || std::memcmp(p.data(), data, size) == 0));
    return 0;
  }
  Check(p.size() == size && size >= 28);
  const size_t total = (static_cast<size_t>(p[2]) << 8) | p[3];
  Check(total >= 28 && total <= size);
  Check(std::memcmp(p.data() + 12, data + 16, 4) == 0);
  Check(std::memcmp(p.data() + 16, data + 12, 4) == 0);
  Check(std::memcmp(p.data() + 12, self.bytes.data(), 4) == 0);
  Check(p[20] == 0 && p[21] == 0);
  Check(std::memcmp(p.data() + 24, data + 24, total - 24) == 0);
  Check(Sum(p.data(), 20) == 0 && Sum(p.data() + 20, total - 20) == 0);
  std::vector<uint8_t> again = p;
  Check(!p2proxy::server::EchoReply(self, absl::MakeSpan(again)));
  return 0;
}
