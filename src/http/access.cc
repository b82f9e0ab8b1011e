// access.cc: AccessPolicy evaluation.
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

// PrefixCovers: |prefix| covers |path| when it is equal, or a prefix followed by "/" (or the
// prefix itself ends in "/").
bool PrefixCovers(std::string_view prefix, std::string_view path) {
  if (prefix.empty() || prefix == "/") return true;
  if (path.substr(0, prefix.size()) != prefix) return false;
  if (path.size() == prefix.size()) return true;
  return prefix.back() == '/' || path[prefix.size()] == '/';
}

std::string Describe(const Identity& who) {
  if (who.user.empty()) {
    return who.peer_key.empty() ? std::string("unknown peer") : absl::StrCat("peer ", who.peer_key, " (no user)");
  }
  return absl::StrCat("user '", who.user, "'");
}

}  // namespace

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
  if (Matches(policy.grant, who)) return {true, ""};
  return {false, absl::StrCat(Describe(who), " is not allowed on this resource")};
}

std::optional<std::string> NormalizePath(std::string_view target) {
  const size_t q = target.find_first_of("?#");
  std::string_view raw = target.substr(0, q);
  if (raw.empty() || raw.front() != '/') return std::nullopt;
  std::string decoded;
  decoded.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return std::nullopt;
      const int hi = HexValue(raw[i + 1]);
      const int lo = HexValue(raw[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0' || c == '\\') return std::nullopt;
    decoded.push_back(c);
  }
  // Resolve segments (RFC 3986 §5.2.4), merging empty ones.
  std::vector<std::string_view> segs;
  std::string_view rest(decoded);
  const bool trailing_slash = decoded.size() > 1 && decoded.back() == '/';
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
      continue;
    }
    segs.push_back(seg);
  }
  std::string out;
  out.reserve(decoded.size());
  for (auto s : segs) out.append("/").append(s);
  if (out.empty()) return std::string("/");
  if (trailing_slash) out.push_back('/');
  return out;
}

AccessDecision CheckRequest(const AccessPolicy& policy, const Identity& who, std::string_view target) {
  if (!Matches(policy.grant, who)) return CheckConnection(policy, who);
  if (policy.paths.empty()) return {true, ""};
  auto path = NormalizePath(target);
  if (!path) return {false, "request target does not decode cleanly"};
  const PathRule* best = nullptr;
  for (const auto& rule : policy.paths) {
    if (PrefixCovers(rule.prefix, *path) && (best == nullptr || rule.prefix.size() > best->prefix.size())) {
      best = &rule;
    }
  }
  if (best == nullptr || Matches(best->grant, who)) return {true, ""};
  return {false, absl::StrCat(Describe(who), " is not allowed under ", best->prefix)};
}

}  // namespace p2proxy::http
