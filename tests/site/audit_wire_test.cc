// AuditEventToWire: whatever a peer put in a request, the event fits the wire and passes the
// server's validation, so a batch is never refused for it.
#include "site/audit_wire.h"

#include <catch2/catch.hpp>

#include <string>

#include "control/validate.h"

using namespace p2proxy;
namespace wire = p2proxy::control::wire;

namespace {

void RequireValid(const wire::AuditEvent& e) {
  wire::Frame f;
  f.mutable_audit_batch()->set_sequence(1);
  *f.mutable_audit_batch()->add_events() = e;
  const absl::Status st = control::ValidateFrame(f);
  INFO(st.message());
  REQUIRE(st.ok());
}

}  // namespace

TEST_CASE("AuditEventToWire keeps an ordinary request as it was") {
  http::AuditEvent e;
  e.time = absl::FromUnixMillis(1'700'000'000'123);
  e.kind = "https";
  e.resource = "vault";
  e.peer_key = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
  e.peer = "100.96.0.5:41000";
  e.user = "alice";
  e.roles = "admins,ops";
  e.method = "GET";
  e.host = "vault.example.internal";
  e.path = "/admin?q=1";
  e.status = 200;
  e.bytes_out = 1234;
  e.duration_ms = 5;
  e.allowed = true;
  const wire::AuditEvent w = site::AuditEventToWire(e);
  RequireValid(w);
  REQUIRE(w.time_unix_ms() == 1'700'000'000'123);
  REQUIRE(w.kind() == wire::AUDIT_KIND_HTTPS);
  REQUIRE(w.peer_key().size() == 32);
  REQUIRE(w.roles_size() == 2);
  REQUIRE(w.roles(1) == "ops");
  REQUIRE(w.path() == "/admin?q=1");
  REQUIRE(w.status() == 200);
  REQUIRE(w.allowed());
}

TEST_CASE("AuditEventToWire makes hostile strings fit: escaped, cut, never refused") {
  const std::string path = std::string("/a\x01\x7f\xff%") + std::string(20000, 'x');
  const std::string host = std::string(1000, 'h') + "\n";
  const std::string reason = std::string("bad\r\nthing ") + std::string(2000, 'r');
  http::AuditEvent e;
  e.time = absl::UnixEpoch();  // 0 is not a valid time on the wire: made 1 ms
  e.kind = "http";
  e.resource = "web";
  e.peer = "100.96.0.7:1";
  e.method = "G E\tT";
  e.host = host;
  e.path = path;
  e.status = 999;  // not an HTTP status: dropped
  e.reason = reason;
  const wire::AuditEvent w = site::AuditEventToWire(e);
  RequireValid(w);
  REQUIRE(w.time_unix_ms() == 1);
  REQUIRE(w.peer_key() == std::string(32, '\0'));  // no known peer
  REQUIRE(w.path().substr(0, 16) == "/a%01%7F%FF%25xx");
  REQUIRE(w.path().size() <= 8192);
  REQUIRE(w.host().size() <= 255);
  REQUIRE(w.reason().size() <= 512);
  REQUIRE(w.reason().find('\n') == std::string::npos);
  REQUIRE(w.method() == "G%20E%09T");
  REQUIRE(w.status() == 0);
}
