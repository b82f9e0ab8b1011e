// Tests for access policies: deny by default, users, roles, path rules, and the request-target
// policy of access.h (parameters stripped, ambiguous targets refused with 400, canonical
// forwarding, opt-in case-insensitive matching).
#include "http/access.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using p2proxy::http::AccessDecision;
using p2proxy::http::AccessPolicy;
using p2proxy::http::CheckConnection;
using p2proxy::http::CheckRequest;
using p2proxy::http::Identity;
using p2proxy::http::NormalizePath;
using p2proxy::http::NormalizeTarget;
using p2proxy::http::NormalTarget;
using p2proxy::http::PrefixCovers;
using p2proxy::http::TargetError;

namespace {

Identity Alice() { return Identity{"AAAA", "alice", {"admin", "dev"}}; }
Identity Bob() { return Identity{"BBBB", "bob", {"dev"}}; }
Identity Carol() { return Identity{"CCCC", "carol", {}}; }
Identity Nobody() { return Identity{"DDDD", "", {}}; }

AccessDecision Get(const AccessPolicy& p, const Identity& who, std::string_view target) {
  return CheckRequest(p, who, "GET", target);
}

// AdminPolicy: every named user may connect; only the admin role may go under /admin.
AccessPolicy AdminPolicy(bool case_insensitive) {
  AccessPolicy p;
  p.grant.users = {"*"};
  p.paths.push_back({"/admin", {{}, {"admin"}}});
  p.case_insensitive_paths = case_insensitive;
  return p;
}

// Outcome is what a request got: "allow <target>", "403" or "400".
std::string Outcome(const AccessDecision& d) {
  if (d.allowed) return "allow " + d.target;
  return d.bad_request ? "400" : "403";
}

}  // namespace

TEST_CASE("an empty policy denies everyone") {
  AccessPolicy p;
  CHECK_FALSE(CheckConnection(p, Alice()).allowed);
  CHECK_FALSE(CheckConnection(p, Nobody()).allowed);
  CHECK_FALSE(Get(p, Alice(), "/").allowed);
}

TEST_CASE("users, roles and the any-user wildcard") {
  AccessPolicy p;
  p.grant.users = {"carol"};
  p.grant.roles = {"admin"};
  CHECK(CheckConnection(p, Alice()).allowed);   // by role
  CHECK(CheckConnection(p, Carol()).allowed);   // by name
  auto bob = CheckConnection(p, Bob());
  CHECK_FALSE(bob.allowed);
  CHECK(bob.reason == "user 'bob' is not allowed on this resource");
  p.grant.users = {"*"};
  CHECK(CheckConnection(p, Bob()).allowed);
  // "*" is any named user, never a peer without one.
  auto nobody = CheckConnection(p, Nobody());
  CHECK_FALSE(nobody.allowed);
  CHECK(nobody.reason == "peer DDDD (no user) is not allowed on this resource");
  CHECK_FALSE(CheckConnection(p, Identity{}).allowed);
}

TEST_CASE("path rules: longest prefix decides, on segment boundaries") {
  AccessPolicy p;
  p.grant.roles = {"dev"};
  p.paths.push_back({"/admin", {{}, {"admin"}}});
  p.paths.push_back({"/admin/public", {{"*"}, {}}});
  CHECK(Get(p, Bob(), "/").allowed);
  CHECK(Get(p, Bob(), "/administrator").allowed);  // not under /admin
  auto d = Get(p, Bob(), "/admin/x");
  CHECK_FALSE(d.allowed);
  CHECK_FALSE(d.bad_request);
  CHECK(d.reason == "user 'bob' is not allowed under /admin");
  CHECK_FALSE(Get(p, Bob(), "/admin").allowed);
  CHECK_FALSE(Get(p, Bob(), "/admin?x=1").allowed);
  CHECK(Get(p, Alice(), "/admin/x").allowed);
  CHECK(Get(p, Bob(), "/admin/public/page").allowed);  // the longer rule wins
  // A request never passes a path rule without passing the connection grant, and a peer
  // outside the grant gets 403 whatever its target looks like.
  CHECK_FALSE(Get(p, Carol(), "/admin/public/page").allowed);
  auto carol = Get(p, Carol(), "/a%2Fb");
  CHECK_FALSE(carol.allowed);
  CHECK_FALSE(carol.bad_request);
}

TEST_CASE("path rules: a trailing slash does not narrow a rule, a suffix on its last segment is covered") {
  AccessPolicy p;
  p.grant.users = {"*"};
  p.paths.push_back({"/admin/", {{}, {"admin"}}});
  for (const char* target : {"/admin", "/admin/", "/admin/x", "/admin.json", "/admin.php/x"}) {
    INFO(target);
    CHECK(Outcome(Get(p, Bob(), target)) == "403");
  }
  CHECK(Outcome(Get(p, Bob(), "/administrator")) == "allow /administrator");
  CHECK(Outcome(Get(p, Bob(), "/admin-x")) == "allow /admin-x");
  CHECK(PrefixCovers("/", "/anything", false));
  CHECK(PrefixCovers("/Admin", "/admin/x", true));
  CHECK_FALSE(PrefixCovers("/Admin", "/admin/x", false));
}

