// blake2s.cc: BLAKE2s per RFC 7693 §3, written for clarity; WireGuard hashes only short inputs.
#include "crypto/blake2s.h"

#include <openssl/mem.h>

#include <algorithm>
#include <cstring>

namespace p2proxy::crypto {
namespace {

// RFC 7693 §2.6: the IV is SHA-256's.
constexpr uint32_t kIv[8] = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                             0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

// RFC 7693 §2.7: message word permutations, one row per round.
constexpr uint8_t kSigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

inline uint32_t Load32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// The mixing function G (RFC 7693 §3.1) with BLAKE2s's rotations 16, 12, 8, 7.
inline void G(uint32_t v[16], int a, int b, int c, int d, uint32_t x, uint32_t y) {
  v[a] = v[a] + v[b] + x;
  v[d] = Rotr(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = Rotr(v[b] ^ v[c], 12);
  v[a] = v[a] + v[b] + y;
  v[d] = Rotr(v[d] ^ v[a], 8);
  v[c] = v[c] + v[d];
  v[b] = Rotr(v[b] ^ v[c], 7);
}

}  // namespace

Blake2s::Blake2s(size_t out_len, absl::Span<const uint8_t> key)
    : out_len_(std::clamp<size_t>(out_len, 1, kMaxOutput)) {
  const size_t key_len = std::min(key.size(), kMaxKey);
  std::memcpy(h_, kIv, sizeof(h_));
  // Parameter block: digest length, key length, fanout 1, depth 1.
  h_[0] ^= 0x01010000u ^ static_cast<uint32_t>(key_len << 8) ^ static_cast<uint32_t>(out_len_);
  std::memset(buf_, 0, sizeof(buf_));
  if (key_len > 0) {
    // A keyed hash starts with the key padded to one full block.
    std::memcpy(buf_, key.data(), key_len);
    buf_len_ = kBlockSize;
  }
}

Blake2s::~Blake2s() {
  OPENSSL_cleanse(h_, sizeof(h_));
  OPENSSL_cleanse(buf_, sizeof(buf_));
}

void Blake2s::Compress(const uint8_t* block, bool last) {
  uint32_t m[16], v[16];
  for (int i = 0; i < 16; ++i) m[i] = Load32(block + 4 * i);
  for (int i = 0; i < 8; ++i) {
    v[i] = h_[i];
    v[i + 8] = kIv[i];
  }
  v[12] ^= t_[0];
  v[13] ^= t_[1];
  if (last) v[14] = ~v[14];
  for (const auto& s : kSigma) {
    G(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
    G(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
    G(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
    G(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
    G(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
    G(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
    G(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
    G(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (int i = 0; i < 8; ++i) h_[i] ^= v[i] ^ v[i + 8];
  OPENSSL_cleanse(m, sizeof(m));
  OPENSSL_cleanse(v, sizeof(v));
}

void Blake2s::Update(absl::Span<const uint8_t> data) {
  const uint8_t* in = data.data();
  size_t len = data.size();
  while (len > 0) {
    // A full buffer is compressed only when more input follows: the last block is special.
    if (buf_len_ == kBlockSize) {
      t_[0] += kBlockSize;
      if (t_[0] < kBlockSize) ++t_[1];
      Compress(buf_, false);
      buf_len_ = 0;
    }
    size_t take = std::min(len, kBlockSize - buf_len_);
    std::memcpy(buf_ + buf_len_, in, take);
    buf_len_ += take;
    in += take;
    len -= take;
  }
}

void Blake2s::Final(uint8_t* out) {
  t_[0] += static_cast<uint32_t>(buf_len_);
  if (t_[0] < buf_len_) ++t_[1];
  std::memset(buf_ + buf_len_, 0, kBlockSize - buf_len_);
  Compress(buf_, true);
  uint8_t full[32];
  for (int i = 0; i < 8; ++i) {
    full[4 * i] = static_cast<uint8_t>(h_[i]);
    full[4 * i + 1] = static_cast<uint8_t>(h_[i] >> 8);
    full[4 * i + 2] = static_cast<uint8_t>(h_[i] >> 16);
    full[4 * i + 3] = static_cast<uint8_t>(h_[i] >> 24);
  }
  std::memcpy(out, full, out_len_);
  OPENSSL_cleanse(full, sizeof(full));
}

void Blake2s::Hash(uint8_t* out, size_t out_len, absl::Span<const uint8_t> data,
                   absl::Span<const uint8_t> key) {
  Blake2s h(out_len, key);
  h.Update(data);
  h.Final(out);
}

}  // namespace p2proxy::crypto
