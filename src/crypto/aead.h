// aead.h: ChaCha20-Poly1305 (RFC 8439) as WireGuard uses it, through BoringSSL's EVP_AEAD.
// WireGuard's nonce is 32 zero bits followed by a 64-bit little-endian counter; cookies use
// XChaCha20-Poly1305 with a random 24-byte nonce.
#ifndef P2PROXY_CRYPTO_AEAD_H_
#define P2PROXY_CRYPTO_AEAD_H_

#include <openssl/aead.h>

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "crypto/secret.h"

namespace p2proxy::crypto {

constexpr size_t kAeadTagSize = 16;

// ChaChaPoly holds one initialized key for many packets: seal and open allocate nothing.
class ChaChaPoly {
 public:
  explicit ChaChaPoly(const Key& key);
  ~ChaChaPoly();
  ChaChaPoly(const ChaChaPoly&) = delete;
  ChaChaPoly& operator=(const ChaChaPoly&) = delete;

  // Seal encrypts |plaintext| with the WireGuard nonce for |counter| and authenticates |ad|,
  // writing plaintext.size() + 16 bytes to |out| (which may equal plaintext.data()).
  bool Seal(uint64_t counter, absl::Span<const uint8_t> plaintext, absl::Span<const uint8_t> ad,
            uint8_t* out) const;
  // Open checks and decrypts |ciphertext| (tag included), writing ciphertext.size() - 16 bytes
  // to |out| (which may equal ciphertext.data()). False if it does not authenticate.
  bool Open(uint64_t counter, absl::Span<const uint8_t> ciphertext, absl::Span<const uint8_t> ad,
            uint8_t* out) const;
  // SealWithNonce / OpenWithNonce take a raw 12-byte nonce (RFC 8439 test vectors).
  bool SealWithNonce(const uint8_t nonce[12], absl::Span<const uint8_t> plaintext,
                     absl::Span<const uint8_t> ad, uint8_t* out) const;
  bool OpenWithNonce(const uint8_t nonce[12], absl::Span<const uint8_t> ciphertext,
                     absl::Span<const uint8_t> ad, uint8_t* out) const;

 private:
  EVP_AEAD_CTX ctx_;
  bool ok_ = false;
};

// XSeal / XOpen: XChaCha20-Poly1305 with a 24-byte nonce, one shot (cookie replies).
bool XSeal(const Key& key, const uint8_t nonce[24], absl::Span<const uint8_t> plaintext,
           absl::Span<const uint8_t> ad, uint8_t* out);
bool XOpen(const Key& key, const uint8_t nonce[24], absl::Span<const uint8_t> ciphertext,
           absl::Span<const uint8_t> ad, uint8_t* out);

}  // namespace p2proxy::crypto

#endif  // P2PROXY_CRYPTO_AEAD_H_
