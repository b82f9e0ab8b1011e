// secret.h: fixed-size byte arrays for key material that wipe themselves on destruction.
#ifndef P2PROXY_CRYPTO_SECRET_H_
#define P2PROXY_CRYPTO_SECRET_H_

#include <openssl/mem.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace p2proxy::crypto {

// Secret<N> holds N bytes of key material. It is wiped (OPENSSL_cleanse, which the compiler may
// not elide) when destroyed or cleared; copies are explicit so secrets do not spread by accident.
template <size_t N>
class Secret {
 public:
  static constexpr size_t kSize = N;
  Secret() { bytes_.fill(0); }
  explicit Secret(absl::Span<const uint8_t> from) {
    bytes_.fill(0);
    for (size_t i = 0; i < N && i < from.size(); ++i) bytes_[i] = from[i];
  }
  ~Secret() { Clear(); }
  Secret(const Secret& other) = default;
  Secret& operator=(const Secret& other) = default;

  void Clear() { OPENSSL_cleanse(bytes_.data(), N); }
  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  static constexpr size_t size() { return N; }
  absl::Span<uint8_t> span() { return absl::MakeSpan(bytes_); }
  absl::Span<const uint8_t> span() const { return absl::MakeConstSpan(bytes_); }
  // IsZero is constant-time.
  bool IsZero() const {
    uint8_t acc = 0;
    for (uint8_t b : bytes_) acc |= b;
    return acc == 0;
  }
  // Equals is constant-time.
  bool Equals(const Secret& other) const { return CRYPTO_memcmp(data(), other.data(), N) == 0; }

 private:
  std::array<uint8_t, N> bytes_;
};

using Key = Secret<32>;  // symmetric keys, chaining keys, X25519 private keys

// PublicKey is a 32-byte X25519 public key: not secret, freely copied and compared.
using PublicKey = std::array<uint8_t, 32>;

}  // namespace p2proxy::crypto

#endif  // P2PROXY_CRYPTO_SECRET_H_
