// The control plane end to end in one process, over real TLS on loopback: a Server with its
// state dir and store, and NodeAgents as a site and a device would run them. Enrollment with
// good and bad tokens, snapshots pushed on change and acked, a revoked node refused, audit
// batches stored once, a node that rides out a server restart, and clients' health reports
// shown by `admin site list|show`.
#include <catch2/catch.hpp>
#include "temp_dir.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/clock.h"
#include "control/node_agent.h"
#include "net/loop.h"
#include "server/server.h"

namespace {

using namespace p2proxy;
namespace wire = p2proxy::control::wire;

using p2proxy::server::testing::TempDir;

void Ok(const absl::Status& s) {
  INFO(s.message());
  REQUIRE(s.ok());
}

struct Rig {
  TempDir dir;
  net::Loop loop;
  server::ServerConfig config;
  std::unique_ptr<server::Server> server;
  uint16_t port = 0;
  absl::Duration health_interval = absl::Milliseconds(500);  // for agents opened from now on

  Rig() {
    config.state_dir = dir.File("server");
    config.listen = *base::SocketAddress::Parse("127.0.0.1:0");
    config.public_address = "127.0.0.1:443";  // the certificate's name; nodes dial `address()`
    config.wireguard_endpoint = "127.0.0.1:51820";
    auto init = server::Server::Init(config, absl::Now());
    INFO(init.status().message());
    REQUIRE(init.ok());
    StartServer();
  }

  void StartServer() {
    if (port != 0) config.listen = *base::SocketAddress::Parse(absl::StrCat("127.0.0.1:", port));
    auto s = server::Server::Start(loop, base::RealClock::Get(), config);
    INFO(s.status().message());
    REQUIRE(s.ok());
    server = std::move(*s);
    port = server->control_address().port();
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }

  // Token makes an enrollment token as `admin token create` does.
  std::string Token(wire::NodeKind kind, const std::string& bound_to, absl::Duration ttl = absl::Hours(1)) {
    static int n = 0;
    std::string secret(32, static_cast<char>(++n));
    const std::string token = absl::StrCat("p2p1_", absl::BytesToHexString(secret), "_", server->pin_hex());
    server::TokenRecord t;
    t.token_hash = server::HashToken(token);
    t.kind = kind;
    t.bound_to = bound_to;
    t.created = absl::Now() - absl::Minutes(1);
    t.expires = t.created + ttl;
    Ok(server->store().CreateToken(t));
    return token;
  }

  absl::StatusOr<std::unique_ptr<control::NodeAgent>> Open(const std::string& state, wire::NodeKind kind,
                                                          const std::string& token, const std::string& name = "") {
    control::NodeAgentOptions o;
    o.state_dir = dir.File(state);
    o.kind = kind;
    o.server = address();
    o.token = token;
    o.requested_name = name;
    o.backoff.initial = absl::Milliseconds(50);
    o.backoff.max = absl::Milliseconds(200);
    o.audit_flush = absl::Milliseconds(20);
    o.health_interval = health_interval;
    absl::StatusOr<std::unique_ptr<control::NodeAgent>> result = absl::UnknownError("no answer");
    bool done = false;
    control::NodeAgent::Open(loop, std::move(o), [&](absl::StatusOr<std::unique_ptr<control::NodeAgent>> r) {
      result = std::move(r);
      done = true;
    });
    REQUIRE(loop.RunUntil([&] { return done; }, absl::Seconds(20)));
    return result;
  }

  std::unique_ptr<control::NodeAgent> OpenOk(const std::string& state, wire::NodeKind kind, const std::string& token,
                                             const std::string& name = "") {
    auto a = Open(state, kind, token, name);
    INFO(a.status().message());
    REQUIRE(a.ok());
    return std::move(*a);
  }

  // Admin runs `p2proxy-server admin WORDS...` against the running server.
  server::AdminResult Admin(const std::string& line) {
    const std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
    server::AdminResult r = server::RunAdmin(*server, args);
    INFO(line << "\nout: " << r.out << "\nerr: " << r.err);
    REQUIRE(r.exit_code == 0);
    return r;
  }

