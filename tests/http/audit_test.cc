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

TEST_CASE("audit event JSON: runs between escapes are copied whole, UTF-8 as it is") {
  AuditEvent e;
  e.time = absl::FromUnixMillis(0);
  e.path = "\tcaf\xc3\xa9\x7f/x\r";
  const std::string json = AuditEventJson(e);
  CHECK(json.find("\"path\":\"\\tcaf\xc3\xa9\\u007f/x\\r\"") != std::string::npos);
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

TEST_CASE("audit event JSON: the time is RFC 3339 UTC with milliseconds, for any date") {
  // The renderer has its own civil-date conversion; absl's formatter is the reference.
  auto rendered = [](int64_t unix_ms) {
    AuditEvent e;
    e.time = absl::FromUnixMillis(unix_ms);
    const std::string json = AuditEventJson(e);
    const size_t start = json.find("\"time\":\"") + 8;
    return json.substr(start, json.find('"', start) - start);
  };
  auto reference = [](int64_t unix_ms) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
  };
  CHECK(rendered(0) == "1970-01-01T00:00:00.000Z");
  CHECK(rendered(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(rendered(951782400000) == "2000-02-29T00:00:00.000Z");     // a leap day of a 400-year
  CHECK(rendered(4107542400000) == "2100-03-01T00:00:00.000Z");    // 2100 is not a leap year
  CHECK(rendered(253402300799999) == "9999-12-31T23:59:59.999Z");  // the last four-digit year
  CHECK(rendered(-62135596800000) == "0001-01-01T00:00:00.000Z");  // RFC 3339: always 4 digits
  CHECK(rendered(-30610224000001) == "0999-12-31T23:59:59.999Z");
  CHECK(rendered(253402300800000) == reference(253402300800000));  // year 10000: absl's spelling
  // A deterministic spread over years 1000..9999 (absl pads no year below 1000), and every
  // millisecond around a day boundary.
  uint64_t x = 0x9e3779b97f4a7c15ull;
  const int64_t lo = -30610224000000, span = 253402300799999 - lo;
  for (int i = 0; i < 20000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const int64_t ms = lo + static_cast<int64_t>((x >> 11) % static_cast<uint64_t>(span));
    REQUIRE(rendered(ms) == reference(ms));
  }
  for (int64_t ms = 1764633600000 - 1500; ms < 1764633600000 + 1500; ++ms) REQUIRE(rendered(ms) == reference(ms));
}
