// tai64n.h: TAI64N timestamps, the handshake initiation's replay protection.
#ifndef P2PROXY_CRYPTO_TAI64N_H_
#define P2PROXY_CRYPTO_TAI64N_H_

#include <array>
#include <cstdint>

#include "absl/time/time.h"

namespace p2proxy::crypto {

using Tai64n = std::array<uint8_t, 12>;

// ToTai64n encodes |t|: 8 bytes big-endian of 2^62 + 10 + seconds, then 4 bytes big-endian
// nanoseconds. The nanoseconds are rounded down to a multiple of 2^24 (about 16.8 ms) so the
// timestamp does not expose fine timing, as the reference implementations do.
Tai64n ToTai64n(absl::Time t);
// Tai64nAfter is true if |a| is strictly later than |b| (byte order is time order).
bool Tai64nAfter(const Tai64n& a, const Tai64n& b);

}  // namespace p2proxy::crypto

#endif  // P2PROXY_CRYPTO_TAI64N_H_
