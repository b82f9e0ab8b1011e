// keys.cc: base64 keys.
#include "crypto/keys.h"

#include <openssl/mem.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/encoding.h"

namespace p2proxy::crypto {

absl::StatusOr<Key> ParseKey(absl::string_view base64) {
  base64 = absl::StripAsciiWhitespace(base64);
  if (base64.size() != 44) {
    return absl::InvalidArgumentError(
        absl::StrCat("key: expected 44 base64 characters, got ", base64.size()));
  }
  auto bytes = base::Base64Decode(base64);
  if (!bytes.ok() || bytes->size() != 32) {
    if (bytes.ok()) OPENSSL_cleanse(bytes->data(), bytes->size());
    return absl::InvalidArgumentError("key: not a base64-encoded 32-byte key");
  }
  Key key(*bytes);
  OPENSSL_cleanse(bytes->data(), bytes->size());
  return key;
}

absl::StatusOr<PublicKey> ParsePublicKey(absl::string_view base64) {
  auto key = ParseKey(base64);
  if (!key.ok()) return key.status();
  PublicKey pub;
  std::copy(key->data(), key->data() + 32, pub.begin());
  return pub;
}

std::string KeyToBase64(absl::Span<const uint8_t> key) { return base::Base64Encode(key); }

}  // namespace p2proxy::crypto
