// access.h: a resource's access policy and its evaluation (DESIGN.md §7, invariant I4): per
// connection before anything is forwarded (or TLS is even answered), and per HTTP request
// against the path rules. Deny by default: an empty policy lets nobody in, and a peer the site
// cannot name (no user) is never allowed.
//
// Request targets (the path-rule policy). A path rule is only as good as the agreement between
// the path the site checks and the resource the app behind it serves. Apps differ: Tomcat and
// Spring drop ";params" from segments, IIS and Windows file servers ignore case and trailing
// dots, some decode "%2F" into a separator, some decode twice, Rails serves "/admin.json" from
// the "/admin" route. So the site does not guess what the app will make of a target: it reduces
// the target to one canonical path, matches the rules against that, and forwards exactly that
// canonical path (plus the query as received) to the app. What cannot be reduced without
// guessing is refused with 400 before the app is contacted.
//
// 1. Form. An origin-form target ("/a/b?q"). "*" only for OPTIONS, decided as "/" would be and
//    forwarded as "*". Anything else (absolute-form, a relative path, empty) is 400. The
//    HTTP/1.1 server turns absolute-form ("http://host/p") into origin-form before this, so
//    another form can only come as an HTTP/2 :path (nghttp2 resets most of those itself). A
//    fragment ("#...") is dropped.
// 2. Path parameters. In each segment, a raw ';' and everything after it up to the next '/'
//    are removed, unexamined ("/admin;x/panel" and "/admin/;/panel" are "/admin/panel"),
//    before the segment is decoded and before "." and ".." are resolved ("/a/..;/admin" is
//    "/admin"). The app never sees them.
// 3. Decoding. Percent-escapes are decoded once. 400 for: a bad or truncated escape ("%zz",
//    "%4", IIS's "%u0041"); an encoded '/' or '\' ("%2F", "%5C"), since apps disagree on
//    whether it separates segments; a raw '\' (Windows servers treat it as '/'); an encoded
//    ';' ("%3B", a decode-then-strip app would see a parameter); a control byte or NUL, raw or
//    encoded (0x00-0x1F, 0x7F); a decoded '%' that starts another escape ("%2541" is "%41",
//    which an app that decodes twice reads as "A"); a decoded segment that is not valid UTF-8
//    (overlong forms such as "%C0%AF" for '/', surrogates, beyond U+10FFFF).
// 4. Segments. Empty segments are merged ("//admin" is "/admin"), "." is dropped, ".." removes
//    the previous segment; a ".." with nothing left to remove (climbing above the root) is 400.
//    A trailing '/' is kept.
// 5. Case. By default paths compare exactly. AccessPolicy::case_insensitive_paths (config:
//    access.case_insensitive_paths) compares rules and paths ASCII-case-insensitively, for apps
//    that ignore case. Such apps often fold Unicode and Windows spellings too, so with it the
//    site also refuses (400) the letters whose case mapping lands in ASCII (U+0130 'İ',
//    U+0131 'ı', U+017F 'ſ', U+212A Kelvin sign) and segments ending in '.' or ' ' (Windows
//    drops those: "/admin./x" is "/admin/x"). 8.3 short names ("ADMINI~1") are not modelled.
// 6. Matching. A rule's prefix covers the path equal to it, below it ("/admin/x") and with a
//    suffix on its last segment that starts with '.' ("/admin.json": format suffixes route to
//    the same handler in Rails and in Spring's suffix matching). A trailing '/' on a prefix does
//    not narrow it ("/admin/" also covers "/admin"). The longest covering prefix decides.
// 7. Forwarding. The app gets the canonical path re-encoded: unreserved characters, sub-delims
//    but ';', ':', '@' and the separating '/' as they are, every other byte as %XX (upper-case
//    hex); then '?' and the query exactly as received (a query holding a control byte or a
//    space is 400: it could not be forwarded on a request line). Re-normalizing the forwarded
//    target gives it back unchanged. The audit log keeps the target as the client sent it.
//
// These rules apply to every request of an https resource, with or without path rules, so that
// adding a rule never changes what the app receives. Apps that need "%2F" inside a segment or
// ";jsessionid" parameters are not supported behind the site.
#ifndef P2PROXY_HTTP_ACCESS_H_
#define P2PROXY_HTTP_ACCESS_H_

#include <cstdint>
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
  friend bool operator==(const Identity&, const Identity&) = default;
};

