// kdf.cc: HMAC-BLAKE2s and the Noise KDF.
#include "crypto/kdf.h"

#include <openssl/mem.h>

#include <cstring>

#include "crypto/blake2s.h"

namespace p2proxy::crypto {

void Hash256(uint8_t out[32], absl::Span<const uint8_t> a, absl::Span<const uint8_t> b) {
  Blake2s h(32);
  h.Update(a);
  h.Update(b);
  h.Final(out);
}

void Mac128(uint8_t out[16], absl::Span<const uint8_t> key, absl::Span<const uint8_t> data) {
  Blake2s::Hash(out, 16, data, key);
}

void HmacBlake2s(uint8_t out[32], absl::Span<const uint8_t> key, absl::Span<const uint8_t> data) {
  uint8_t k[Blake2s::kBlockSize] = {0};
  if (key.size() > Blake2s::kBlockSize) {
    Blake2s::Hash(k, 32, key);
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  uint8_t pad[Blake2s::kBlockSize];
  for (size_t i = 0; i < sizeof(pad); ++i) pad[i] = k[i] ^ 0x36;
  uint8_t inner[32];
  Blake2s hi(32);
  hi.Update(pad);
  hi.Update(data);
  hi.Final(inner);
  for (size_t i = 0; i < sizeof(pad); ++i) pad[i] = k[i] ^ 0x5c;
  Blake2s ho(32);
  ho.Update(pad);
  ho.Update(inner);
  ho.Final(out);
  OPENSSL_cleanse(k, sizeof(k));
  OPENSSL_cleanse(pad, sizeof(pad));
  OPENSSL_cleanse(inner, sizeof(inner));
}

void Kdf(const Key& ck, absl::Span<const uint8_t> input, Key* out1, Key* out2, Key* out3) {
  Key t0;
  HmacBlake2s(t0.data(), ck.span(), input);
  if (!out1) return;
  uint8_t buf[33];
  uint8_t t[32];
  const uint8_t one = 1;
  HmacBlake2s(t, t0.span(), absl::MakeConstSpan(&one, 1));
  std::memcpy(out1->data(), t, 32);
  if (out2) {
    std::memcpy(buf, t, 32);
    buf[32] = 2;
    HmacBlake2s(t, t0.span(), buf);
    std::memcpy(out2->data(), t, 32);
    if (out3) {
      std::memcpy(buf, t, 32);
      buf[32] = 3;
      HmacBlake2s(t, t0.span(), buf);
      std::memcpy(out3->data(), t, 32);
    }
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  OPENSSL_cleanse(t, sizeof(t));
}

}  // namespace p2proxy::crypto