  size_t NodeCount(wire::NodeKind kind) {
    auto nodes = server->store().ListNodes(kind);
    REQUIRE(nodes.ok());
    return nodes->size();
  }
};

wire::Resource Resource(const std::string& name, const std::string& site_id, uint32_t port) {
  wire::Resource r;
  r.set_name(name);
  r.set_kind(wire::RESOURCE_KIND_TCP);
  r.set_port(port);
  r.add_domains(name + ".example.internal");
  wire::Target* t = r.add_targets();
  t->set_site_id(site_id);
  t->set_address("10.0.0.7:22");
  r.mutable_access()->add_users("alice");
  return r;
}

wire::SiteHealth SiteHealth(const std::string& site_id, bool up, uint32_t rtt_micros) {
  wire::SiteHealth h;
  h.set_site_id(site_id);
  h.set_up(up);
  h.set_rtt_micros(rtt_micros);
  return h;
}

wire::Health Health(std::vector<wire::SiteHealth> sites) {
  wire::Health h;
  for (auto& s : sites) *h.add_sites() = std::move(s);
  return h;
}

// Line is the line of |text| that holds |needle| (empty if none).
std::string Line(const std::string& text, const std::string& needle) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, needle)) return std::string(line);
  }
  return "";
}

// SiteJson is the object of site |id| in `site list --json`.
google::protobuf::Value SiteJson(const std::string& json, const std::string& id) {
  google::protobuf::Value v;
  INFO(json);
  REQUIRE(google::protobuf::util::JsonStringToMessage(json, &v).ok());
  for (const auto& site : v.list_value().values()) {
    if (site.struct_value().fields().at("id").string_value() == id) return site;
  }
  FAIL("site " << id << " is not in the list");
  return v;
}

const google::protobuf::Value& Field(const google::protobuf::Value& v, const std::string& key) {
  INFO(key);
  REQUIRE(v.struct_value().fields().count(key) == 1);
  return v.struct_value().fields().at(key);
}

}  // namespace

TEST_CASE("control plane: a site enrolls, gets its snapshot, and each change reaches it and is acked") {
  Rig rig;
  const std::string token = rig.Token(wire::NODE_KIND_SITE, "s1");
  auto site = rig.OpenOk("site", wire::NODE_KIND_SITE, token);
  REQUIRE(site->enrolled().name() == "s1");
  REQUIRE(absl::StartsWith(site->enrolled().node_id(), "s-"));
  REQUIRE(rig.NodeCount(wire::NODE_KIND_SITE) == 1);
  // The state dir holds the keys, 0600, in a 0700 directory.
  struct stat st;
  REQUIRE(::stat(rig.dir.File("site").c_str(), &st) == 0);
  REQUIRE((st.st_mode & 0777) == 0700);
  for (const char* f : {"wireguard.key", "tls.key", "enrolled.pb"}) {
    REQUIRE(::stat(rig.dir.File(absl::StrCat("site/", f)).c_str(), &st) == 0);
    REQUIRE((st.st_mode & 0777) == 0600);
  }

  std::vector<wire::Snapshot> applied;
  site->Run([&](const wire::Snapshot& s) {
    applied.push_back(s);
    return absl::OkStatus();
  });
  REQUIRE(rig.loop.RunUntil([&] { return !applied.empty(); }, absl::Seconds(10)));
  REQUIRE(applied.back().has_site());
  REQUIRE(applied.back().resources_size() == 0);

  Ok(rig.server->store().AddUser("alice", absl::Now()).status());
  Ok(rig.server->store().AddResource(Resource("ssh", site->enrolled().node_id(), 22)).status());
  rig.server->Changed();
  REQUIRE(rig.loop.RunUntil([&] { return !applied.empty() && applied.back().resources_size() == 1; }, absl::Seconds(10)));
  const uint64_t version = applied.back().version();
  REQUIRE(version == rig.server->store().CurrentVersion());
  // The server learns the node applied it.
  REQUIRE(rig.loop.RunUntil([&] {
    for (const auto& n : rig.server->LiveStatus()) {
      if (n.node_id == site->enrolled().node_id() && n.connected && n.acked_version == version) return true;
    }
    return false;
  }, absl::Seconds(10)));
  // A removal reaches it too.
  Ok(rig.server->store().RemoveResource("ssh"));
  rig.server->Changed();
  REQUIRE(rig.loop.RunUntil([&] { return applied.back().resources_size() == 0; }, absl::Seconds(10)));
}

