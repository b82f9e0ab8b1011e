// kdf.h: the keyed functions WireGuard builds from BLAKE2s (WireGuard paper §5.4): HASH, MAC,
// HMAC (RFC 2104 over BLAKE2s-256) and the HKDF-style KDF1..3 of the Noise framework.
#ifndef P2PROXY_CRYPTO_KDF_H_
#define P2PROXY_CRYPTO_KDF_H_

#include <cstdint>

#include "absl/types/span.h"
#include "crypto/secret.h"

namespace p2proxy::crypto {

// Hash256 writes BLAKE2s-256(a || b) to |out| (32 bytes).
void Hash256(uint8_t out[32], absl::Span<const uint8_t> a, absl::Span<const uint8_t> b = {});
// Mac128 writes keyed BLAKE2s with a 16-byte output: WireGuard's MAC (mac1, mac2, cookies).
void Mac128(uint8_t out[16], absl::Span<const uint8_t> key, absl::Span<const uint8_t> data);
// HmacBlake2s writes HMAC-BLAKE2s-256(key, data) to |out| (32 bytes).
void HmacBlake2s(uint8_t out[32], absl::Span<const uint8_t> key, absl::Span<const uint8_t> data);
// Kdf derives up to three 32-byte keys from chaining key |ck| and |input|:
//   t0 = HMAC(ck, input); t1 = HMAC(t0, 0x1); t2 = HMAC(t0, t1 || 0x2); t3 = HMAC(t0, t2 || 0x3)
// Null outputs are skipped (and later ones not computed). |ck| may alias an output.
void Kdf(const Key& ck, absl::Span<const uint8_t> input, Key* out1, Key* out2 = nullptr,
         Key* out3 = nullptr);

}  // namespace p2proxy::crypto

#endif  // P2PROXY_CRYPTO_KDF_H_
