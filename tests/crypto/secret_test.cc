// SecretString: copies are independent, moves and Clear leave nothing behind, Equals compares.
#include "crypto/secret.h"

#include <catch2/catch.hpp>

#include <string>

using p2proxy::crypto::SecretString;

TEST_CASE("SecretString: copies hold the text, moved-from and cleared ones are empty") {
  const std::string pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";
  SecretString a(pem);
  SecretString b = a;
  REQUIRE(b.view() == pem);
  REQUIRE(a.Equals(b));
  SecretString c = std::move(a);
  REQUIRE(c.view() == pem);
  REQUIRE(a.empty());  // NOLINT(bugprone-use-after-move): moving wipes the source
  b.Clear();
  REQUIRE(b.empty());
  REQUIRE_FALSE(b.Equals(c));
  SecretString d("other");
  d = c;
  REQUIRE(d.Equals(c));
  d = SecretString("x");
  REQUIRE(d.view() == "x");
  REQUIRE_FALSE(SecretString("abc").Equals(SecretString("abd")));
  REQUIRE_FALSE(SecretString("abc").Equals(SecretString("abcd")));
}