TEST_CASE("control plane: used, unknown, expired and other-kind tokens are refused and create nothing") {
  Rig rig;
  const std::string token = rig.Token(wire::NODE_KIND_SITE, "s1");
  rig.OpenOk("first", wire::NODE_KIND_SITE, token);
  REQUIRE(rig.NodeCount(wire::NODE_KIND_SITE) == 1);

  auto used = rig.Open("second", wire::NODE_KIND_SITE, token);
  REQUIRE_FALSE(used.ok());
  REQUIRE(absl::StrContains(used.status().message(), "used"));

  const std::string unknown = absl::StrCat("p2p1_", std::string(64, 'a'), "_", rig.server->pin_hex());
  auto refused = rig.Open("third", wire::NODE_KIND_SITE, unknown);
  REQUIRE_FALSE(refused.ok());
  REQUIRE(absl::StrContains(refused.status().message(), "refused by the server"));

  Ok(rig.server->store().AddUser("alice", absl::Now()).status());
  const std::string device_token = rig.Token(wire::NODE_KIND_CLIENT, "alice");
  auto wrong_kind = rig.Open("fourth", wire::NODE_KIND_SITE, device_token);
  REQUIRE_FALSE(wrong_kind.ok());

  const std::string expired = rig.Token(wire::NODE_KIND_SITE, "s2", absl::Seconds(1));
  // Expired: made in the past by Token (created a minute ago, one second of life).
  auto late = rig.Open("fifth", wire::NODE_KIND_SITE, expired);
  REQUIRE_FALSE(late.ok());
  REQUIRE(absl::StrContains(late.status().message(), "expired"));

  // A token with another server's pin never reaches enrollment: the TLS handshake fails.
  const std::string other_pin = absl::StrCat("p2p1_", std::string(64, 'b'), "_", std::string(64, 'c'));
  auto pinned = rig.Open("sixth", wire::NODE_KIND_SITE, other_pin);
  REQUIRE_FALSE(pinned.ok());
  REQUIRE(absl::StrContains(pinned.status().message(), "pin"));

  auto garbage = rig.Open("seventh", wire::NODE_KIND_SITE, "not-a-token");
  REQUIRE_FALSE(garbage.ok());
  REQUIRE(absl::StrContains(garbage.status().message(), "--token"));

  REQUIRE(rig.NodeCount(wire::NODE_KIND_SITE) == 1);
  REQUIRE(rig.NodeCount(wire::NODE_KIND_CLIENT) == 0);
}

TEST_CASE("control plane: a revoked node is refused and cut off") {
  Rig rig;
  auto site = rig.OpenOk("site", wire::NODE_KIND_SITE, rig.Token(wire::NODE_KIND_SITE, "s1"));
  int applied = 0;
  site->Run([&](const wire::Snapshot&) {
    ++applied;
    return absl::OkStatus();
  });
  REQUIRE(rig.loop.RunUntil([&] { return site->connected() && applied > 0; }, absl::Seconds(10)));
  Ok(rig.server->store().RevokeNode(site->enrolled().node_id(), absl::Now()));
  rig.server->Changed();
  rig.server->Disconnect(site->enrolled().node_id());
  REQUIRE(rig.loop.RunUntil([&] { return !site->connected(); }, absl::Seconds(10)));
  // It keeps dialing and keeps being refused.
  const uint64_t refused = rig.server->counters().sessions_refused;
  REQUIRE(rig.loop.RunUntil([&] { return rig.server->counters().sessions_refused > refused; }, absl::Seconds(10)));
  REQUIRE_FALSE(site->connected());
}

TEST_CASE("control plane: audit events reach the store once, also across a server restart") {
  Rig rig;
  auto site = rig.OpenOk("site", wire::NODE_KIND_SITE, rig.Token(wire::NODE_KIND_SITE, "s1"));
  site->Run([](const wire::Snapshot&) { return absl::OkStatus(); });
  REQUIRE(rig.loop.RunUntil([&] { return site->connected(); }, absl::Seconds(10)));
  auto event = [](const std::string& path) {
    wire::AuditEvent e;
    e.set_time_unix_ms(absl::ToUnixMillis(absl::Now()));
    e.set_kind(wire::AUDIT_KIND_HTTPS);
    e.set_resource("vault");
    e.set_peer_key(std::string(32, 'k'));
    e.set_peer("100.96.0.5:4000");
    e.set_user("alice");
    e.set_method("GET");
    e.set_path(path);
    e.set_status(200);
    e.set_allowed(true);
    return e;
  };
  auto stored = [&]() {
    server::AuditQuery q;
    q.limit = 0;
    auto events = rig.server->store().QueryAudit(q);
    REQUIRE(events.ok());
    return events->size();
  };
  site->Audit(event("/one"));
  site->Audit(event("/two"));
  REQUIRE(rig.loop.RunUntil([&] { return stored() == 2; }, absl::Seconds(10)));
  REQUIRE(rig.loop.RunUntil([&] { return site->counters().audit_batches_acked == 1; }, absl::Seconds(10)));

  // The server goes away; events made meanwhile wait in the spool and arrive, once, after.
  rig.server.reset();
  REQUIRE(rig.loop.RunUntil([&] { return !site->connected(); }, absl::Seconds(10)));
  site->Audit(event("/three"));
  rig.loop.RunUntil([&] { return site->counters().audit_batches_sent > 1; }, absl::Milliseconds(200));
  rig.StartServer();
  REQUIRE(rig.loop.RunUntil([&] { return site->connected() && stored() == 3; }, absl::Seconds(20)));
  REQUIRE(rig.loop.RunUntil([&] { return site->counters().audit_batches_acked == 2; }, absl::Seconds(10)));
  REQUIRE(stored() == 3);
}

