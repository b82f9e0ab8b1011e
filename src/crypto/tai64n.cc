// tai64n.cc: TAI64N encoding.
#include "crypto/tai64n.h"

#include <cstring>

namespace p2proxy::crypto {

Tai64n ToTai64n(absl::Time t) {
  constexpr uint64_t kBase = 0x400000000000000aull;
  constexpr uint32_t kWhitenerMask = 0x1000000u - 1;
  const int64_t secs = absl::ToUnixSeconds(t);
  const absl::Duration frac = t - absl::FromUnixSeconds(secs);
  uint32_t nanos = static_cast<uint32_t>(absl::ToInt64Nanoseconds(frac));
  nanos &= ~kWhitenerMask;
  const uint64_t s = kBase + static_cast<uint64_t>(secs);
  Tai64n out;
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(s >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<uint8_t>(nanos >> (24 - 8 * i));
  return out;
}

bool Tai64nAfter(const Tai64n& a, const Tai64n& b) {
  return std::memcmp(a.data(), b.data(), a.size()) > 0;
}

}  // namespace p2proxy::crypto
