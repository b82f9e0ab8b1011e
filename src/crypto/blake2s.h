// blake2s.h: BLAKE2s (RFC 7693), keyed and unkeyed, digests of 1 to 32 bytes. BoringSSL has only
// BLAKE2b, and WireGuard's hash, MAC and KDF are all BLAKE2s.
#ifndef P2PROXY_CRYPTO_BLAKE2S_H_
#define P2PROXY_CRYPTO_BLAKE2S_H_

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace p2proxy::crypto {

class Blake2s {
 public:
  static constexpr size_t kBlockSize = 64;
  static constexpr size_t kMaxOutput = 32;
  static constexpr size_t kMaxKey = 32;

  // Blake2s starts a hash of |out_len| bytes (1..32), keyed if |key| is not empty (at most 32
  // bytes). Out-of-range lengths are clamped; callers pass constants.
  explicit Blake2s(size_t out_len = 32, absl::Span<const uint8_t> key = {});
  ~Blake2s();

  void Update(absl::Span<const uint8_t> data);
  // Final writes the digest (out_len bytes) to |out|, which must have room for it.
  void Final(uint8_t* out);

  // Hash is the one-shot form.
  static void Hash(uint8_t* out, size_t out_len, absl::Span<const uint8_t> data,
                   absl::Span<const uint8_t> key = {});

 private:
  void Compress(const uint8_t* block, bool last);

  uint32_t h_[8];
  uint32_t t_[2] = {0, 0};
  uint8_t buf_[kBlockSize];
  size_t buf_len_ = 0;
  size_t out_len_;
};

}  // namespace p2proxy::crypto

#endif  // P2PROXY_CRYPTO_BLAKE2S_H_