TEST_CASE("control plane: a node whose apply fails acks the error and keeps what it had") {
  Rig rig;
  auto site = rig.OpenOk("site", wire::NODE_KIND_SITE, rig.Token(wire::NODE_KIND_SITE, "s1"));
  bool refuse = false;
  int applied = 0;
  site->Run([&](const wire::Snapshot&) {
    if (refuse) return absl::InvalidArgumentError("resources[0]: no such target network");
    ++applied;
    return absl::OkStatus();
  });
  REQUIRE(rig.loop.RunUntil([&] { return applied == 1; }, absl::Seconds(10)));
  const uint64_t had = site->applied_version();
  refuse = true;
  Ok(rig.server->store().AddUser("alice", absl::Now()).status());
  rig.server->Changed();
  REQUIRE(rig.loop.RunUntil([&] { return rig.server->counters().snapshots_refused == 1; }, absl::Seconds(10)));
  REQUIRE(site->applied_version() == had);
}

TEST_CASE("certificate serials compare as numbers, whatever their leading zeros and case") {
  REQUIRE(server::SameCertificateSerial("0a1b", "a1b"));
  REQUIRE(server::SameCertificateSerial("00000000000000000000000000000a1b", "A1B"));
  REQUIRE_FALSE(server::SameCertificateSerial("a1b", "a1c"));
  REQUIRE_FALSE(server::SameCertificateSerial("a1b", "a1b0"));
  REQUIRE_FALSE(server::SameCertificateSerial("", "0"));
}

