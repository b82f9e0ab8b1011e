// secret.h: fixed-size byte arrays for key material that wipe themselves on destruction.
#ifndef P2PROXY_CRYPTO_SECRET_H_
#define P2PROXY_CRYPTO_SECRET_H_

#include <openssl/mem.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

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

// SecretString holds secret text of any length (a PEM private key pushed to a site). Its bytes
// are wiped when it is destroyed, reassigned or moved from. Copies are wiped the same way, so a
// config struct holding one can be copied like any other.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string text) : text_(std::move(text)) {}
  SecretString(const SecretString& other) : text_(other.text_) {}
  SecretString(SecretString&& other) noexcept : text_(other.text_) { other.Clear(); }
  SecretString& operator=(const SecretString& other) {
    if (this != &other) {
      Clear();
      text_ = other.text_;
    }
    return *this;
  }
  SecretString& operator=(SecretString&& other) noexcept {
    if (this != &other) {
      Clear();
      text_ = other.text_;
      other.Clear();
    }
    return *this;
  }
  ~SecretString() { Clear(); }

  void Clear() {
    OPENSSL_cleanse(text_.data(), text_.size());
    text_.clear();
  }
  std::string_view view() const { return text_; }
  const std::string& str() const { return text_; }
  bool empty() const { return text_.empty(); }
  size_t size() const { return text_.size(); }
  // Equals compares in time that depends only on the lengths.
  bool Equals(const SecretString& other) const {
    return text_.size() == other.text_.size() && CRYPTO_memcmp(text_.data(), other.text_.data(), text_.size()) == 0;
  }

 private:
  std::string text_;
};

// PublicKey is a 32-byte X25519 public key: not secret, freely copied and compared.
using PublicKey = std::array<uint8_t, 32>;

}  // namespace p2proxy::crypto

#endif  // P2PROXY_CRYPTO_SECRET_H_
