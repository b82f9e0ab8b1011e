// HMAC-BLAKE2s and the WireGuard KDF, checked against their definitions (RFC 2104 built from
// BLAKE2s) and against the first steps of the Noise_IKpsk2 handshake that every WireGuard
// implementation shares.
#include "crypto/kdf.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "base/encoding.h"
#include "crypto/blake2s.h"

using namespace p2proxy;
using namespace p2proxy::crypto;

namespace {
absl::Span<const uint8_t> S(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
}  // namespace

TEST_CASE("HMAC-BLAKE2s follows RFC 2104 with a 64-byte block") {
  const std::string key = "key", msg = "The quick brown fox jumps over the lazy dog";
  uint8_t got[32];
  HmacBlake2s(got, S(key), S(msg));
  // Build it by hand: H((K ^ opad) || H((K ^ ipad) || m)).
  uint8_t k[64] = {0}, ipad[64], opad[64], inner[32], want[32];
  std::memcpy(k, key.data(), key.size());
  for (int i = 0; i < 64; ++i) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  Blake2s hi(32);
  hi.Update(ipad);
  hi.Update(S(msg));
  hi.Final(inner);
  Blake2s ho(32);
  ho.Update(opad);
  ho.Update(inner);
  ho.Final(want);
  REQUIRE(base::HexEncode(got) == base::HexEncode(want));
  // A long key is hashed first.
  std::string long_key(100, 'k');
  uint8_t hashed_key[32], a[32], b[32];
  Blake2s::Hash(hashed_key, 32, S(long_key));
  HmacBlake2s(a, S(long_key), S(msg));
  HmacBlake2s(b, hashed_key, S(msg));
  REQUIRE(std::memcmp(a, b, 32) == 0);
}

TEST_CASE("the Noise construction constants hash to WireGuard's initial chaining key and hash") {
  // Ci = HASH("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"); Hi = HASH(Ci || "WireGuard v1 zx2c4 Jason@zx2c4.com")
  uint8_t ck[32], h[32];
  Hash256(ck, S("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"));
  Hash256(h, ck, S("WireGuard v1 zx2c4 Jason@zx2c4.com"));
  REQUIRE(base::HexEncode(ck) == "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
  REQUIRE(base::HexEncode(h) == "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
}

TEST_CASE("KDF outputs chain as the Noise framework defines") {
  Key ck;
  for (size_t i = 0; i < 32; ++i) ck.data()[i] = static_cast<uint8_t>(i);
  const std::string input = "input key material";
  Key k1, k2, k3, only1;
  Kdf(ck, S(input), &k1, &k2, &k3);
  Kdf(ck, S(input), &only1);
  REQUIRE(k1.Equals(only1));
  uint8_t t0[32], t1[32], t2[32], t3[32], buf[33];
  HmacBlake2s(t0, ck.span(), S(input));
  const uint8_t one = 1;
  HmacBlake2s(t1, t0, absl::MakeConstSpan(&one, 1));
  std::memcpy(buf, t1, 32);
  buf[32] = 2;
  HmacBlake2s(t2, t0, buf);
  std::memcpy(buf, t2, 32);
  buf[32] = 3;
  HmacBlake2s(t3, t0, buf);
  REQUIRE(std::memcmp(k1.data(), t1, 32) == 0);
  REQUIRE(std::memcmp(k2.data(), t2, 32) == 0);
  REQUIRE(std::memcmp(k3.data(), t3, 32) == 0);
  // The chaining key may be one of the outputs.
  Key ck2 = ck;
  Kdf(ck2, S(input), &ck2, &k2);
  REQUIRE(ck2.Equals(k1));
}
