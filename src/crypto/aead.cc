// aead.cc: ChaCha20-Poly1305 and XChaCha20-Poly1305 over EVP_AEAD.
#include "crypto/aead.h"

#include <cstring>

namespace p2proxy::crypto {
namespace {

void WireGuardNonce(uint64_t counter, uint8_t nonce[12]) {
  std::memset(nonce, 0, 4);
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
}

bool SealCtx(const EVP_AEAD_CTX* ctx, const uint8_t* nonce, size_t nonce_len,
             absl::Span<const uint8_t> pt, absl::Span<const uint8_t> ad, uint8_t* out) {
  size_t out_len = 0;
  return EVP_AEAD_CTX_seal(ctx, out, &out_len, pt.size() + kAeadTagSize, nonce, nonce_len,
                           pt.data(), pt.size(), ad.data(), ad.size()) == 1;
}

bool OpenCtx(const EVP_AEAD_CTX* ctx, const uint8_t* nonce, size_t nonce_len,
             absl::Span<const uint8_t> ct, absl::Span<const uint8_t> ad, uint8_t* out) {
  if (ct.size() < kAeadTagSize) return false;
  size_t out_len = 0;
  return EVP_AEAD_CTX_open(ctx, out, &out_len, ct.size() - kAeadTagSize, nonce, nonce_len,
                           ct.data(), ct.size(), ad.data(), ad.size()) == 1;
}

}  // namespace

ChaChaPoly::ChaChaPoly(const Key& key) {
  ok_ = EVP_AEAD_CTX_init(&ctx_, EVP_aead_chacha20_poly1305(), key.data(), key.size(),
                          kAeadTagSize, nullptr) == 1;
}

ChaChaPoly::~ChaChaPoly() {
  if (ok_) EVP_AEAD_CTX_cleanup(&ctx_);
}

bool ChaChaPoly::Seal(uint64_t counter, absl::Span<const uint8_t> plaintext,
                      absl::Span<const uint8_t> ad, uint8_t* out) const {
  uint8_t nonce[12];
  WireGuardNonce(counter, nonce);
  return SealWithNonce(nonce, plaintext, ad, out);
}

bool ChaChaPoly::Open(uint64_t counter, absl::Span<const uint8_t> ciphertext,
                      absl::Span<const uint8_t> ad, uint8_t* out) const {
  uint8_t nonce[12];
  WireGuardNonce(counter, nonce);
  return OpenWithNonce(nonce, ciphertext, ad, out);
}

bool ChaChaPoly::SealWithNonce(const uint8_t nonce[12], absl::Span<const uint8_t> plaintext,
                               absl::Span<const uint8_t> ad, uint8_t* out) const {
  return ok_ && SealCtx(&ctx_, nonce, 12, plaintext, ad, out);
}

bool ChaChaPoly::OpenWithNonce(const uint8_t nonce[12], absl::Span<const uint8_t> ciphertext,
                               absl::Span<const uint8_t> ad, uint8_t* out) const {
  return ok_ && OpenCtx(&ctx_, nonce, 12, ciphertext, ad, out);
}

bool XSeal(const Key& key, const uint8_t nonce[24], absl::Span<const uint8_t> plaintext,
           absl::Span<const uint8_t> ad, uint8_t* out) {
  bssl::ScopedEVP_AEAD_CTX ctx;
  if (!EVP_AEAD_CTX_init(ctx.get(), EVP_aead_xchacha20_poly1305(), key.data(), key.size(),
                         kAeadTagSize, nullptr)) {
    return false;
  }
  return SealCtx(ctx.get(), nonce, 24, plaintext, ad, out);
}

bool XOpen(const Key& key, const uint8_t nonce[24], absl::Span<const uint8_t> ciphertext,
           absl::Span<const uint8_t> ad, uint8_t* out) {
  bssl::ScopedEVP_AEAD_CTX ctx;
  if (!EVP_AEAD_CTX_init(ctx.get(), EVP_aead_xchacha20_poly1305(), key.data(), key.size(),
                         kAeadTagSize, nullptr)) {
    return false;
  }
  return OpenCtx(ctx.get(), nonce, 24, ciphertext, ad, out);
}

}  // namespace p2proxy::crypto
