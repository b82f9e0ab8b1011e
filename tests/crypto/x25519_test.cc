// X25519 known answers (RFC 7748 §5.2 and §6.1).
#include "crypto/x25519.h"

#include <catch2/catch.hpp>

#include "base/encoding.h"

using namespace p2proxy;
using namespace p2proxy::crypto;

namespace {
Key K(const char* hex) { return Key(base::HexDecode(hex).value()); }
PublicKey P(const char* hex) {
  auto v = base::HexDecode(hex).value();
  PublicKey p;
  std::copy(v.begin(), v.end(), p.begin());
  return p;
}
}  // namespace

TEST_CASE("X25519 scalar multiplication (RFC 7748 §5.2)") {
  Key out;
  REQUIRE(SharedSecret(K("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                       P("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"), &out));
  REQUIRE(base::HexEncode(out.span()) == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
}

TEST_CASE("X25519 Diffie-Hellman (RFC 7748 §6.1)") {
  Key alice = K("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  Key bob = K("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  PublicKey alice_pub = PublicFromPrivate(alice), bob_pub = PublicFromPrivate(bob);
  REQUIRE(base::HexEncode(alice_pub) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  REQUIRE(base::HexEncode(bob_pub) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  Key s1, s2;
  REQUIRE(SharedSecret(alice, bob_pub, &s1));
  REQUIRE(SharedSecret(bob, alice_pub, &s2));
  REQUIRE(s1.Equals(s2));
  REQUIRE(base::HexEncode(s1.span()) == "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
}

TEST_CASE("X25519 rejects a low-order point (all-zero shared secret)") {
  Key priv;
  GeneratePrivateKey(&priv);
  PublicKey zero{};
  Key out;
  REQUIRE_FALSE(SharedSecret(priv, zero, &out));
}

TEST_CASE("generated private keys are clamped") {
  Key k;
  GeneratePrivateKey(&k);
  REQUIRE((k.data()[0] & 7) == 0);
  REQUIRE((k.data()[31] & 128) == 0);
  REQUIRE((k.data()[31] & 64) == 64);
}
