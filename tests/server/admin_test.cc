// RunAdmin against a real SqliteStore with a fake AdminHost: every command granted and
// refused, exit statuses, tables and --json parsed back, tokens never listed in clear,
// Changed()/Disconnect() exactly on writes, audit filters.
#include "server/admin.h"
#include "temp_dir.h"
#include "control/node_agent.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/sqlite_store.h"

namespace {

using namespace p2proxy::server;
using google::protobuf::Value;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);  // 2023-11-14T22:13:20Z
const std::string kPin(64, 'a');

using p2proxy::server::testing::TempDir;

class FakeHost : public AdminHost {
 public:
  explicit FakeHost(Store& store) : store_(store) {}
  Store& store() override { return store_; }
  absl::Time Now() override { return now; }
  std::string EnrollmentPin() override { return pin; }
  std::string ControlAddress() override { return "ctl.example.com:443"; }
  std::string CaCertificatePem() override { return ca_pem; }
  absl::Status RotateCertificates(const CertRotation& what) override {
    rotations.push_back(what);
    return rotate_status;
  }
  void Changed() override { ++changed; }
  void Disconnect(absl::string_view id) override { disconnected.emplace_back(id); }
  std::vector<NodeLiveStatus> LiveStatus() override { return live; }
  std::vector<SiteHealthReport> HealthReports() override { return health; }
  void RandomBytes(uint8_t* out, size_t len) override {
    for (size_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(next_random++);
  }

  absl::Time now = kNow;
  std::string pin = kPin;
  std::string ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  absl::Status rotate_status;
  std::vector<CertRotation> rotations;
  int changed = 0;
  std::vector<std::string> disconnected;
  std::vector<NodeLiveStatus> live;
  std::vector<SiteHealthReport> health;
  uint32_t next_random = 1;

 private:
  Store& store_;
};

// Fixture: a fresh store and host per test case.
struct Env {
  TempDir dir;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<FakeHost> host;
  Env() {
    auto s = SqliteStore::Open(dir.File("server.db"));
    INFO(s.status().message());
    REQUIRE(s.ok());
    store = std::move(s).value();
    host = std::make_unique<FakeHost>(*store);
  }
  AdminResult Run(const std::vector<std::string>& args) { return RunAdmin(*host, args); }
  // Run splits |line| on spaces (for args without spaces).
  AdminResult Run(absl::string_view line) {
    return Run(std::vector<std::string>(absl::StrSplit(line, ' ', absl::SkipEmpty())));
  }
  AdminResult Ok(absl::string_view line) {
    AdminResult r = Run(line);
    INFO(line << "\nout: " << r.out << "\nerr: " << r.err);
    REQUIRE(r.exit_code == 0);
    return r;
  }
  // Fails checks the exit status and that stderr holds |text|, and that nothing went to stdout.
  AdminResult Fails(absl::string_view line, int code, absl::string_view text) {
    AdminResult r = Run(line);
    INFO(line << "\nout: " << r.out << "\nerr: " << r.err);
    REQUIRE(r.exit_code == code);
    REQUIRE(absl::StrContains(r.err, text));
    REQUIRE(r.out.empty());
    return r;
  }
  // Enroll creates a token with the admin command and enrolls a node with it (the server's
  // side of enrollment), returning the node.
  NodeRecord Enroll(wire::NodeKind kind, const std::string& name_or_user, char key) {
    const std::string line = kind == wire::NODE_KIND_SITE
                                 ? "token create site " + name_or_user + " --json"
                                 : "token create device --user " + name_or_user + " --json";
    const int changed = host->changed;
    Value v = Json(Ok(line).out);
    REQUIRE(host->changed == changed);  // tokens are not seen by nodes
    EnrollRequest req;
    req.token_hash = HashToken(v.struct_value().fields().at("token").string_value());
    req.kind = kind;
    req.wireguard_public_key = std::string(32, key);
    req.now = host->now;
    auto node = store->EnrollNode(req, [](const NodeRecord& n) -> absl::StatusOr<std::string> {
      return "serial-" + n.id;
    });
    INFO(node.status().message());
    REQUIRE(node.ok());
    return *node;
  }
  static Value Json(const std::string& text) {
    Value v;
    const auto status = google::protobuf::util::JsonStringToMessage(text, &v);
    INFO(text);
    REQUIRE(status.ok());
    return v;
  }
};

const google::protobuf::Struct& Obj(const Value& v) { return v.struct_value(); }
std::string Str(const Value& v, const std::string& key) {
  return Obj(v).fields().at(key).string_value();
}
double Num(const Value& v, const std::string& key) { return Obj(v).fields().at(key).number_value(); }
std::vector<std::string> Strs(const Value& v, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& e : Obj(v).fields().at(key).list_value().values()) out.push_back(e.string_value());
  return out;
}
std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST_CASE("admin: help, usage errors and unknown commands", "[admin]") {
  Env env;
  AdminResult r = env.Ok("help");
  REQUIRE(absl::StrContains(r.out, "resource add NAME --kind https|tcp|udp"));
  REQUIRE(absl::StrContains(r.out, "audit query"));
  r = env.Ok("resource add --help");
  REQUIRE(absl::StartsWith(r.out, "usage: resource add NAME"));
  REQUIRE(absl::StrContains(env.Ok("token --help").out, "token create"));
  REQUIRE(absl::StrContains(env.Ok("help user").out, "user grant USER ROLE"));

  REQUIRE(env.Run(std::vector<std::string>{}).exit_code == 2);
  env.Fails("frobnicate", 2, "unknown command 'frobnicate' (see: help)");
  env.Fails("user", 2, "user: give a command: add, remove, list, grant, revoke");
  env.Fails("user frob", 2, "user: unknown command 'frob' (one of: add, remove, list, grant, revoke)");
  env.Fails("user add", 2, "user add: missing argument");
  env.Fails("user add a b", 2, "user add: unexpected argument 'b'");
  env.Fails("user list --bogus", 2, "user list: unknown flag '--bogus'");
  env.Fails("user add bob --json --json", 2, "--json given twice");
  env.Fails("token create site s1 --ttl", 2, "--ttl needs a value");
  REQUIRE(env.host->changed == 0);
}

