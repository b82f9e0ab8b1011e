// access.h: a resource's access policy and its evaluation (DESIGN.md §7, invariant I4): per
// connection before anything is forwarded (or TLS is even answered), and per HTTP request
// against the path rules. Deny by default: an empty policy lets nobody in, and a peer the site
// cannot name (no user) is never allowed.
#ifndef P2PROXY_HTTP_ACCESS_H_
#define P2PROXY_HTTP_ACCESS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace p2proxy::http {

// Identity is who a peer is, as the site knows it from the peer's WireGuard public key.
struct Identity {
  std::string peer_key;  // base64 public key; empty if the source matched no peer
  std::string user;      // empty: the peer is not mapped to a user
  std::vector<std::string> roles;
};

// Grant names who may pass: a user in |users| ("*" = any named user) or a holder of any role
// in |roles|.
struct Grant {
  std::vector<std::string> users;
  std::vector<std::string> roles;
};

// PathRule narrows a resource's grant for the paths under |prefix| ("/admin" covers "/admin",
// "/admin/", "/admin/x" and "/admin?q", not "/administrator"). The longest matching prefix
// decides; a path no rule matches is decided by the connection-level grant alone.
struct PathRule {
  std::string prefix;
  Grant grant;
};

struct AccessPolicy {
  Grant grant;
  std::vector<PathRule> paths;
};

struct AccessDecision {
  bool allowed = false;
  std::string reason;  // why it was denied ("user 'bob' not allowed"), empty when allowed
};

// Matches reports whether |who| satisfies |grant|. An identity without a user never does.
bool Matches(const Grant& grant, const Identity& who);

// CheckConnection decides whether |who| may open a connection to the resource at all.
AccessDecision CheckConnection(const AccessPolicy& policy, const Identity& who);

// CheckRequest decides one HTTP request for a peer that passed CheckConnection. |target| is the
// request target as received ("/a/../b?x"). It is normalized before matching (query dropped,
// percent-escapes decoded, "." and ".." segments resolved, repeated slashes merged), so an
// escaped or dotted spelling cannot slip past a rule; a target that does not decode cleanly
// (a bad escape, an encoded NUL, a backslash, not starting with "/") is denied.
AccessDecision CheckRequest(const AccessPolicy& policy, const Identity& who, std::string_view target);

// NormalizePath gives the normalized form CheckRequest matches against, or nullopt when
// |target| does not decode cleanly.
std::optional<std::string> NormalizePath(std::string_view target);

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_ACCESS_H_
