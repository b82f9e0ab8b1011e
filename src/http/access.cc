// access.cc: AccessPolicy evaluation and request-target normalization.
#include "http/access.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace p2proxy::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsControl(uint8_t c) { return c < 0x20 || c == 0x7f; }

char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualBytes(std::string_view a, std::string_view b, bool case_insensitive) {
  if (a.size() != b.size()) return false;
  if (!case_insensitive) return a == b;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

// StartsAnotherEscape: a decoded '%' at |seg|[i] followed by what a second decoding would take
// as an escape: two hex digits, or IIS's "u" and four.
bool StartsAnotherEscape(std::string_view seg, size_t i) {
  if (i + 2 < seg.size() && HexValue(seg[i + 1]) >= 0 && HexValue(seg[i + 2]) >= 0) return true;
  if (i + 5 < seg.size() && (seg[i + 1] == 'u' || seg[i + 1] == 'U')) {
    for (size_t k = i + 2; k < i + 6; ++k) {
      if (HexValue(seg[k]) < 0) return false;
    }
    return true;
  }
  return false;
}

// CheckUtf8 validates |seg| as UTF-8 (RFC 3629: shortest form only, no surrogates, at most
// U+10FFFF). With |case_insensitive| it also refuses the code points whose case mapping is an
// ASCII letter, which a Unicode-folding app would match against an ASCII rule.
TargetError CheckUtf8(std::string_view seg, bool case_insensitive) {
  size_t i = 0;
  while (i < seg.size()) {
    const uint8_t b0 = static_cast<uint8_t>(seg[i]);
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    // The lead byte gives the length and the smallest code point that needs it.
    size_t len = 0;
    uint32_t min = 0;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      len = 2;
      min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      len = 3;
      min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      len = 4;
      min = 0x10000;
    } else {
      return TargetError::kBadUtf8;  // a continuation byte, or a lead byte of an overlong form
    }
    uint32_t cp = b0 & (0x7f >> len);
    if (seg.size() - i < len) return TargetError::kBadUtf8;
    for (size_t k = 1; k < len; ++k) {
      const uint8_t b = static_cast<uint8_t>(seg[i + k]);
      if ((b & 0xc0) != 0x80) return TargetError::kBadUtf8;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return TargetError::kBadUtf8;
    if (case_insensitive && (cp == 0x130 || cp == 0x131 || cp == 0x17f || cp == 0x212a)) {
      return TargetError::kCaseFoldsToAscii;
    }
    i += len;
  }
  return TargetError::kNone;
}

// AppendSegment decodes one raw segment (its parameters already cut off) onto |out| after a
// '/', checking each byte as the top of access.h says.
TargetError AppendSegment(std::string_view raw, std::string* out) {
  out->push_back('/');
  const size_t start = out->size();
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return TargetError::kBadEscape;
      const int hi = HexValue(raw[i + 1]);
      const int lo = HexValue(raw[i + 2]);
      if (hi < 0 || lo < 0) return TargetError::kBadEscape;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
      if (c == '/' || c == '\\') return TargetError::kEncodedSlash;
      if (c == ';') return TargetError::kEncodedSemicolon;
    } else if (c == '\\') {
      return TargetError::kBackslash;
    }
    if (IsControl(static_cast<uint8_t>(c))) return TargetError::kControlByte;
    out->push_back(c);
  }
  std::string_view seg = std::string_view(*out).substr(start);
  for (size_t i = 0; i < seg.size(); ++i) {
    if (seg[i] == '%' && StartsAnotherEscape(seg, i)) return TargetError::kDoubleEncoded;
  }
  return TargetError::kNone;
}

// Keep: the bytes forwarded without an escape in a path segment: RFC 3986's unreserved
// characters, sub-delims but ';' (which would start a parameter), ':' and '@'.
bool Keep(uint8_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-': case '.': case '_': case '~':
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+': case ',': case '=':
    case ':': case '@':
      return true;
    default:
      return false;
  }
}

// AppendCanonical re-encodes the normalized |path| onto |out|.
void AppendCanonical(std::string_view path, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : path) {
    const uint8_t c = static_cast<uint8_t>(ch);
    if (c == '/' || Keep(c)) {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
}

std::string Describe(const Identity& who) {
  if (who.user.empty()) {
    return who.peer_key.empty() ? std::string("unknown peer") : absl::StrCat("peer ", who.peer_key, " (no user)");
  }
  return absl::StrCat("user '", who.user, "'");
}

}  // namespace

const char* TargetErrorText(TargetError error) {
  switch (error) {
    case TargetError::kNone: return "none";
    case TargetError::kNotOriginForm: return "not in origin-form (\"/path\")";
    case TargetError::kAsteriskNotOptions: return "'*' is only for OPTIONS";
    case TargetError::kBadEscape: return "a bad percent-escape";
    case TargetError::kEncodedSlash: return "an encoded '/' or '\\' (%2F, %5C)";
    case TargetError::kBackslash: return "a backslash";
    case TargetError::kEncodedSemicolon: return "an encoded ';' (%3B)";
    case TargetError::kControlByte: return "a control byte";
    case TargetError::kDoubleEncoded: return "a double-encoded escape (%25 followed by hex)";
    case TargetError::kBadUtf8: return "invalid or overlong UTF-8";
    case TargetError::kAboveRoot: return "'..' above the root";
    case TargetError::kCaseFoldsToAscii: return "a letter whose case folds to ASCII (U+0130, U+0131, U+017F, U+212A)";
    case TargetError::kTrailingDotOrSpace: return "a segment ending in '.' or ' '";
    case TargetError::kBadQuery: return "a control byte or space in the query";
  }
  return "unknown";
}

