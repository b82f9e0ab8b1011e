// BLAKE2s known answers from RFC 7693 (Appendix B, and the Appendix E self-test).
#include "crypto/blake2s.h"

#include <catch2/catch.hpp>

#include "base/encoding.h"

using namespace p2proxy;
using p2proxy::crypto::Blake2s;

namespace {

// RFC 7693 Appendix E: a Fibonacci-style deterministic byte sequence.
void SelftestSeq(uint8_t* out, size_t len, uint32_t seed) {
  uint32_t a = 0xDEAD4BAD * seed, b = 1;
  for (size_t i = 0; i < len; ++i) {
    uint32_t t = a + b;
    a = b;
    b = t;
    out[i] = static_cast<uint8_t>(t >> 24);
  }
}

}  // namespace

TEST_CASE("BLAKE2s-256 of \"abc\" (RFC 7693 Appendix B)") {
  const uint8_t abc[] = {'a', 'b', 'c'};
  uint8_t out[32];
  Blake2s::Hash(out, 32, abc);
  REQUIRE(base::HexEncode(out) == "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
}

TEST_CASE("BLAKE2s-256 of the empty input") {
  uint8_t out[32];
  Blake2s::Hash(out, 32, {});
  REQUIRE(base::HexEncode(out) == "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9");
}

TEST_CASE("BLAKE2s self-test: keyed and unkeyed, all lengths (RFC 7693 Appendix E)") {
  const size_t md_lens[] = {16, 20, 28, 32};
  const size_t in_lens[] = {0, 3, 64, 65, 255, 1024};
  uint8_t in[1024], md[32], key[32];
  Blake2s grand(32);
  for (size_t outlen : md_lens) {
    for (size_t inlen : in_lens) {
      SelftestSeq(in, inlen, static_cast<uint32_t>(inlen));
      Blake2s::Hash(md, outlen, absl::MakeConstSpan(in, inlen));
      grand.Update(absl::MakeConstSpan(md, outlen));
      SelftestSeq(key, outlen, static_cast<uint32_t>(outlen));
      Blake2s::Hash(md, outlen, absl::MakeConstSpan(in, inlen), absl::MakeConstSpan(key, outlen));
      grand.Update(absl::MakeConstSpan(md, outlen));
    }
  }
  uint8_t result[32];
  grand.Final(result);
  REQUIRE(base::HexEncode(result) == "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe");
}

TEST_CASE("BLAKE2s gives the same digest however the input is split") {
  uint8_t in[300];
  SelftestSeq(in, sizeof(in), 7);
  uint8_t whole[32], pieces[32];
  Blake2s::Hash(whole, 32, in);
  Blake2s h(32);
  h.Update(absl::MakeConstSpan(in, 64));   // exactly one block, then more
  h.Update(absl::MakeConstSpan(in + 64, 1));
  h.Update(absl::MakeConstSpan(in + 65, 0));
  h.Update(absl::MakeConstSpan(in + 65, 235));
  h.Final(pieces);
  REQUIRE(std::equal(whole, whole + 32, pieces));
}
