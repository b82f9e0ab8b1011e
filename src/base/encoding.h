// encoding.h: hex and base64 (RFC 4648, standard alphabet with padding), strict on decode:
// WireGuard keys and config values must have exactly one spelling.
#ifndef P2PROXY_BASE_ENCODING_H_
#define P2PROXY_BASE_ENCODING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace p2proxy::base {

// HexEncode returns lowercase hex of |data|.
std::string HexEncode(absl::Span<const uint8_t> data);
// HexDecode accepts an even number of hex digits (either case); anything else is
// InvalidArgument naming the offset of the first bad character.
absl::StatusOr<std::vector<uint8_t>> HexDecode(absl::string_view hex);

// Base64Encode returns padded standard base64 of |data|.
std::string Base64Encode(absl::Span<const uint8_t> data);
// Base64Decode accepts only canonical padded base64: length a multiple of 4, padding only at
// the end, unused bits zero, no whitespace. Otherwise InvalidArgument.
absl::StatusOr<std::vector<uint8_t>> Base64Decode(absl::string_view text);

// ParseDecimal accepts one or more ASCII digits (leading zeros allowed) whose value is at most
// |max|: no sign, no spaces, no overflow. False otherwise, leaving |out| unchanged.
bool ParseDecimal(absl::string_view text, uint64_t max, uint64_t* out);

}  // namespace p2proxy::base

#endif  // P2PROXY_BASE_ENCODING_H_
