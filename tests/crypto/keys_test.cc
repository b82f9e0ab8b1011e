// Base64 keys interoperate with wireguard-tools: `wg pubkey` of a known private key.
#include "crypto/keys.h"

#include <catch2/catch.hpp>

#include "crypto/x25519.h"

using namespace p2proxy::crypto;

TEST_CASE("a private key in wg's base64 form gives the public key wg pubkey prints") {
  // RFC 7748 §6.1's Alice, in base64: d3bm... and her public key.
  auto priv = ParseKey("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");
  REQUIRE(priv.ok());
  auto pub = PublicFromPrivate(*priv);
  REQUIRE(KeyToBase64(pub) == "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
  REQUIRE(ParsePublicKey(" hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n").value() == pub);
}

TEST_CASE("bad keys are refused without echoing them") {
  auto short_key = ParseKey("abc=");
  REQUIRE(short_key.status().message() == "key: expected 44 base64 characters, got 4");
  auto bad = ParseKey("!wdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");
  REQUIRE(bad.status().message() == "key: not a base64-encoded 32-byte key");
}