TEST_CASE("admin: users and roles, granted and refused - Changed exactly on writes", "[admin]") {
  Env env;
  env.Ok("user add alice");
  REQUIRE(env.host->changed == 1);
  env.Fails("user add alice", 1, "user add: user 'alice' exists");
  env.Fails("user add a,b", 2, "user add: user 'a,b': a name may not hold ','");
  REQUIRE(env.host->changed == 1);

  env.Fails("user grant alice admins", 1,
            "user grant: role 'admins' does not exist (add it with: role add admins)");
  env.Fails("user grant bob admins", 1,
            "user grant: user 'bob' does not exist (add it with: user add bob)");
  env.Ok("role add admins");
  env.Ok("role add ops");
  env.Ok("user add bob");
  REQUIRE(env.host->changed == 4);
  env.Ok("user grant alice admins");
  env.Ok("user grant alice ops");
  env.Ok("user grant bob ops");
  REQUIRE(env.host->changed == 7);
  env.Fails("user grant alice admins", 1, "has role 'admins' already");
  env.Fails("user revoke bob admins", 1, "user 'bob' does not have role 'admins'");
  REQUIRE(env.host->changed == 7);

  // The table: a header and one aligned row per user.
  AdminResult r = env.Ok("user list");
  REQUIRE(env.host->changed == 7);
  auto lines = Lines(r.out);
  REQUIRE(lines.size() == 3);
  REQUIRE(absl::StartsWith(lines[0], "NAME   ROLES       DEVICES  CREATED"));
  REQUIRE(absl::StartsWith(lines[1], "alice  admins,ops  0        2023-11-14T22:13:20Z"));
  REQUIRE(absl::StartsWith(lines[2], "bob    ops         0"));
  Value users = Env::Json(env.Ok("user list --json").out);
  REQUIRE(users.list_value().values_size() == 2);
  REQUIRE(Str(users.list_value().values(0), "name") == "alice");
  REQUIRE(Strs(users.list_value().values(0), "roles") == std::vector<std::string>{"admins", "ops"});
  REQUIRE(Str(users.list_value().values(0), "created") == "2023-11-14T22:13:20.000Z");

  Value roles = Env::Json(env.Ok("role list --json").out);
  REQUIRE(Str(roles.list_value().values(1), "name") == "ops");
  REQUIRE(Strs(roles.list_value().values(1), "users") == std::vector<std::string>{"alice", "bob"});
  REQUIRE(absl::StrContains(env.Ok("role list").out, "ops     alice,bob"));

  env.Ok("user revoke alice ops");
  REQUIRE(env.host->changed == 8);
  env.Ok("role remove ops");
  env.Fails("role remove ops", 1, "role 'ops' does not exist");
  env.Ok("user remove bob");
  env.Fails("user remove bob", 1, "user 'bob' does not exist");
  REQUIRE(env.host->changed == 10);
  REQUIRE(Lines(env.Ok("user list").out).size() == 2);
  REQUIRE(env.host->disconnected.empty());
}

