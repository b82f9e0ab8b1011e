// Tests for access policies: deny by default, users, roles, path rules, normalization.
#include "http/access.h"

#include <catch2/catch.hpp>

using p2proxy::http::AccessPolicy;
using p2proxy::http::CheckConnection;
using p2proxy::http::CheckRequest;
using p2proxy::http::Identity;
using p2proxy::http::NormalizePath;

namespace {

Identity Alice() { return Identity{"AAAA", "alice", {"admin", "dev"}}; }
Identity Bob() { return Identity{"BBBB", "bob", {"dev"}}; }
Identity Carol() { return Identity{"CCCC", "carol", {}}; }
Identity Nobody() { return Identity{"DDDD", "", {}}; }

}  // namespace

TEST_CASE("an empty policy denies everyone") {
  AccessPolicy p;
  CHECK_FALSE(CheckConnection(p, Alice()).allowed);
  CHECK_FALSE(CheckConnection(p, Nobody()).allowed);
  CHECK_FALSE(CheckRequest(p, Alice(), "/").allowed);
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
  CHECK(CheckRequest(p, Bob(), "/").allowed);
  CHECK(CheckRequest(p, Bob(), "/administrator").allowed);  // not under /admin
  auto d = CheckRequest(p, Bob(), "/admin/x");
  CHECK_FALSE(d.allowed);
  CHECK(d.reason == "user 'bob' is not allowed under /admin");
  CHECK_FALSE(CheckRequest(p, Bob(), "/admin").allowed);
  CHECK_FALSE(CheckRequest(p, Bob(), "/admin?x=1").allowed);
  CHECK(CheckRequest(p, Alice(), "/admin/x").allowed);
  CHECK(CheckRequest(p, Bob(), "/admin/public/page").allowed);  // the longer rule wins
  // A request never passes a path rule without passing the connection grant.
  CHECK_FALSE(CheckRequest(p, Carol(), "/admin/public/page").allowed);
}

TEST_CASE("escaped and dotted spellings cannot slip past a rule") {
  AccessPolicy p;
  p.grant.users = {"*"};
  p.paths.push_back({"/admin", {{}, {"admin"}}});
  for (const char* target : {"/public/../admin", "/%61dmin", "//admin", "/./admin/", "/x/%2e%2e/admin",
                             "/admin%2fsecret", "/ADMIN/../admin"}) {
    INFO(target);
    CHECK_FALSE(CheckRequest(p, Bob(), target).allowed);
  }
  for (const char* target : {"/a%5cb", "/a%00", "/a%zz", "/a%2", "relative", "", "*"}) {
    INFO(target);
    auto d = CheckRequest(p, Alice(), target);
    CHECK_FALSE(d.allowed);
    CHECK(d.reason == "request target does not decode cleanly");
  }
}

TEST_CASE("NormalizePath") {
  CHECK(NormalizePath("/") == "/");
  CHECK(NormalizePath("/a/b/../c?q=/../x") == "/a/c");
  CHECK(NormalizePath("/a//b/") == "/a/b/");
  CHECK(NormalizePath("/../../a") == "/a");
  CHECK(NormalizePath("/%41%2F") == "/A/");
  CHECK_FALSE(NormalizePath("/%4").has_value());
}
