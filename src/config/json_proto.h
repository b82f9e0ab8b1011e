// json_proto.h: strict JSON config files whose schema is a protobuf message (DESIGN.md §8), and
// the small helpers every role's validation uses to name a field's path in its errors.
#ifndef P2PROXY_CONFIG_JSON_PROTO_H_
#define P2PROXY_CONFIG_JSON_PROTO_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/address.h"
#include "base/ip_prefix.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace p2proxy::config {

// kMaxConfigLen bounds the input: a config with thousands of resources is a few hundred KiB.
inline constexpr size_t kMaxConfigLen = size_t{1} << 20;
// kMaxDepth bounds nesting (and so recursion). The site's schema needs 4: the root object, a
// list, an object in it, and a list of strings in that.
inline constexpr int kMaxDepth = 16;
// kMaxEchoLen bounds how much of a bad value an error repeats; every valid address is shorter.
inline constexpr size_t kMaxEchoLen = 64;

// JsonOptions are ParseStrictJson's limits.
struct JsonOptions {
  size_t max_len = kMaxConfigLen;  // bytes, byte order mark included
  int max_depth = kMaxDepth;       // objects and lists, the root object counting as 1
};

// ParseStrictJson reads |text| (UTF-8 JSON, at most |options.max_len| bytes; a UTF-8 byte order
// mark is skipped) into |out| through protobuf's JSON mapping, against |out|'s own descriptor.
// Field names may be written as in the .proto ("listen_port") or in protobuf's JSON spelling
// ("listenPort"); integers may be JSON numbers or decimal strings; a missing field or null
// leaves the field at its default. It checks only syntax and shape; the caller validates the
// values.
//
// Stricter than protobuf's JSON parser: the text must be RFC 8259 JSON (no comments, trailing
// commas, single quotes or bare keys), a field may appear only once in an object (in either
// spelling), a list must be given exactly where the schema has a repeated field, and a list may
// not contain null. Unknown fields are errors. Schemas with map fields or the JSON-special
// well-known types (Struct, Value, ListValue, Any) are not supported: the shape check would
// demand a list for a map.
//
// Failure: InvalidArgument with one line starting "config: " that names the field by its JSON
// path with indexes ("config: resources[2].port: expected a non-negative integer, got -1"), or
// for a syntax error its line and column. The input is never quoted, except a field name that
// looks like one (LooksLikeName), so keys in the text stay out of messages. |out| may hold part
// of the input on failure: a caller whose message holds secrets wipes it either way.
absl::Status ParseStrictJson(absl::string_view text, google::protobuf::Message* out,
                             const JsonOptions& options = {});

// ConfigError gives InvalidArgument "config: PATH: WHAT", or "config: WHAT" for an empty path.
absl::Status ConfigError(absl::string_view path, absl::string_view what);

// JoinPath gives "PATH.NAME", or NAME alone for an empty path.
std::string JoinPath(absl::string_view path, absl::string_view name);
// IndexPath gives "PATH[INDEX]", e.g. "resources[2]".
std::string IndexPath(absl::string_view path, size_t index);

// LooksLikeKey is true if |value| has a run of 32 or more base64 characters: a WireGuard key
// (44 base64 characters) or a hex one (64) pasted into the wrong field. No address has one.
bool LooksLikeKey(absl::string_view value);

// LooksLikeName is true for what a field name looks like: 1 to 32 letters, digits, '_' or '-'.
// Only such names are repeated in "unknown field" errors, so a key pasted where a field name
// goes (44 characters) is not.
bool LooksLikeName(absl::string_view name);

// Quote repeats a value in single quotes, cut to kMaxEchoLen bytes (at a UTF-8 boundary) and
// with control characters, quotes and backslashes escaped, so a message stays one line. A value
// that looks like a key is not repeated. Never call it on a key field.
std::string Quote(absl::string_view value);

// CheckPlain rejects values that no address can be, before base's parsers repeat them whole in
// their errors: too long (over kMaxEchoLen), with a character that is not printable ASCII, or
// like a key. The error is "config: PATH: 'VALUE' is not WHAT".
absl::Status CheckPlain(absl::string_view value, absl::string_view path, absl::string_view what);

// ParseIpv4 reads an IPv4 address without a prefix length ("100.96.0.10"). An empty |value| is
// the error "config: PATH: MISSING"; IPv6, a prefix or anything else is an error naming |path|.
absl::StatusOr<base::IpAddress> ParseIpv4(absl::string_view value, absl::string_view path,
                                          absl::string_view missing);

// ParseHostPort reads "IPv4:port" or "[IPv6]:port" with an IP literal (a host name is an error
// that says it is not supported yet) and a port of 1 to 65535. An empty |value| is the error
// "config: PATH: MISSING".
absl::StatusOr<base::SocketAddress> ParseHostPort(absl::string_view value, absl::string_view path,
                                                  absl::string_view missing);

}  // namespace p2proxy::config

#endif  // P2PROXY_CONFIG_JSON_PROTO_H_
