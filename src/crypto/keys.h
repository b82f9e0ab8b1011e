// keys.h: WireGuard keys in their standard base64 form (44 characters), so `wg genkey`,
// `wg pubkey` and configs written for wg-quick work unchanged.
#ifndef P2PROXY_CRYPTO_KEYS_H_
#define P2PROXY_CRYPTO_KEYS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret.h"

namespace p2proxy::crypto {

// ParseKey reads a 32-byte key from base64 (surrounding whitespace allowed). The error names
// what is wrong but never echoes the text (it may be a private key).
absl::StatusOr<Key> ParseKey(absl::string_view base64);
absl::StatusOr<PublicKey> ParsePublicKey(absl::string_view base64);
// KeyToBase64 is the inverse.
std::string KeyToBase64(absl::Span<const uint8_t> key);

}  // namespace p2proxy::crypto

#endif  // P2PROXY_CRYPTO_KEYS_H_