TEST_CASE("admin: token create, list and remove - secrets never listed", "[admin]") {
  Env env;
  AdminResult r = env.Ok("token create site s1");
  // p2p1_ + the 32 random bytes in hex + _ + the pin.
  const std::string secret_hex =
      "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
  const std::string token = "p2p1_" + secret_hex + "_" + kPin;
  REQUIRE(absl::StrContains(r.out, "\n  " + token + "\n"));
  REQUIRE(absl::StrContains(r.out, "p2proxy-site --server ctl.example.com:443 --token " + token +
                                       " --state-dir /var/lib/p2proxy-site"));
  REQUIRE(absl::StrContains(r.out, "expires 2023-11-14T23:13:20Z"));
  REQUIRE(env.host->changed == 0);
  std::string secret, pin;
  REQUIRE(p2proxy::control::ParseEnrollmentToken(token, &secret, &pin).ok());
  REQUIRE(secret.size() == 32);
  REQUIRE(pin == std::string(32, '\xaa'));
  REQUIRE_FALSE(p2proxy::control::ParseEnrollmentToken("p2p1_" + secret_hex + "_" + kPin.substr(1), &secret, &pin).ok());
  REQUIRE_FALSE(p2proxy::control::ParseEnrollmentToken("p2p1_" + secret_hex + "-" + kPin, &secret, &pin).ok());
  std::string upper = token;
  upper[10] = 'A';
  REQUIRE_FALSE(p2proxy::control::ParseEnrollmentToken(upper, &secret, &pin).ok());

  // The store keeps only the hash of the whole token text.
  auto tokens = env.store->ListTokens();
  REQUIRE(tokens.ok());
  REQUIRE(tokens->size() == 1);
  REQUIRE((*tokens)[0].token_hash == HashToken(token));
  REQUIRE((*tokens)[0].expires == kNow + absl::Hours(1));

  env.Fails("token create device --user bob", 1,
            "token create: user 'bob' does not exist (add it with: user add bob)");
  env.Fails("token create device", 2, "--user USER is required");
  env.Fails("token create laptop x", 2, "the kind is 'laptop'; give site or device");
  env.Fails("token create site s2 --ttl 31d", 2, "longer than 30 days");
  env.Fails("token create site s2 --ttl soon", 2, "--ttl 'soon' is not a duration");
  env.Fails("token create site bad,name", 2, "a name may not hold ','");
  env.Ok("user add bob");
  Value dev = Env::Json(env.Ok("token create device --user bob --ttl 7d --json").out);
  REQUIRE(Str(dev, "kind") == "device");
  REQUIRE(Str(dev, "bound_to") == "bob");
  REQUIRE(Str(dev, "expires") == "2023-11-21T22:13:20.000Z");
  REQUIRE(absl::StartsWith(Str(dev, "command"), "p2proxy-client --server ctl.example.com:443 --token p2p1_"));

  for (const std::string& line : {std::string("token list"), std::string("token list --json")}) {
    r = env.Ok(line);
    REQUIRE_FALSE(absl::StrContains(r.out, secret_hex));
    REQUIRE_FALSE(absl::StrContains(r.out, "p2p1_"));
    REQUIRE_FALSE(absl::StrContains(r.out, Str(dev, "token").substr(5, 64)));
  }
  Value list = Env::Json(env.Ok("token list --json").out);
  REQUIRE(list.list_value().values_size() == 2);
  REQUIRE(Str(list.list_value().values(0), "kind") == "site");
  REQUIRE(Str(list.list_value().values(0), "bound_to") == "s1");
  REQUIRE(Str(list.list_value().values(0), "state") == "unused");
  auto lines = Lines(env.Ok("token list").out);
  REQUIRE(lines.size() == 3);
  REQUIRE(absl::StartsWith(lines[0], "ID            KIND    BOUND TO  CREATED"));

  // Expired after its time; used after enrollment.
  env.host->now = kNow + absl::Hours(2);
  list = Env::Json(env.Ok("token list --json").out);
  REQUIRE(Str(list.list_value().values(0), "state") == "expired");
  REQUIRE(Str(list.list_value().values(1), "state") == "unused");

  const std::string id = Str(list.list_value().values(0), "id");
  env.Fails("token remove zz", 2, "give at least 8 hex digits");
  env.Fails("token remove 00000000", 1, "no token has id 00000000");
  REQUIRE(absl::StrContains(env.Ok("token remove " + id).out, "removed"));
  REQUIRE(env.store->ListTokens()->size() == 1);
  REQUIRE(env.host->changed == 1);  // only user add
}

