// ChaCha20-Poly1305 known answer (RFC 8439 §2.8.2) and WireGuard's nonce layout.
#include "crypto/aead.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "base/encoding.h"

using namespace p2proxy;
using namespace p2proxy::crypto;

namespace {
std::vector<uint8_t> Hex(const char* s) { return base::HexDecode(s).value(); }
}  // namespace

TEST_CASE("ChaCha20-Poly1305 AEAD (RFC 8439 §2.8.2)") {
  Key key(Hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"));
  auto nonce = Hex("070000004041424344454647");
  auto ad = Hex("50515253c0c1c2c3c4c5c6c7");
  std::string pt_text =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
      "future, sunscreen would be it.";
  std::vector<uint8_t> pt(pt_text.begin(), pt_text.end());
  const char* want =
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b"
      "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
      "3ff4def08e4b7a9de576d26586cec64b6116"
      "1ae10b594f09e26a7e902ecbd0600691";
  ChaChaPoly aead(key);
  std::vector<uint8_t> ct(pt.size() + kAeadTagSize);
  REQUIRE(aead.SealWithNonce(nonce.data(), pt, ad, ct.data()));
  REQUIRE(base::HexEncode(ct) == want);
  std::vector<uint8_t> back(pt.size());
  REQUIRE(aead.OpenWithNonce(nonce.data(), ct, ad, back.data()));
  REQUIRE(back == pt);
  ct[5] ^= 1;
  REQUIRE_FALSE(aead.OpenWithNonce(nonce.data(), ct, ad, back.data()));
}

TEST_CASE("the WireGuard nonce is 4 zero bytes then the counter, little endian") {
  Key key(Hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"));
  ChaChaPoly aead(key);
  const uint64_t counter = 0x0706050403020100ull;
  auto nonce = Hex("000000000001020304050607");
  std::vector<uint8_t> pt(33, 0x42), a(pt.size() + 16), b(pt.size() + 16);
  REQUIRE(aead.Seal(counter, pt, {}, a.data()));
  REQUIRE(aead.SealWithNonce(nonce.data(), pt, {}, b.data()));
  REQUIRE(a == b);
  // In place, and a wrong counter or a truncated message does not open.
  std::vector<uint8_t> buf = a;
  REQUIRE(aead.Open(counter, buf, {}, buf.data()));
  REQUIRE(std::vector<uint8_t>(buf.begin(), buf.begin() + 33) == pt);
  REQUIRE_FALSE(aead.Open(counter + 1, a, {}, buf.data()));
  REQUIRE_FALSE(aead.Open(counter, absl::MakeConstSpan(a.data(), 15), {}, buf.data()));
}

TEST_CASE("XChaCha20-Poly1305 round trip, and tampering or a wrong nonce fails") {
  Key key(Hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
  auto nonce = Hex("404142434445464748494a4b4c4d4e4f5051525354555657");
  std::vector<uint8_t> cookie(16, 0x11), ad(16, 0x22), sealed(32), opened(16);
  REQUIRE(XSeal(key, nonce.data(), cookie, ad, sealed.data()));
  REQUIRE(XOpen(key, nonce.data(), sealed, ad, opened.data()));
  REQUIRE(opened == cookie);
  nonce[0] ^= 1;
  REQUIRE_FALSE(XOpen(key, nonce.data(), sealed, ad, opened.data()));
}