// Each of these reaches /admin in some app (Tomcat and Spring strip ";" parameters, IIS ignores
// case, apps decode "%2F" or "\" into separators, decode twice, or map overlong UTF-8); none
// may be forwarded to the app for bob.
TEST_CASE("bypass attempts on a denied prefix are refused: 403 or 400, never forwarded") {
  struct Case {
    const char* target;
    const char* want;  // for bob, case-sensitive policy / case-insensitive policy
    const char* want_ci;
  };
  const std::vector<Case> cases = {
      // Plain and dotted spellings: denied by the rule.
      {"/admin", "403", "403"},
      {"/admin/panel", "403", "403"},
      {"/admin?x=1", "403", "403"},
      {"/admin#frag", "403", "403"},
      {"/public/../admin/panel", "403", "403"},
      {"/x/%2e%2e/admin", "403", "403"},
      {"/%2e/admin", "403", "403"},
      {"/./admin/", "403", "403"},
      {"//admin//panel", "403", "403"},
      {"/admin/.", "403", "403"},
      {"/%61dmin", "403", "403"},
      {"/admin.json", "403", "403"},
      // Path parameters (Tomcat, Spring, Jetty).
      {"/admin;x/panel", "403", "403"},
      {"/admin;/panel", "403", "403"},
      {"/admin;jsessionid=1", "403", "403"},
      {"/;x/admin/panel", "403", "403"},
      {"/x/..;/admin/panel", "403", "403"},
      {"/admin/;x/panel", "403", "403"},
      {"/.;/admin", "403", "403"},
      // Case: only for a case-insensitive resource.
      {"/Admin/panel", "allow /Admin/panel", "403"},
      {"/ADMIN", "allow /ADMIN", "403"},
      {"/%41dmin;x/panel", "allow /Admin/panel", "403"},
      {"/aDmIn.JSON", "allow /aDmIn.JSON", "403"},
      // Encoded separators, backslashes, encoded ';'.
      {"/admin%2fpanel", "400", "400"},
      {"/admin%2Fpanel", "400", "400"},
      {"/%2fadmin", "400", "400"},
      {"/x%2F..%2Fadmin", "400", "400"},
      {"/admin%5cpanel", "400", "400"},
      {"/x/..%5Cadmin", "400", "400"},
      {"/admin\\panel", "400", "400"},
      {"/x/..\\admin", "400", "400"},
      {"/admin%3bx/panel", "400", "400"},
      {"/admin%3B/panel", "400", "400"},
      // Control bytes and NUL, encoded or raw.
      {"/admin%00", "400", "400"},
      {"/admin%00/x", "400", "400"},
      {"/x%0a/../admin", "400", "400"},
      {"/admin%7f", "400", "400"},
      {"/adm\tin", "400", "400"},
      // Bad escapes, IIS %u, double encoding.
      {"/%zzadmin", "400", "400"},
      {"/admin%4", "400", "400"},
      {"/admin%", "400", "400"},
      {"/%u0061dmin", "400", "400"},
      {"/%2561dmin", "400", "400"},
      {"/%25%36%31dmin", "400", "400"},
      {"/%2575%30%30%36%31dmin", "400", "400"},
      {"/x/%252e%252e/admin", "400", "400"},
      // Overlong and invalid UTF-8.
      {"/x%c0%af..%c0%afadmin", "400", "400"},
      {"/%c0%ae%c0%ae/admin", "400", "400"},
      {"/%e0%80%afadmin", "400", "400"},
      {"/%ed%a0%80admin", "400", "400"},
      {"/%f4%90%80%80admin", "400", "400"},
      {"/%80admin", "400", "400"},
      {"/%c3admin", "400", "400"},
      // Climbing above the root.
      {"/../admin", "400", "400"},
      {"/x/../../admin", "400", "400"},
      {"/%2e%2e/admin", "400", "400"},
      {"/..;/admin", "400", "400"},
      // Not origin-form (an HTTP/2 :path; HTTP/1.1's absolute-form is converted before).
      {"http://app.test/admin", "400", "400"},
      {"admin", "400", "400"},
      {"", "400", "400"},
      {"*", "400", "400"},
      // The query cannot carry what a request line cannot.
      {"/admin?x y", "400", "400"},
      {"/x?\x01", "400", "400"},
      // Unicode letters that fold to ASCII, Windows' trailing dots and spaces: refused when
      // the resource ignores case.
      {"/adm%C4%B1n", "allow /adm%C4%B1n", "400"},
      {"/%C4%B0ADMIN", "allow /%C4%B0ADMIN", "400"},
      {"/admin./panel", "403", "400"},
      {"/admin%20/panel", "allow /admin%20/panel", "400"},
      {"/admin%20", "allow /admin%20", "400"},
  };
  const AccessPolicy cs = AdminPolicy(false);
  const AccessPolicy ci = AdminPolicy(true);
  for (const Case& c : cases) {
    INFO("target: " << c.target);
    CHECK(Outcome(Get(cs, Bob(), c.target)) == c.want);
    CHECK(Outcome(Get(ci, Bob(), c.target)) == c.want_ci);
    // What is refused for its form is refused for everyone; what is denied by the rule is
    // allowed for the admin (who gets the canonical path).
    const AccessDecision alice = Get(ci, Alice(), c.target);
    CHECK(alice.allowed == (std::string(c.want_ci) != "400"));
  }
}

