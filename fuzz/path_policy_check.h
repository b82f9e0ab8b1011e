// path_policy_check.h: the path-rule invariant the HTTP fuzzers assert (invariant I4). Every
// request a client-facing server hands to its router is decided as the site decides it
// (CheckRequest against a resource where "/" is open to every user and "/admin" only to the
// admin role, for a peer without that role), and what would be forwarded is checked against
// an independent, deliberately permissive model of the apps behind the site: percent-decoding
// repeated, '\' as '/', ";" parameters stripped, overlong UTF-8 decoded, dot segments clamped
// at the root, a ".ext" suffix routed to the same handler, and for the case-insensitive
// resource ASCII case, Unicode letters that fold to ASCII and Windows' trailing dots and spaces
// folded too. No target the site would forward may reach "/admin" in that model; a failure
// aborts.
#ifndef P2PROXY_FUZZ_PATH_POLICY_CHECK_H_
#define P2PROXY_FUZZ_PATH_POLICY_CHECK_H_

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/access.h"
#include "http/exchange.h"
#include "http/reverse_proxy.h"

namespace p2proxy::fuzz {

inline void PolicyCheck(bool ok) {
  if (!ok) std::abort();
}

inline int ModelHex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// ModelDecode decodes every well-formed %XX and %uXXXX (below 0x80) once, leaving the rest.
inline std::string ModelDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && ModelHex(s[i + 1]) >= 0 && ModelHex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(ModelHex(s[i + 1]) * 16 + ModelHex(s[i + 2])));
      i += 2;
    } else if (s[i] == '%' && i + 5 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U') && s[i + 2] == '0' &&
               s[i + 3] == '0' && ModelHex(s[i + 4]) >= 0 && ModelHex(s[i + 4]) < 8 && ModelHex(s[i + 5]) >= 0) {
      out.push_back(static_cast<char>(ModelHex(s[i + 4]) * 16 + ModelHex(s[i + 5])));
      i += 5;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// ModelFold maps what lenient apps treat as ASCII: overlong two-byte forms (C0/C1 xx) always;
// with |fold_case|, ASCII case and U+0130, U+0131 -> 'i', U+017F -> 's', U+212A -> 'k'.
inline std::string ModelFold(std::string_view s, bool fold_case) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    char c = s[i];
    if ((b(i) == 0xc0 || b(i) == 0xc1) && i + 1 < s.size()) {
      c = static_cast<char>(((b(i) & 0x1f) << 6) | (b(i + 1) & 0x3f));
      ++i;
    } else if (fold_case && b(i) == 0xc4 && i + 1 < s.size() && (b(i + 1) == 0xb0 || b(i + 1) == 0xb1)) {
      c = 'i';
      ++i;
    } else if (fold_case && b(i) == 0xc5 && i + 1 < s.size() && b(i + 1) == 0xbf) {
      c = 's';
      ++i;
    } else if (fold_case && b(i) == 0xe2 && i + 2 < s.size() && b(i + 1) == 0x84 && b(i + 2) == 0xaa) {
      c = 'k';
      i += 2;
    }
    if (fold_case && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out.push_back(c);
  }
  return out;
}

// ModelReachesAdmin: whether a permissive app would serve |target| from under "/admin".
inline bool ModelReachesAdmin(std::string_view target, bool fold_case) {
  std::string path(target.substr(0, target.find('?')));
  for (int round = 0; round < 3; ++round) path = ModelDecode(path);
  path = ModelFold(path, fold_case);
  for (char& c : path) {
    if (c == '\\') c = '/';
  }
  std::vector<std::string> segs;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string seg = path.substr(pos, slash - pos);
    seg = seg.substr(0, seg.find(';'));
    if (fold_case) {
      while (!seg.empty() && (seg.back() == '.' || seg.back() == ' ') && seg != "." && seg != "..") seg.pop_back();
    }
    pos = slash + 1;
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
      continue;
    }
    segs.push_back(seg);
  }
  if (segs.empty()) return false;
  const std::string& first = segs.front();
  return first == "admin" || first.rfind("admin.", 0) == 0;
}

// PathPolicy is the fuzzers' resource, once with exact and once with case-insensitive paths.
struct PathPolicy {
  PathPolicy() {
    for (http::AccessPolicy* p : {&exact, &folded}) {
      p->grant.users = {"*"};
      p->paths.push_back({"/admin", {{}, {"admin"}}});
    }
    folded.case_insensitive_paths = true;
  }
  http::AccessPolicy exact;
  http::AccessPolicy folded;
  http::Identity bob{"BBBB", "bob", {"dev"}};
};

// CheckOne decides |head| under |policy| and asserts the invariant; returns the status the site
// would answer with (0: forwarded).
inline int CheckOne(const http::AccessPolicy& policy, const http::Identity& who, const http::RequestHead& head,
                    const http::ConnectionInfo& connection) {
  const bool fold = policy.case_insensitive_paths;
  http::AccessDecision d = http::CheckRequest(policy, who, head.method, head.path);
  if (!d.allowed) {
    // A 403 for bob comes only from the /admin rule: the model must agree it is under /admin.
    if (!d.bad_request) {
      http::NormalTarget t;
      PolicyCheck(http::NormalizeTarget(head.method, head.path, fold, &t) == http::TargetError::kNone);
      PolicyCheck(ModelReachesAdmin(t.target, fold));
    }
    return d.bad_request ? 400 : 403;
  }
  // What the reverse proxy would send upstream.
  const http::UpstreamRequest up = http::BuildUpstreamRequest(head, connection, {}, d.target);
  PolicyCheck(up.target == d.target && !up.target.empty());
  PolicyCheck(!ModelReachesAdmin(up.target, fold));
  // Canonical means a fixed point: the forwarded target normalizes to itself.
  http::NormalTarget again;
  PolicyCheck(http::NormalizeTarget(head.method, up.target, fold, &again) == http::TargetError::kNone);
  PolicyCheck(again.target == up.target);
  // Nothing a request line cannot carry.
  for (char c : up.target) PolicyCheck(static_cast<uint8_t>(c) > 0x20 && c != 0x7f);
  return 0;
}

// CheckRequestHead checks |head| under both policies and returns the case-insensitive one's
// status (0: forwarded), which the fuzzers' routers then act on.
inline int CheckRequestHead(const http::RequestHead& head, const http::ConnectionInfo& connection) {
  static const PathPolicy* policy = new PathPolicy();
  CheckOne(policy->exact, policy->bob, head, connection);
  return CheckOne(policy->folded, policy->bob, head, connection);
}

}  // namespace p2proxy::fuzz

#endif  // P2PROXY_FUZZ_PATH_POLICY_CHECK_H_
