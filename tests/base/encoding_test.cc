// Tests for hex and base64, with RFC 4648 §10 vectors.
#include "base/encoding.h"

#include <catch2/catch.hpp>
#include <string>

using namespace p2proxy::base;

namespace {
std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }
}  // namespace

TEST_CASE("base64 RFC 4648 test vectors") {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    CAPTURE(plain);
    REQUIRE(Base64Encode(Bytes(plain)) == encoded);
    auto back = Base64Decode(encoded);
    REQUIRE(back.ok());
    REQUIRE(*back == Bytes(plain));
  }
}

TEST_CASE("base64 decode is strict") {
  REQUIRE_FALSE(Base64Decode("Zg=").ok());        // length not a multiple of 4
  REQUIRE_FALSE(Base64Decode("Zh==").ok());       // non-zero bits under the padding
  REQUIRE_FALSE(Base64Decode("Zm9=").ok());       // ditto, one pad
  REQUIRE_FALSE(Base64Decode("Z===").ok());       // too much padding
  REQUIRE_FALSE(Base64Decode("Zg==Zg==").ok());   // padding in the middle
  REQUIRE_FALSE(Base64Decode("Zm 9").ok());       // whitespace
  REQUIRE_FALSE(Base64Decode("Zm-_").ok());       // URL alphabet
  auto err = Base64Decode("Zm9v!A==");
  REQUIRE(err.status().message() == "base64: unexpected character at offset 4");
}

TEST_CASE("a WireGuard key is 32 bytes as 44 base64 characters") {
  std::vector<uint8_t> key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  auto text = Base64Encode(key);
  REQUIRE(text.size() == 44);
  REQUIRE(text.back() == '=');
  REQUIRE(*Base64Decode(text) == key);
}

TEST_CASE("hex round trip and errors") {
  const uint8_t data[] = {0x00, 0x7f, 0x80, 0xff};
  REQUIRE(HexEncode(data) == "007f80ff");
  REQUIRE(*HexDecode("007F80fF") == std::vector<uint8_t>(data, data + 4));
  REQUIRE(HexDecode("abc").status().message() == "hex: odd number of digits (3)");
  REQUIRE(HexDecode("0g").status().message() == "hex: not a hex digit at offset 1");
}

TEST_CASE("ParseDecimal: digits only, bounded, no overflow") {
  uint64_t v = 7;
  REQUIRE(ParseDecimal("0", 10, &v));
  REQUIRE(v == 0);
  REQUIRE(ParseDecimal("00065535", 65535, &v));
  REQUIRE(v == 65535);
  v = 7;
  REQUIRE_FALSE(ParseDecimal("65536", 65535, &v));
  REQUIRE_FALSE(ParseDecimal("", 10, &v));
  REQUIRE_FALSE(ParseDecimal("+1", 10, &v));
  REQUIRE_FALSE(ParseDecimal("1 ", 10, &v));
  REQUIRE_FALSE(ParseDecimal("18446744073709551616", UINT64_MAX, &v));
  REQUIRE(v == 7);
  REQUIRE(ParseDecimal("18446744073709551615", UINT64_MAX, &v));
  REQUIRE(v == UINT64_MAX);
}