TEST_CASE("control plane: client health shown by admin, coalesced, resent on reconnect, gone on disconnect") {
  Rig rig;
  auto s1 = rig.OpenOk("s1", wire::NODE_KIND_SITE, rig.Token(wire::NODE_KIND_SITE, "s1"));
  auto s2 = rig.OpenOk("s2", wire::NODE_KIND_SITE, rig.Token(wire::NODE_KIND_SITE, "s2"));
  Ok(rig.server->store().AddUser("alice", absl::Now()).status());
  auto client = rig.OpenOk("laptop", wire::NODE_KIND_CLIENT, rig.Token(wire::NODE_KIND_CLIENT, "alice"), "laptop");
  const std::string id1 = s1->enrolled().node_id();
  const std::string id2 = s2->enrolled().node_id();
  const std::string cid = client->enrolled().node_id();
  // Nobody reports yet: "-" and zero clients.
  REQUIRE(absl::EndsWith(Line(rig.Admin("site list").out, id1), "  -"));
  REQUIRE(Field(Field(SiteJson(rig.Admin("site list --json").out, id1), "health"), "clients").number_value() == 0);

  // Reported before the session is up: kept, and sent once it is.
  client->ReportHealth(
      Health({SiteHealth(id1, true, 1'200), SiteHealth(id2, false, 0), SiteHealth("s-gone", true, 500)}));
  REQUIRE(client->counters().health_sent == 0);
  client->Run([](const wire::Snapshot&) { return absl::OkStatus(); });
  REQUIRE(rig.loop.RunUntil([&] { return rig.server->counters().health_reports == 1; }, absl::Seconds(10)));
  REQUIRE(client->counters().health_sent == 1);
  // The site id the deployment does not know is ignored and counted.
  REQUIRE(rig.server->counters().health_unknown_sites == 1);
  REQUIRE(rig.server->HealthReports().size() == 2);

  // The table: a HEALTH column, last, after LAST SEEN.
  std::string list = rig.Admin("site list").out;
  INFO(list);
  REQUIRE(absl::StrContains(Line(list, "NAME"), "LAST SEEN  HEALTH"));
  REQUIRE(absl::EndsWith(Line(list, id1), "  up 1/1 clients, rtt 1.2 ms"));
  REQUIRE(absl::EndsWith(Line(list, id2), "  down 1/1 clients"));
  // The JSON.
  const std::string json = rig.Admin("site list --json").out;
  const google::protobuf::Value site1 = SiteJson(json, id1), site2 = SiteJson(json, id2);
  const auto& h1 = Field(site1, "health");
  REQUIRE(Field(h1, "clients").number_value() == 1);
  REQUIRE(Field(h1, "up").number_value() == 1);
  REQUIRE(Field(h1, "rtt_micros_median").number_value() == 1200);
  const auto& h2 = Field(site2, "health");
  REQUIRE(Field(h2, "clients").number_value() == 1);
  REQUIRE(Field(h2, "up").number_value() == 0);
  REQUIRE(Field(h2, "rtt_micros_median").has_null_value());
  // site show: the summary and one line per client.
  const std::string show = rig.Admin("site show s1").out;
  INFO(show);
  REQUIRE(absl::StrContains(show, "health:         up 1/1 clients, rtt 1.2 ms"));
  REQUIRE(absl::StrContains(show, absl::StrCat("client 1:       laptop (", cid, ", alice): up, rtt 1.2 ms, at ")));
  google::protobuf::Value shown;
  REQUIRE(google::protobuf::util::JsonStringToMessage(rig.Admin("site show s2 --json").out, &shown).ok());
  const auto& reports = Field(shown, "health_reports").list_value();
  REQUIRE(reports.values_size() == 1);
  REQUIRE(Field(reports.values(0), "client_id").string_value() == cid);
  REQUIRE(Field(reports.values(0), "client").string_value() == "laptop");
  REQUIRE_FALSE(Field(reports.values(0), "up").bool_value());

  // Coalesced: reports within the interval replace each other; only the latest goes out, once.
  for (uint32_t rtt : {2'000u, 3'000u, 45'000u}) {
    client->ReportHealth(Health({SiteHealth(id1, true, rtt), SiteHealth(id2, true, 800)}));
  }
  REQUIRE(client->counters().health_sent == 1);
  REQUIRE(rig.loop.RunUntil([&] { return rig.server->counters().health_reports == 2; }, absl::Seconds(10)));
  REQUIRE(client->counters().health_sent == 2);
  rig.loop.RunUntil([] { return false; }, rig.health_interval * 2);
  REQUIRE(client->counters().health_sent == 2);
  REQUIRE(rig.server->counters().health_reports == 2);
  REQUIRE(absl::EndsWith(Line(rig.Admin("site list").out, id1), "  up 1/1 clients, rtt 45 ms"));
  REQUIRE(absl::EndsWith(Line(rig.Admin("site list").out, id2), "  up 1/1 clients, rtt 0.8 ms"));
  // A report that breaks the wire's rules is not sent (the server would close the session).
  client->ReportHealth(Health({SiteHealth(id1, true, 1), SiteHealth(id1, true, 2)}));
  REQUIRE(client->counters().health_invalid == 1);

  // The server restarts and forgets; the client sends its latest again after the reconnect.
  rig.server.reset();
  REQUIRE(rig.loop.RunUntil([&] { return !client->connected(); }, absl::Seconds(10)));
  rig.StartServer();
  REQUIRE(rig.loop.RunUntil([&] { return rig.server->counters().health_reports == 1; }, absl::Seconds(20)));
  REQUIRE(absl::EndsWith(Line(rig.Admin("site list").out, id1), "  up 1/1 clients, rtt 45 ms"));

  // The client goes away: its reports are forgotten.
  client.reset();
  REQUIRE(rig.loop.RunUntil([&] { return rig.server->HealthReports().empty(); }, absl::Seconds(10)));
  REQUIRE(absl::EndsWith(Line(rig.Admin("site list").out, id1), "  -"));
  REQUIRE(Field(Field(SiteJson(rig.Admin("site list --json").out, id1), "health"), "clients").number_value() == 0);
  REQUIRE_FALSE(absl::StrContains(rig.Admin("site show s1").out, "client 1:"));
}

TEST_CASE("control plane: a removed client's health is forgotten") {
  Rig rig;
  auto s1 = rig.OpenOk("s1", wire::NODE_KIND_SITE, rig.Token(wire::NODE_KIND_SITE, "s1"));
  Ok(rig.server->store().AddUser("alice", absl::Now()).status());
  auto client = rig.OpenOk("laptop", wire::NODE_KIND_CLIENT, rig.Token(wire::NODE_KIND_CLIENT, "alice"));
  client->Run([](const wire::Snapshot&) { return absl::OkStatus(); });
  client->ReportHealth(Health({SiteHealth(s1->enrolled().node_id(), true, 900)}));
  REQUIRE(rig.loop.RunUntil([&] { return rig.server->HealthReports().size() == 1; }, absl::Seconds(10)));
  rig.Admin(absl::StrCat("device remove ", client->enrolled().node_id()));
  REQUIRE(rig.server->HealthReports().empty());
  REQUIRE(absl::EndsWith(Line(rig.Admin("site list").out, s1->enrolled().node_id()), "  -"));
}

TEST_CASE("control plane: health from a site is refused and closes its session") {
  Rig rig;
  auto s1 = rig.OpenOk("s1", wire::NODE_KIND_SITE, rig.Token(wire::NODE_KIND_SITE, "s1"));
  auto s2 = rig.OpenOk("s2", wire::NODE_KIND_SITE, rig.Token(wire::NODE_KIND_SITE, "s2"));
  s1->Run([](const wire::Snapshot&) { return absl::OkStatus(); });
  REQUIRE(rig.loop.RunUntil([&] { return s1->connected(); }, absl::Seconds(10)));
  s1->ReportHealth(Health({SiteHealth(s2->enrolled().node_id(), true, 700)}));
  REQUIRE(rig.loop.RunUntil([&] { return rig.server->counters().health_refused >= 1; }, absl::Seconds(10)));
  // The server closed the session (Error{BAD_FRAME}); the site reconnects, sends it again and
  // is refused again. Nothing is kept.
  REQUIRE(rig.loop.RunUntil([&] { return s1->counters().sessions >= 2 && rig.server->counters().health_refused >= 2; },
                            absl::Seconds(10)));
  REQUIRE(rig.server->counters().health_reports == 0);
  REQUIRE(rig.server->HealthReports().empty());
  REQUIRE(absl::EndsWith(Line(rig.Admin("site list").out, s2->enrolled().node_id()), "  -"));
}

TEST_CASE("control plane: init refuses ranges nodes would refuse, and keeps the ones it takes") {
  TempDir dir;
  server::ServerConfig config;
  config.state_dir = dir.File("server");
  config.public_address = "127.0.0.1:443";
  auto refused = [&](const char* node, const char* resource, const char* why) {
    config.node_range = *base::IpPrefix::Parse(node);
    config.resource_range = *base::IpPrefix::Parse(resource);
    auto init = server::Server::Init(config, absl::Now());
    REQUIRE_FALSE(init.ok());
    INFO(init.status().message());
    CHECK(absl::StrContains(init.status().message(), why));
  };
  refused("10.0.0.0/7", "100.96.128.0/18", "--node_range: 10.0.0.0/7 is not an IPv4 range of /8 to /30");
  refused("10.77.0.0/17", "10.77.0.0/31", "--resource_range: 10.77.0.0/31 is not an IPv4 range of /8 to /30");
  refused("10.77.0.0/16", "10.77.128.0/18", "overlap");
  CHECK(::access(dir.File("server/ca.pem").c_str(), F_OK) != 0);  // nothing was made

  // Taken: the ranges are kept; the server's overlay address is the node range's second.
  config.node_range = *base::IpPrefix::Parse("10.77.0.0/17");
  config.resource_range = *base::IpPrefix::Parse("10.77.128.0/18");
  REQUIRE(server::Server::Init(config, absl::Now()).ok());
  server::ServerConfig run;
  run.state_dir = config.state_dir;
  run.listen = *base::SocketAddress::Parse("127.0.0.1:0");
  net::Loop loop;
  auto s = server::Server::Start(loop, base::RealClock::Get(), run);
  REQUIRE(s.ok());
  CHECK((*s)->config().node_range.ToString() == "10.77.0.0/17");
  CHECK((*s)->config().resource_range.ToString() == "10.77.128.0/18");
}
