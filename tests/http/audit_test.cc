// Tests for audit events: the JSON line and the append-only log.
#include "http/audit.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "net/loop.h"

using p2proxy::http::AuditEvent;
using p2proxy::http::AuditEventJson;
using p2proxy::http::AuditLog;

namespace {

AuditEvent Sample() {
  AuditEvent e;
  e.time = absl::FromUnixMillis(1764637323456);  // 2025-12-02T01:02:03.456Z
  e.kind = "https";
  e.resource = "vault";
  e.peer_key = "k";
  e.peer = "100.96.0.5:41000";
  e.user = "alice";
  e.roles = "admin,dev";
  e.method = "GET";
  e.host = "vault.example.internal";
  e.path = "/a\"b\\c\n\x01";
  e.status = 200;
  e.bytes_in = 3;
  e.bytes_out = 12;
  e.duration_ms = 7;
  e.allowed = true;
  return e;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("audit event JSON: fixed order, escapes, empty fields left out") {
  CHECK(AuditEventJson(Sample()) ==
        "{\"time\":\"2025-12-02T01:02:03.456Z\",\"kind\":\"https\",\"resource\":\"vault\",\"peer_key\":\"k\","
        "\"peer\":\"100.96.0.5:41000\",\"user\":\"alice\",\"roles\":\"admin,dev\",\"method\":\"GET\","
        "\"host\":\"vault.example.internal\",\"path\":\"/a\\\"b\\\\c\\n\\u0001\",\"status\":200,"
        "\"bytes_in\":3,\"bytes_out\":12,\"duration_ms\":7,\"decision\":\"allow\"}");
  AuditEvent deny;
  deny.time = absl::FromUnixMillis(0);
  deny.kind = "tcp";
  deny.resource = "ssh";
  deny.reason = "unknown peer is not allowed on this resource";
  CHECK(AuditEventJson(deny) ==
        "{\"time\":\"1970-01-01T00:00:00.000Z\",\"kind\":\"tcp\",\"resource\":\"ssh\",\"bytes_in\":0,"
        "\"bytes_out\":0,\"duration_ms\":0,\"decision\":\"deny\",\"reason\":\"unknown peer is not allowed on "
        "this resource\"}");
}

TEST_CASE("audit log: lines of one turn leave together, appended, file is 0600") {
  char dir[] = "/tmp/p2p-audit-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/audit.jsonl";
  {
    std::ofstream pre(path);
    pre << "earlier\n";
  }
  ::chmod(path.c_str(), 0600);
  p2proxy::net::Loop loop;
  {
    auto log = AuditLog::Open(loop, path);
    REQUIRE(log.ok());
    (*log)->Write(Sample());
    (*log)->Write(Sample());
    CHECK(ReadFile(path) == "earlier\n");  // nothing written inside the turn
    loop.RunUntil([&] { return ReadFile(path).size() > 8; }, absl::Seconds(5));
    const std::string line = AuditEventJson(Sample()) + "\n";
    CHECK(ReadFile(path) == "earlier\n" + line + line);
    (*log)->Write(Sample());
    CHECK((*log)->written() == 3);
  }  // destruction flushes the third line
  CHECK(ReadFile(path).size() == 8 + 3 * (AuditEventJson(Sample()).size() + 1));
  const std::string fresh = std::string(dir) + "/new.jsonl";
  {
    auto log = AuditLog::Open(loop, fresh);
    REQUIRE(log.ok());
  }
  struct stat st {};
  REQUIRE(::stat(fresh.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto bad = AuditLog::Open(loop, std::string(dir) + "/missing/x.jsonl");
  REQUIRE_FALSE(bad.ok());
  CHECK(std::string(bad.status().message()).find("audit: open ") == 0);
  std::filesystem::remove_all(dir);
}