TEST_CASE("allowed targets are forwarded in canonical form with the query as received") {
  struct Case {
    const char* target;
    const char* forwarded;
  };
  const std::vector<Case> cases = {
      {"/", "/"},
      {"/public/page?q=1&r=%2F", "/public/page?q=1&r=%2F"},
      {"/a;x/b?k=v;w", "/a/b?k=v;w"},
      {"/a;x", "/a"},
      {"/a/;x", "/a/"},
      {"/a/./b/../c/", "/a/c/"},
      {"/a/b/..", "/a/"},
      {"/a//b", "/a/b"},
      {"/%7euser/%41%62c", "/~user/Abc"},
      {"/caf%c3%a9", "/caf%C3%A9"},
      {"/caf\xc3\xa9", "/caf%C3%A9"},
      {"/a%20b", "/a%20b"},
      {"/a b", "/a%20b"},
      {"/a%3Fb?x", "/a%3Fb?x"},
      {"/a%23b", "/a%23b"},
      {"/100%25", "/100%25"},
      {"/a%25zz", "/a%25zz"},
      {"/q\"<>{}|^`[]", "/q%22%3C%3E%7B%7D%7C%5E%60%5B%5D"},
      {"/sub!$&'()*+,=:@-._~", "/sub!$&'()*+,=:@-._~"},
      {"/a?", "/a?"},
      {"/a?x=\\&y=%5C", "/a?x=\\&y=%5C"},
      {"/a#x?y", "/a"},
      {"/Admin/panel", "/Admin/panel"},  // a case-sensitive resource: not /admin
      {"/administrator", "/administrator"},
      {"/\xf0\x9f\x98\x80", "/%F0%9F%98%80"},
  };
  const AccessPolicy p = AdminPolicy(false);
  for (const Case& c : cases) {
    INFO("target: " << c.target);
    const AccessDecision d = Get(p, Bob(), c.target);
    REQUIRE(d.allowed);
    CHECK(d.target == c.forwarded);
    // The forwarded target is a fixed point: the app's own normalization has nothing left.
    NormalTarget again;
    REQUIRE(NormalizeTarget("GET", d.target, false, &again) == TargetError::kNone);
    CHECK(again.target == d.target);
  }
  // An admin gets the canonical form of a parameterized /admin path too.
  CHECK(Outcome(Get(p, Alice(), "/admin;x/panel?a=b")) == "allow /admin/panel?a=b");
  // OPTIONS * is decided as "/" and forwarded as "*".
  CHECK(Outcome(CheckRequest(p, Bob(), "OPTIONS", "*")) == "allow *");
  AccessPolicy root_only = AdminPolicy(false);
  root_only.paths.push_back({"/", {{"alice"}, {}}});
  CHECK(Outcome(CheckRequest(root_only, Bob(), "OPTIONS", "*")) == "403");
}

TEST_CASE("targets are checked even without path rules") {
  AccessPolicy p;
  p.grant.users = {"*"};
  CHECK(Outcome(Get(p, Bob(), "/a;x/b")) == "allow /a/b");
  auto d = Get(p, Bob(), "/a%2Fb");
  CHECK(Outcome(d) == "400");
  CHECK(d.reason == "bad request target: an encoded '/' or '\\' (%2F, %5C)");
  CHECK(Get(p, Bob(), "/../x").reason == "bad request target: '..' above the root");
  CHECK(Get(p, Bob(), "/%2561").reason == "bad request target: a double-encoded escape (%25 followed by hex)");
}

TEST_CASE("NormalizePath") {
  CHECK(NormalizePath("/") == "/");
  CHECK(NormalizePath("/a/b/../c?q=/../x") == "/a/c");
  CHECK(NormalizePath("/a//b/") == "/a/b/");
  CHECK(NormalizePath("/a/b;p/c") == "/a/b/c");
  CHECK(NormalizePath("/%41/") == "/A/");
  CHECK_FALSE(NormalizePath("/../../a").has_value());
  CHECK_FALSE(NormalizePath("/%41%2F").has_value());
  CHECK_FALSE(NormalizePath("/%4").has_value());
  CHECK(NormalizePath("/admin.") == "/admin.");
  CHECK_FALSE(NormalizePath("/admin.", true).has_value());
}