TEST_CASE("admin: sites and devices: list, show, revoke, remove", "[admin]") {
  Env env;
  env.Ok("user add bob");
  const NodeRecord s1 = env.Enroll(wire::NODE_KIND_SITE, "s1", 'a');
  const NodeRecord s2 = env.Enroll(wire::NODE_KIND_SITE, "s2", 'b');
  const NodeRecord d1 = env.Enroll(wire::NODE_KIND_CLIENT, "bob", 'c');
  env.Fails("token create site s1", 1, "site 's1' exists (" + s1.id + ")");
  const int changed = env.host->changed;
  NodeLiveStatus live;
  live.node_id = s1.id;
  live.connected = true;
  live.acked_version = 7;
  live.endpoint = "203.0.113.5:51820";
  live.last_seen = kNow;
  env.host->live = {live};

  auto lines = Lines(env.Ok("site list").out);
  REQUIRE(lines.size() == 3);
  REQUIRE(absl::StartsWith(lines[0], "NAME  ID"));
  REQUIRE(absl::StrContains(lines[1], "online   7        203.0.113.5:51820  2023-11-14T22:13:20Z"));
  REQUIRE(absl::StrContains(lines[2], "offline  -"));
  Value sites = Env::Json(env.Ok("site list --json").out);
  REQUIRE(sites.list_value().values_size() == 2);
  REQUIRE(Str(sites.list_value().values(0), "name") == "s1");
  REQUIRE(Str(sites.list_value().values(0), "id") == s1.id);
  REQUIRE(Obj(sites.list_value().values(0)).fields().at("connected").bool_value());
  REQUIRE(Num(sites.list_value().values(0), "acked_version") == 7);

  // show by name and by id
  AdminResult r = env.Ok("site show s1");
  REQUIRE(absl::StrContains(r.out, "id:             " + s1.id));
  REQUIRE(absl::StrContains(r.out, "snapshot:       7 acked"));
  REQUIRE(absl::StrContains(r.out, "resources:      none"));
  REQUIRE(Str(Env::Json(env.Ok("site show " + s2.id + " --json").out), "name") == "s2");
  env.Fails("site show nope", 1, "site show: site 'nope' does not exist (see: site list)");
  env.Fails("site show " + d1.id, 1, "does not exist");  // a device is not a site

  Value devices = Env::Json(env.Ok("device list --user bob --json").out);
  REQUIRE(devices.list_value().values_size() == 1);
  REQUIRE(Str(devices.list_value().values(0), "user") == "bob");
  REQUIRE(absl::StrContains(env.Ok("device list").out, "USER"));
  env.Fails("device list --user zed", 1, "user 'zed' does not exist");
  REQUIRE(Str(Env::Json(env.Ok("device show " + d1.id + " --json").out), "id") == d1.id);
  env.Fails("user remove bob", 1, "user remove: ");  // owns a device
  REQUIRE(env.host->changed == changed);
  REQUIRE(env.host->disconnected.empty());

  // A site that serves a resource cannot go; a revoked one is disconnected.
  env.Ok("resource add db --kind tcp --port 5432 --site s2 --target 10.0.0.5:5432");
  const int before = env.host->changed;
  env.Fails("site remove s2", 1, "is a target of resource 'db'");
  REQUIRE(env.host->changed == before);
  REQUIRE(env.host->disconnected.empty());
  REQUIRE(absl::StrContains(env.Ok("site show s2").out, "db -> 10.0.0.5:5432"));

  r = env.Ok("node revoke s1");
  REQUIRE(absl::StrContains(r.out, "site 's1' (" + s1.id + ") revoked"));
  REQUIRE(env.host->changed == before + 1);
  REQUIRE(env.host->disconnected == std::vector<std::string>{s1.id});
  env.Fails("node revoke s1", 1, "revoked already");
  REQUIRE(env.host->disconnected.size() == 1);
  REQUIRE(absl::StrContains(env.Ok("site list").out, "revoked"));

  env.Ok("site remove " + s1.id);
  env.Ok("device remove " + d1.name);
  REQUIRE(env.host->disconnected == std::vector<std::string>{s1.id, s1.id, d1.id});
  REQUIRE(env.host->changed == before + 3);
  env.Fails("site remove s1", 1, "site 's1' does not exist");
  REQUIRE(Lines(env.Ok("site list").out).size() == 2);
}