// Grant names who may pass: a user in |users| ("*" = any named user) or a holder of any role
// in |roles|.
struct Grant {
  std::vector<std::string> users;
  std::vector<std::string> roles;
  friend bool operator==(const Grant&, const Grant&) = default;
};

// PathRule narrows a resource's grant for the paths under |prefix| ("/admin" covers "/admin",
// "/admin/", "/admin/x", "/admin.json" and "/admin?q", not "/administrator"). The longest
// matching prefix decides; a path no rule matches is decided by the connection-level grant
// alone. |prefix| is a normalized path (NormalizePath gives it back unchanged).
struct PathRule {
  std::string prefix;
  Grant grant;
  friend bool operator==(const PathRule&, const PathRule&) = default;
};

struct AccessPolicy {
  Grant grant;
  std::vector<PathRule> paths;
  // case_insensitive_paths: rules and request paths compare ASCII-case-insensitively, and
  // spellings such apps fold further are refused (see the top of this file).
  bool case_insensitive_paths = false;
  friend bool operator==(const AccessPolicy&, const AccessPolicy&) = default;
};

struct AccessDecision {
  bool allowed = false;
  // bad_request: refused because the request target is malformed or ambiguous (answer 400),
  // not because of who sent it (403). Only CheckRequest sets it.
  bool bad_request = false;
  std::string reason;  // why it was refused ("user 'bob' not allowed"), empty when allowed
  // target: when CheckRequest allows, the request target to forward to the app: the checked
  // path, canonically encoded, plus '?' and the query as received.
  std::string target;
};

// TargetError names why a request target was refused with 400 (see the top of this file).
enum class TargetError : uint8_t {
  kNone,
  kNotOriginForm,      // not "/..." (or "*" for OPTIONS)
  kAsteriskNotOptions, // "*" with another method
  kBadEscape,          // '%' not followed by two hex digits
  kEncodedSlash,       // %2F or %5C
  kBackslash,          // a raw '\'
  kEncodedSemicolon,   // %3B
  kControlByte,        // 0x00-0x1F or 0x7F in the path, raw or encoded
  kDoubleEncoded,      // a decoded '%' that starts another escape
  kBadUtf8,            // a decoded segment that is not valid UTF-8
  kAboveRoot,          // ".." with no segment left to remove
  kCaseFoldsToAscii,   // case-insensitive resource: U+0130, U+0131, U+017F or U+212A
  kTrailingDotOrSpace, // case-insensitive resource: a segment ending in '.' or ' '
  kBadQuery,           // a control byte or space in the query
};

// TargetErrorText describes |error| for logs and audit ("encoded '/' or '\\' (%2F, %5C)").
const char* TargetErrorText(TargetError error);

// NormalTarget is a request target reduced as the top of this file describes.
struct NormalTarget {
  std::string path;    // decoded and normalized: what path rules are matched against
  std::string target;  // |path| re-encoded plus the query: what the app is sent
};

// NormalizeTarget reduces |target| (a RequestHead's path) for a request with |method|. On
// success it fills |*out| and returns kNone; otherwise |*out| is unspecified.
TargetError NormalizeTarget(std::string_view method, std::string_view target, bool case_insensitive,
                            NormalTarget* out);

// Matches reports whether |who| satisfies |grant|. An identity without a user never does.
bool Matches(const Grant& grant, const Identity& who);

// CheckConnection decides whether |who| may open a connection to the resource at all.
AccessDecision CheckConnection(const AccessPolicy& policy, const Identity& who);

// CheckRequest decides one HTTP request for a peer that passed CheckConnection. |target| is the
// request target as received ("/a/../b?x"). A peer outside the connection grant is refused
// (403) whatever the target; then a target NormalizeTarget refuses is a bad request (400); then
// the longest rule covering the normalized path decides (403 when its grant does not match).
// When allowed, the decision's |target| is what must be forwarded in place of |target|.
AccessDecision CheckRequest(const AccessPolicy& policy, const Identity& who, std::string_view method,
                            std::string_view target);

// NormalizePath gives the normalized path NormalizeTarget matches against (query dropped), or
// nullopt when |target| is refused. Used to check that configured rule prefixes are normalized.
std::optional<std::string> NormalizePath(std::string_view target, bool case_insensitive = false);

// PrefixCovers reports whether a rule with |prefix| covers the normalized |path| (see
// PathRule), comparing ASCII-case-insensitively when |case_insensitive|.
bool PrefixCovers(std::string_view prefix, std::string_view path, bool case_insensitive);

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_ACCESS_H_