TargetError NormalizeTarget(std::string_view method, std::string_view target, bool case_insensitive,
                            NormalTarget* out) {
  out->path.clear();
  out->target.clear();
  if (target == "*") {
    if (method != "OPTIONS") return TargetError::kAsteriskNotOptions;
    out->path = "/";
    out->target = "*";
    return TargetError::kNone;
  }
  if (target.empty() || target.front() != '/') return TargetError::kNotOriginForm;
  target = target.substr(0, target.find('#'));
  const size_t q = target.find('?');
  std::string_view raw = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q);
  for (char c : query) {
    if (IsControl(static_cast<uint8_t>(c)) || c == ' ') return TargetError::kBadQuery;
  }

  std::string& path = out->path;
  path.reserve(raw.size());
  // starts: where each kept segment's '/' sits in |path|, so ".." can cut the last one off.
  std::vector<size_t> starts;
  bool trailing_slash = false;
  raw.remove_prefix(1);
  for (;;) {
    const size_t slash = raw.find('/');
    std::string_view seg = raw.substr(0, slash);
    seg = seg.substr(0, seg.find(';'));  // path parameters go before anything else
    const size_t start = path.size();
    if (TargetError e = AppendSegment(seg, &path); e != TargetError::kNone) return e;
    std::string_view decoded = std::string_view(path).substr(start + 1);
    trailing_slash = false;
    if (decoded.empty() || decoded == ".") {
      path.resize(start);
      trailing_slash = true;
    } else if (decoded == "..") {
      if (starts.empty()) return TargetError::kAboveRoot;
      path.resize(starts.back());
      starts.pop_back();
      trailing_slash = true;
    } else {
      if (TargetError e = CheckUtf8(decoded, case_insensitive); e != TargetError::kNone) return e;
      if (case_insensitive && (decoded.back() == '.' || decoded.back() == ' ')) {
        return TargetError::kTrailingDotOrSpace;
      }
      starts.push_back(start);
    }
    if (slash == std::string_view::npos) break;
    raw.remove_prefix(slash + 1);
  }
  if (path.empty() || trailing_slash) path.push_back('/');

  out->target.reserve(path.size() + query.size() + 8);
  AppendCanonical(path, &out->target);
  out->target.append(query);
  return TargetError::kNone;
}

bool PrefixCovers(std::string_view prefix, std::string_view path, bool case_insensitive) {
  // A trailing '/' does not narrow a rule: "/admin/" covers "/admin" too, which most apps
  // serve (or redirect) as the same resource.
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  if (prefix.empty()) return true;
  if (path.size() < prefix.size() || !EqualBytes(prefix, path.substr(0, prefix.size()), case_insensitive)) {
    return false;
  }
  return path.size() == prefix.size() || path[prefix.size()] == '/' || path[prefix.size()] == '.';
}

bool Matches(const Grant& grant, const Identity& who) {
  if (who.user.empty()) return false;
  for (const auto& u : grant.users) {
    if (u == "*" || u == who.user) return true;
  }
  for (const auto& r : grant.roles) {
    if (std::find(who.roles.begin(), who.roles.end(), r) != who.roles.end()) return true;
  }
  return false;
}

AccessDecision CheckConnection(const AccessPolicy& policy, const Identity& who) {
  AccessDecision d;
  d.allowed = Matches(policy.grant, who);
  if (!d.allowed) d.reason = absl::StrCat(Describe(who), " is not allowed on this resource");
  return d;
}

std::optional<std::string> NormalizePath(std::string_view target, bool case_insensitive) {
  NormalTarget t;
  if (NormalizeTarget("GET", target, case_insensitive, &t) != TargetError::kNone) return std::nullopt;
  return std::move(t.path);
}

AccessDecision CheckRequest(const AccessPolicy& policy, const Identity& who, std::string_view method,
                            std::string_view target) {
  if (!Matches(policy.grant, who)) return CheckConnection(policy, who);
  AccessDecision d;
  NormalTarget t;
  if (TargetError e = NormalizeTarget(method, target, policy.case_insensitive_paths, &t); e != TargetError::kNone) {
    d.bad_request = true;
    d.reason = absl::StrCat("bad request target: ", TargetErrorText(e));
    return d;
  }
  const PathRule* best = nullptr;
  size_t best_len = 0;
  for (const auto& rule : policy.paths) {
    std::string_view p = rule.prefix;
    while (!p.empty() && p.back() == '/') p.remove_suffix(1);
    if ((best == nullptr || p.size() > best_len) && PrefixCovers(p, t.path, policy.case_insensitive_paths)) {
      best = &rule;
      best_len = p.size();
    }
  }
  if (best != nullptr && !Matches(best->grant, who)) {
    d.reason = absl::StrCat(Describe(who), " is not allowed under ", best->prefix);
    return d;
  }
  d.allowed = true;
  d.target = std::move(t.target);
  return d;
}

}  // namespace p2proxy::http