TEST_CASE("admin: site health: counts, median RTT, per-client lines", "[admin]") {
  Env env;
  env.Ok("user add bob");
  env.Ok("user add carol");
  const NodeRecord s1 = env.Enroll(wire::NODE_KIND_SITE, "s1", 'a');
  const NodeRecord s2 = env.Enroll(wire::NODE_KIND_SITE, "s2", 'b');
  const NodeRecord s3 = env.Enroll(wire::NODE_KIND_SITE, "s3", 'c');
  const NodeRecord d1 = env.Enroll(wire::NODE_KIND_CLIENT, "bob", 'd');
  const NodeRecord d2 = env.Enroll(wire::NODE_KIND_CLIENT, "carol", 'e');
  const NodeRecord d3 = env.Enroll(wire::NODE_KIND_CLIENT, "carol", 'f');
  auto report = [&](const NodeRecord& site, const std::string& client, bool up, uint32_t rtt) {
    SiteHealthReport r;
    r.site_id = site.id;
    r.client_id = client;
    r.up = up;
    r.rtt_micros = rtt;
    r.received = kNow;
    env.host->health.push_back(r);
  };
  // s1: three see it up (the median of 900 us, 3 ms, 12.345 ms is 3 ms), one down with an old
  // RTT that does not count. s2: two up, an even count: the mean of the middle two. s3: down.
  report(s1, d1.id, true, 12'345);
  report(s1, d2.id, true, 900);
  report(s1, d3.id, false, 400);
  report(s1, "d-gone", true, 3'000);  // a client the store no longer lists
  report(s2, d1.id, true, 1'000);
  report(s2, d2.id, true, 2'000);
  report(s3, d3.id, false, 0);

  const std::string list = env.Ok("site list").out;
  INFO(list);
  const auto lines = Lines(list);
  REQUIRE(lines.size() == 4);
  REQUIRE(absl::EndsWith(lines[0], "LAST SEEN  HEALTH"));
  REQUIRE(absl::EndsWith(lines[1], "  up 3/4 clients, rtt 3.0 ms"));
  REQUIRE(absl::EndsWith(lines[2], "  up 2/2 clients, rtt 1.5 ms"));
  REQUIRE(absl::EndsWith(lines[3], "  down 1/1 clients"));
  // Devices have no HEALTH column.
  REQUIRE_FALSE(absl::StrContains(env.Ok("device list").out, "HEALTH"));

  Value sites = Env::Json(env.Ok("site list --json").out);
  const Value& h1 = Obj(sites.list_value().values(0)).fields().at("health");
  REQUIRE(Num(h1, "clients") == 4);
  REQUIRE(Num(h1, "up") == 3);
  REQUIRE(Num(h1, "rtt_micros_median") == 3000);
  REQUIRE(Num(Obj(sites.list_value().values(1)).fields().at("health"), "rtt_micros_median") == 1500);
  const Value& h3 = Obj(sites.list_value().values(2)).fields().at("health");
  REQUIRE(Num(h3, "up") == 0);
  REQUIRE(Obj(h3).fields().at("rtt_micros_median").has_null_value());

  // site show: one line per client, by the client's name (an unknown one by its id; these
  // devices are named by their ids, so the id is not repeated).
  REQUIRE(d1.name == d1.id);
  const std::string show = env.Ok("site show s1").out;
  INFO(show);
  REQUIRE(absl::StrContains(show, "health:         up 3/4 clients, rtt 3.0 ms\n"));
  std::vector<std::string> clients;
  for (const auto& line : Lines(show)) {
    if (absl::StartsWith(line, "client ")) clients.push_back(line);
  }
  REQUIRE(clients.size() == 4);
  REQUIRE(absl::StrContains(clients[0], "client 1:       d-gone: up, rtt 3.0 ms, at 2023-11-14T22:13:20Z"));
  const std::map<std::string, std::string> want = {
      {d1.id, absl::StrCat(d1.id, " (bob): up, rtt 12 ms, at 2023-11-14T22:13:20Z")},
      {d2.id, absl::StrCat(d2.id, " (carol): up, rtt 0.9 ms, at 2023-11-14T22:13:20Z")},
      {d3.id, absl::StrCat(d3.id, " (carol): down, last rtt 0.4 ms, at 2023-11-14T22:13:20Z")}};
  for (const auto& [id, text] : want) {
    REQUIRE(std::count_if(clients.begin(), clients.end(),
                          [&](const std::string& l) { return absl::EndsWith(l, text); }) == 1);
  }
  Value shown = Env::Json(env.Ok("site show s1 --json").out);
  REQUIRE(Num(Obj(shown).fields().at("health"), "clients") == 4);
  REQUIRE(Obj(shown).fields().at("health_reports").list_value().values_size() == 4);
  // No reports at all: "-".
  env.host->health.clear();
  REQUIRE(absl::EndsWith(Lines(env.Ok("site list").out)[1], "  -"));
  REQUIRE(absl::StrContains(env.Ok("site show s1").out, "health:         -\n"));
}

TEST_CASE("admin: resources added, refused, updated, shown and removed", "[admin]") {
  Env env;
  env.Ok("user add alice");
  env.Ok("role add admins");
  const NodeRecord s1 = env.Enroll(wire::NODE_KIND_SITE, "s1", 'a');
  const NodeRecord s2 = env.Enroll(wire::NODE_KIND_SITE, "s2", 'b');
  int changed = env.host->changed;

  // Refusals: each names what to fix, and nothing is written.
  const std::string base = "resource add vault --domain vault.example.internal --site s1 "
                           "--target 10.0.10.15:8080 --kind https";
  env.Fails(base + " --port 70000", 2, "resource add: --port 70000 is not a port (1-65535)");
  env.Fails(base + " --port http", 2, "--port http is not a port");
  env.Fails(base + " --allow admins", 2,
            "--allow 'admins': expected user:NAME, role:NAME or user:*");
  env.Fails(base + " --allow role:", 2, "expected user:NAME");
  env.Fails(base + " --allow user:ghost", 1, "user 'ghost' does not exist (add it with: user add ghost)");
  env.Fails(base + " --allow role:ops", 1, "role 'ops' does not exist (add it with: role add ops)");
  env.Fails(base + " --path admin=role:admins", 2, "--path 'admin=role:admins': expected PREFIX=");
  env.Fails(base + " --path /admin=admins", 2, "--path 'admins': expected user:NAME");
  env.Fails(base + " --path /a=role:admins --path /a=user:alice", 2, "given twice");
  env.Fails(base + " --kind ftp", 2, "--kind given twice");
  env.Fails("resource add vault --site s1 --target 10.0.10.15:8080 --kind ftp", 2,
            "--kind 'ftp': give https, tcp or udp");
  env.Fails("resource add vault --site s1 --target 10.0.10.15:8080", 2, "--kind https|tcp|udp is required");
  env.Fails("resource add vault --site s1 --target 10.0.10.15:8080 --kind https", 2,
            "needs at least one --domain");
  env.Fails("resource add ssh --site s1 --target 10.0.0.2:22 --kind tcp", 2,
            "--port is required for a tcp resource");
  env.Fails("resource add ssh --site s1 --kind tcp --port 22", 2, "1 --site but 0 --target");
  env.Fails("resource add ssh --site s1 --target 10.0.0.2 --kind tcp --port 22", 2,
            "--target '10.0.0.2' is not HOST:PORT");
  env.Fails("resource add ssh --site nowhere --target 10.0.0.2:22 --kind tcp --port 22", 1,
            "site 'nowhere' does not exist (see: site list)");
  env.Fails("resource add ssh --site s1 --target 10.0.0.2:22 --kind tcp --port 22 --path /x=user:alice",
            2, "https");  // path rules are for https only (the store's rule)
  REQUIRE(env.host->changed == changed);
  REQUIRE(env.store->ListResources()->empty());

  // Granted: prints the assigned address.
  AdminResult r = env.Ok(base + " --site s2 --target 10.0.20.15:8080 --allow role:admins "
                                "--allow user:alice --path /admin=role:admins --case-insensitive-paths");
  REQUIRE(r.out == "resource 'vault' added: https at 100.96.128.2:443 (vault.example.internal); "
                   "allowed: user:alice,role:admins (+1 path rule)\n");
  REQUIRE(env.host->changed == ++changed);
  auto stored = env.store->GetResource("vault");
  REQUIRE(stored.ok());
  REQUIRE(stored->targets_size() == 2);
  REQUIRE(stored->targets(0).site_id() == s1.id);
  REQUIRE(stored->targets(1).site_id() == s2.id);
  REQUIRE(stored->targets(1).address() == "10.0.20.15:8080");
  REQUIRE(stored->access().paths(0).prefix() == "/admin");
  REQUIRE(stored->access().case_insensitive_paths());
  env.Fails(base, 1, "resource 'vault' exists");
  env.Fails("resource add other --domain VAULT.example.internal. --site s1 --target 10.0.0.1:80 "
            "--kind https", 1, "belongs to resource 'vault'");  // domains are compared lower-case

  Value ssh = Env::Json(
      env.Ok("resource add ssh --kind tcp --port 22 --site " + s2.id + " --target [fd00::5]:22 "
             "--allow user:* --json").out);
  REQUIRE(Str(ssh, "address") == "100.96.128.3");
  REQUIRE(Num(ssh, "port") == 22);
  REQUIRE(Strs(Obj(ssh).fields().at("access"), "users") == std::vector<std::string>{"*"});
  REQUIRE(Str(Obj(ssh).fields().at("targets").list_value().values(0), "site") == "s2");
  changed += 1;

  // list and show
  auto lines = Lines(env.Ok("resource list").out);
  REQUIRE(lines.size() == 3);
  REQUIRE(absl::StartsWith(lines[0], "NAME   KIND   ADDRESS       PORT  DOMAINS"));
  REQUIRE(absl::StartsWith(lines[1], "ssh    tcp    100.96.128.3  22    -"));
  REQUIRE(absl::StrContains(lines[2], "s1,s2  user:alice,role:admins (+1 path rule)"));
  Value list = Env::Json(env.Ok("resource list --json").out);
  REQUIRE(list.list_value().values_size() == 2);
  r = env.Ok("resource show vault");
  REQUIRE(absl::StrContains(r.out, "address:        100.96.128.2:443"));
  REQUIRE(absl::StrContains(r.out, "target 1:       s1 (" + s1.id + ") -> 10.0.10.15:8080"));
  REQUIRE(absl::StrContains(r.out, "path /admin:    role:admins"));
  REQUIRE(absl::StrContains(r.out, "certificate:    none yet"));
  Value shown = Env::Json(env.Ok("resource show vault --json").out);
  const Value& access = Obj(shown).fields().at("access");
  REQUIRE(Str(access.struct_value().fields().at("paths").list_value().values(0), "prefix") == "/admin");
  REQUIRE(Obj(shown).fields().at("certificate").has_null_value());
  env.Fails("resource show nope", 1, "resource show: resource 'nope' does not exist (see: resource list)");
  REQUIRE(env.host->changed == changed);

  // update: only what is given changes; --allow replaces the list.
  env.Fails("resource update vault", 2, "nothing to change");
  env.Fails("resource update nope --port 444", 1, "resource 'nope' does not exist");
  env.Fails("resource update vault --port 0", 2, "--port 0 is not a port (1-65535)");
  env.Fails("resource update vault --allow user:ghost", 1, "user 'ghost' does not exist");
  REQUIRE(env.host->changed == changed);
  r = env.Ok("resource update vault --allow user:alice --port 8443");
  REQUIRE(env.host->changed == ++changed);
  stored = env.store->GetResource("vault");
  REQUIRE(stored->port() == 8443);
  REQUIRE(stored->access().users_size() == 1);
  REQUIRE(stored->access().roles_size() == 0);
  REQUIRE(stored->access().paths_size() == 1);  // untouched
  REQUIRE(stored->targets_size() == 2);         // untouched
  REQUIRE(stored->address() == "100.96.128.2");
  env.Ok("resource update vault --no-paths --case-sensitive-paths --site s1 --target 10.0.10.16:8080");
  stored = env.store->GetResource("vault");
  REQUIRE(stored->access().paths_size() == 0);
  REQUIRE_FALSE(stored->access().case_insensitive_paths());
  REQUIRE(stored->targets_size() == 1);
  REQUIRE(stored->targets(0).address() == "10.0.10.16:8080");
  env.Ok("resource update vault --no-allow");
  REQUIRE(absl::StrContains(env.Ok("resource list").out, "nobody"));
  changed += 2;

  env.Ok("resource remove vault");
  env.Fails("resource remove vault", 1, "resource 'vault' does not exist");
  REQUIRE(env.host->changed == changed + 1);
  REQUIRE(env.host->disconnected.empty());
}

TEST_CASE("admin: ca export and cert rotate", "[admin]") {
  Env env;
  AdminResult r = env.Ok("ca export");
  REQUIRE(r.out == env.host->ca_pem);
  REQUIRE(absl::StrContains(r.err, "install -m 0644 ca.pem /usr/local/share/ca-certificates/p2proxy.crt && update-ca-certificates"));
  REQUIRE(absl::StrContains(r.err, "certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n p2proxy -i ca.pem"));
  r = env.Ok("ca export --help-trust");
  REQUIRE(absl::StartsWith(r.out, env.host->ca_pem));
  REQUIRE(absl::StrContains(r.out, "update-ca-certificates"));
  REQUIRE(r.err.empty());
  REQUIRE(Str(Env::Json(env.Ok("ca export --json").out), "certificate_pem") == env.host->ca_pem);

  env.Ok("role add x");
  const NodeRecord s1 = env.Enroll(wire::NODE_KIND_SITE, "s1", 'a');
  env.Ok("resource add web --domain web.example.internal --site s1 --target 10.0.0.1:80 --kind https");
  env.Ok("resource add db --kind tcp --port 5432 --site s1 --target 10.0.0.5:5432");
  env.Fails("cert rotate", 2, "give exactly one of --server, --resource NAME, --all");
  env.Fails("cert rotate --server --all", 2, "give exactly one");
  env.Fails("cert rotate --resource nope", 1, "resource 'nope' does not exist");
  env.Fails("cert rotate --resource db", 1, "resource 'db' is tcp; only https resources have certificates");
  REQUIRE(env.host->rotations.empty());
  env.Ok("cert rotate --server");
  env.Ok("cert rotate --resource web");
  env.Ok("cert rotate --all");
  REQUIRE(env.host->rotations.size() == 3);
  REQUIRE(env.host->rotations[0].what == CertRotation::What::kServer);
  REQUIRE(env.host->rotations[1].what == CertRotation::What::kResource);
  REQUIRE(env.host->rotations[1].resource == "web");
  REQUIRE(env.host->rotations[2].what == CertRotation::What::kAllResources);
  env.host->rotate_status = absl::UnavailableError("the CA key is not loaded");
  env.Fails("cert rotate --all", 1, "cert rotate: the CA key is not loaded");
}

wire::AuditEvent Event(int64_t ms, const std::string& user, const std::string& resource,
                       const std::string& path, bool allowed) {
  wire::AuditEvent e;
  e.set_time_unix_ms(ms);
  e.set_kind(wire::AUDIT_KIND_HTTPS);
  e.set_resource(resource);
  e.set_peer_key(std::string(32, 'k'));
  e.set_peer("100.96.0.9:40000");
  e.set_user(user);
  e.set_method("GET");
  e.set_host(resource + ".example.internal");
  e.set_path(path);
  e.set_status(allowed ? 200 : 403);
  e.set_allowed(allowed);
  if (!allowed) e.set_reason("no grant");
  return e;
}

TEST_CASE("admin: audit tail and query with filters", "[admin]") {
  Env env;
  const NodeRecord s1 = env.Enroll(wire::NODE_KIND_SITE, "s1", 'a');
  const NodeRecord s2 = env.Enroll(wire::NODE_KIND_SITE, "s2", 'b');
  const int64_t now_ms = absl::ToUnixMillis(kNow);
  wire::AuditBatch b1;
  b1.set_sequence(1);
  *b1.add_events() = Event(now_ms - 3 * 3600 * 1000, "alice", "vault", "/old", true);
  *b1.add_events() = Event(now_ms - 30 * 60 * 1000, "alice", "vault", "/login", true);
  *b1.add_events() = Event(now_ms - 20 * 60 * 1000, "bob", "vault", "/admin", false);
  REQUIRE(env.store->AppendAuditBatch(s1.id, b1, kNow).ok());
  wire::AuditBatch b2;
  b2.set_sequence(1);
  *b2.add_events() = Event(now_ms - 10 * 60 * 1000, "bob", "grafana", "/d/1", true);
  REQUIRE(env.store->AppendAuditBatch(s2.id, b2, kNow).ok());
  const int changed = env.host->changed;

  const std::string tail = env.Ok("audit tail -n 2").out;
  INFO(tail);
  auto lines = Lines(tail);
  REQUIRE(lines.size() == 3);
  REQUIRE(absl::StartsWith(lines[0], "TIME                  SITE  USER  RESOURCE  KIND   METHOD  PATH"));
  REQUIRE(absl::StrContains(lines[0], "STATUS  DECISION  REASON"));
  REQUIRE(absl::StrContains(lines[1], "s1    bob   vault     https  GET     /admin  403     deny      no grant"));
  REQUIRE(absl::StrContains(lines[2], "s2    bob   grafana"));
  REQUIRE(Lines(env.Ok("audit tail").out).size() == 5);
  env.Fails("audit tail -n 0", 2, "-n '0' is not a count");

  auto json_lines = Lines(env.Ok("audit query --user alice --json").out);
  REQUIRE(json_lines.size() == 2);
  Value first = Env::Json(json_lines[0]);
  REQUIRE(Str(first, "path") == "/old");  // oldest first
  REQUIRE(Str(first, "site") == "s1");
  REQUIRE(Str(first, "site_id") == s1.id);
  REQUIRE(Str(first, "decision") == "allow");
  REQUIRE(Num(first, "status") == 200);
  REQUIRE(Str(Env::Json(json_lines[1]), "path") == "/login");

  REQUIRE(Lines(env.Ok("audit query --resource vault --since -1h").out).size() == 3);
  REQUIRE(Lines(env.Ok("audit query --site s2").out).size() == 2);
  REQUIRE(Lines(env.Ok("audit query --site " + s1.id + " --user bob").out).size() == 2);
  REQUIRE(Lines(env.Ok("audit query --since 2023-11-14T21:30:00Z --until -15m").out).size() == 3);
  auto limited = Lines(env.Ok("audit query --limit 1 --json").out);
  REQUIRE(limited.size() == 1);
  REQUIRE(Str(Env::Json(limited[0]), "resource") == "grafana");  // the latest
  REQUIRE(Lines(env.Ok("audit query --user nobody").out).size() == 1);  // the header only
  env.Fails("audit query --since yesterday", 2, "--since 'yesterday' is not a time");
  env.Fails("audit query --since -1h --until -2h", 2, "--since is not before --until");
  env.Fails("audit query --site nowhere", 1, "site 'nowhere' does not exist");
  env.Fails("audit query --limit 1000001", 2, "--limit '1000001' is not a count");
  REQUIRE(env.host->changed == changed);
}

}  // namespace
