// store.cc: the Store's error kinds, token hashing and the validation every implementation
// shares.
#include "server/store.h"

#include <openssl/sha.h>

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "control/validate.h"

namespace p2proxy::server {
namespace {

using absl::StrCat;

// kPayloadUrl names the Status payload that carries a StoreError.
constexpr absl::string_view kPayloadUrl = "type.p2proxy.dev/p2proxy.server.StoreError";

// IsUtf8: well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
bool IsUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<uint8_t>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      n = 1;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      n = 2;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      n = 3;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

absl::StatusCode CodeOf(StoreError error) {
  switch (error) {
    case StoreError::kNone: return absl::StatusCode::kOk;
    case StoreError::kInvalid: return absl::StatusCode::kInvalidArgument;
    case StoreError::kNotFound: return absl::StatusCode::kNotFound;
    case StoreError::kAlreadyExists:
    case StoreError::kNameTaken:
    case StoreError::kKeyTaken: return absl::StatusCode::kAlreadyExists;
    case StoreError::kInUse:
    case StoreError::kNewerSchema: return absl::StatusCode::kFailedPrecondition;
    case StoreError::kExhausted: return absl::StatusCode::kResourceExhausted;
    case StoreError::kTokenUnknown:
    case StoreError::kTokenExpired:
    case StoreError::kTokenUsed:
    case StoreError::kTokenWrongKind: return absl::StatusCode::kPermissionDenied;
    case StoreError::kInternal: return absl::StatusCode::kInternal;
  }
  return absl::StatusCode::kInternal;
}

constexpr StoreError kAllErrors[] = {
    StoreError::kInvalid,        StoreError::kNotFound,     StoreError::kAlreadyExists,
    StoreError::kInUse,          StoreError::kExhausted,    StoreError::kTokenUnknown,
    StoreError::kTokenExpired,   StoreError::kTokenUsed,    StoreError::kTokenWrongKind,
    StoreError::kNameTaken,      StoreError::kKeyTaken,     StoreError::kNewerSchema,
    StoreError::kInternal,
};

}  // namespace

absl::string_view StoreErrorName(StoreError error) {
  switch (error) {
    case StoreError::kNone: return "none";
    case StoreError::kInvalid: return "invalid";
    case StoreError::kNotFound: return "not_found";
    case StoreError::kAlreadyExists: return "already_exists";
    case StoreError::kInUse: return "in_use";
    case StoreError::kExhausted: return "exhausted";
    case StoreError::kTokenUnknown: return "token_unknown";
    case StoreError::kTokenExpired: return "token_expired";
    case StoreError::kTokenUsed: return "token_used";
    case StoreError::kTokenWrongKind: return "token_wrong_kind";
    case StoreError::kNameTaken: return "name_taken";
    case StoreError::kKeyTaken: return "key_taken";
    case StoreError::kNewerSchema: return "newer_schema";
    case StoreError::kInternal: return "internal";
  }
  return "internal";
}

StoreError ErrorOf(const absl::Status& status) {
  if (status.ok()) return StoreError::kNone;
  const auto payload = status.GetPayload(kPayloadUrl);
  if (!payload) return StoreError::kNone;
  for (StoreError e : kAllErrors) {
    if (*payload == StoreErrorName(e)) return e;
  }
  return StoreError::kNone;
}

absl::Status MakeStoreError(StoreError error, absl::string_view message) {
  if (error == StoreError::kNone) return absl::OkStatus();
  absl::Status status(CodeOf(error), message);
  status.SetPayload(kPayloadUrl, absl::Cord(StoreErrorName(error)));
  return status;
}

std::string HashToken(absl::string_view token) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const uint8_t*>(token.data()), token.size(),
         reinterpret_cast<uint8_t*>(digest.data()));
  return digest;
}

absl::Status ValidateName(absl::string_view what, absl::string_view value) {
  auto bad = [&](absl::string_view why) {
    return MakeStoreError(StoreError::kInvalid, StrCat(what, " ", control::QuoteForError(value), ": ", why));
  };
  if (value.empty()) return MakeStoreError(StoreError::kInvalid, StrCat(what, ": name missing"));
  if (value.size() > control::kMaxNameLen) {
    return bad(StrCat(value.size(), " bytes; a name is at most ", control::kMaxNameLen));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const auto b = static_cast<uint8_t>(value[i]);
    const bool c1 = b == 0xC2 && i + 1 < value.size() &&
                    static_cast<uint8_t>(value[i + 1]) >= 0x80 &&
                    static_cast<uint8_t>(value[i + 1]) <= 0x9F;
    if (b < 0x20 || b == 0x7F || c1) return bad(StrCat("control character at byte ", i));
    if (b == ',') return bad("a name may not hold ','");
  }
  // UTF-8, as protobuf requires of a string on the wire, so every stored name can be sent.
  if (!IsUtf8(value)) return bad("not UTF-8");
  return absl::OkStatus();
}

absl::Status ValidateResource(const wire::Resource& resource) {
  const absl::Status name_ok = ValidateName("resource", resource.name());
  if (!name_ok.ok()) return name_ok;
  const std::string who = StrCat("resource ", control::QuoteForError(resource.name()));
  auto bad = [&](absl::string_view why) {
    return MakeStoreError(StoreError::kInvalid, StrCat(who, ": ", why));
  };
  if (resource.port() == 0) return bad("port missing");
  if (resource.port() > 65535) {
    return bad(StrCat("port ", resource.port(), " is not a port (1-65535)"));
  }
  if (resource.targets_size() == 0) return bad("targets: no site serves the resource");
  for (int i = 0; i < resource.targets_size(); ++i) {
    if (resource.targets(i).address().empty()) {
      return bad(StrCat("targets[", i, "].address: missing (HOST:PORT the site forwards to)"));
    }
  }
  // The rest are control.proto's rules: check the resource as it will travel, in a snapshot.
  wire::Frame frame;
  wire::Snapshot* snapshot = frame.mutable_snapshot();
  snapshot->set_version(1);
  snapshot->mutable_site();
  wire::Resource* copy = snapshot->add_resources();
  *copy = resource;
  if (copy->address().empty()) copy->set_address("100.96.128.2");  // assigned later
  const absl::Status s = control::ValidateFrame(frame);
  if (s.ok()) return s;
  // "control: snapshot.resources[0].targets[1].site_id: ..." -> "resource 'x': targets[1]..."
  absl::string_view message = s.message();
  constexpr absl::string_view kPrefix = "control: snapshot.resources[0].";
  if (absl::StartsWith(message, kPrefix)) message.remove_prefix(kPrefix.size());
  return bad(message);
}

}  // namespace p2proxy::server
