// Snapshots made from a real store: each passes the wire validation, and each node is told
// only what it needs (least knowledge), and nothing a client must not hold.
#include "server/snapshots.h"
#include "temp_dir.h"

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "control/validate.h"
#include "server/sqlite_store.h"

namespace {

using namespace p2proxy::server;
namespace control = p2proxy::control;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);

using p2proxy::server::testing::TempDir;

template <typename T>
T Value(absl::StatusOr<T> s) {
  INFO(s.status().message());
  REQUIRE(s.ok());
  return std::move(s).value();
}

void Ok(const absl::Status& s) {
  INFO(s.message());
  REQUIRE(s.ok());
}

NodeRecord EnrollNode(Store& store, wire::NodeKind kind, const std::string& bound_to, char key,
                      const std::string& name = "") {
  const std::string secret = std::string("token-") + key;
  TokenRecord t;
  t.token_hash = HashToken(secret);
  t.kind = kind;
  t.bound_to = bound_to;
  t.created = kNow;
  t.expires = kNow + absl::Hours(1);
  Ok(store.CreateToken(t));
  EnrollRequest r;
  r.token_hash = t.token_hash;
  r.kind = kind;
  r.wireguard_public_key = std::string(32, key);
  r.requested_name = name;
  r.now = kNow;
  return Value(store.EnrollNode(r, [](const NodeRecord& n) -> absl::StatusOr<std::string> { return "serial-" + n.id; }));
}

wire::Resource MakeResource(const std::string& name, wire::ResourceKind kind, uint32_t port,
                            const std::vector<std::pair<std::string, std::string>>& targets) {
  wire::Resource r;
  r.set_name(name);
  r.set_kind(kind);
  r.set_port(port);
  for (const auto& [site, address] : targets) {
    wire::Target* t = r.add_targets();
    t->set_site_id(site);
    t->set_address(address);
  }
  return r;
}

void RequireValid(const wire::Snapshot& s) {
  wire::Frame f;
  *f.mutable_snapshot() = s;
  const absl::Status st = control::ValidateFrame(f);
  INFO(st.message());
  REQUIRE(st.ok());
}

struct World {
  TempDir dir;
  std::unique_ptr<SqliteStore> store = Value(SqliteStore::Open(dir.File("server.db")));
  NodeRecord s1, s2, alice_laptop, bob_laptop;
  SnapshotSettings settings;

  World() {
    Ok(store->AddUser("alice", kNow).status());
    Ok(store->AddUser("bob", kNow).status());
    Ok(store->AddRole("admins", kNow).status());
    Ok(store->GrantRole("alice", "admins"));
    s1 = EnrollNode(*store, wire::NODE_KIND_SITE, "s1", 'a');
    s2 = EnrollNode(*store, wire::NODE_KIND_SITE, "s2", 'b');
    alice_laptop = EnrollNode(*store, wire::NODE_KIND_CLIENT, "alice", 'c', "laptop");
    bob_laptop = EnrollNode(*store, wire::NODE_KIND_CLIENT, "bob", 'd', "laptop2");
    Ok(store->RecordNodeSeen(s1.id, "198.51.100.7:51820", kNow));

    wire::Resource vault = MakeResource("vault", wire::RESOURCE_KIND_HTTPS, 443,
                                        {{s1.id, "10.0.10.15:8080"}, {s2.id, "10.0.20.15:8080"}});
    vault.add_domains("vault.example.internal");
    vault.mutable_access()->add_roles("admins");
    wire::PathRule* admin = vault.mutable_access()->add_paths();
    admin->set_prefix("/admin");
    admin->add_users("alice");
    vault = Value(store->AddResource(vault));
    CertificateRecord c;
    c.resource = "vault";
    c.chain_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    c.key_pem = "-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----\n";
    c.serial = "01";
    c.not_after = kNow + absl::Hours(24 * 90);
    Ok(store->PutCertificate(c));

    wire::Resource ssh = MakeResource("ssh", wire::RESOURCE_KIND_TCP, 22, {{s2.id, "10.0.20.16:22"}});
    ssh.add_domains("ssh.lab.internal");
    ssh.mutable_access()->add_users("bob");
    Ok(store->AddResource(ssh).status());

    settings.server_wireguard_key = std::string(32, 'z');
    settings.server_wireguard_endpoint = "203.0.113.1:51820";
  }
};

}  // namespace

TEST_CASE("SiteSnapshot: the site's resources, its own target address, certificates, allowed devices only") {
  World w;
  const Deployment d = Value(LoadDeployment(*w.store));
  const wire::Snapshot s1 = SiteSnapshot(d, w.settings, w.s1);
  RequireValid(s1);
  REQUIRE(s1.version() == w.store->CurrentVersion());
  REQUIRE(s1.resources_size() == 1);
  REQUIRE(s1.resources(0).name() == "vault");
  for (const auto& t : s1.resources(0).targets()) {
    REQUIRE(t.address().empty() == (t.site_id() != w.s1.id));  // s2's LAN address is not told
  }
  REQUIRE(s1.site().certificates_size() == 1);
  REQUIRE(s1.peers_size() == 2);  // the server and alice's laptop (bob may not use vault)
  REQUIRE(s1.peers(0).kind() == wire::NODE_KIND_SERVER);
  REQUIRE(s1.peers(1).node_id() == w.alice_laptop.id);
  REQUIRE(s1.peers(1).user() == "alice");
  REQUIRE(s1.peers(1).roles(0) == "admins");

  const wire::Snapshot s2 = SiteSnapshot(d, w.settings, w.s2);
  RequireValid(s2);
  REQUIRE(s2.resources_size() == 2);
  REQUIRE(s2.peers_size() == 3);  // the server, alice (vault), bob (ssh)
}

TEST_CASE("SiteSnapshot leaves out an https resource whose certificate is not issued yet") {
  World w;
  wire::Resource wiki = MakeResource("wiki", wire::RESOURCE_KIND_HTTPS, 443, {{w.s1.id, "10.0.10.20:80"}});
  wiki.add_domains("wiki.example.internal");
  wiki.mutable_access()->add_users("*");
  Ok(w.store->AddResource(wiki).status());
  const wire::Snapshot s = SiteSnapshot(Value(LoadDeployment(*w.store)), w.settings, w.s1);
  RequireValid(s);
  REQUIRE(s.resources_size() == 1);
}

TEST_CASE("ClientSnapshot: usable resources, sites as peers with routes, DNS, and no secrets") {
  World w;
  const Deployment d = Value(LoadDeployment(*w.store));
  const wire::Snapshot alice = ClientSnapshot(d, w.settings, w.alice_laptop);
  RequireValid(alice);
  REQUIRE(alice.resources_size() == 1);  // vault, not bob's ssh
  REQUIRE(alice.resources(0).name() == "vault");
  REQUIRE(alice.resources(0).access().paths_size() == 0);
  for (const auto& t : alice.resources(0).targets()) REQUIRE(t.address().empty());
  REQUIRE(alice.client().zones_size() == 1);
  REQUIRE(alice.client().zones(0) == "example.internal");
  REQUIRE(alice.client().records_size() == 1);
  REQUIRE(alice.client().records(0).name() == "vault.example.internal");
  REQUIRE(alice.client().records(0).address() == alice.resources(0).address());
  // The server and both sites serving vault: s1 (the first) carries vault's address in its
  // allowed IPs; s2 is a peer with only its node address (the client's site selector may pick
  // it per flow).
  REQUIRE(alice.peers_size() == 3);
  const wire::Peer& site = alice.peers(1);
  REQUIRE(site.node_id() == w.s1.id);
  REQUIRE(site.endpoint() == "198.51.100.7:51820");
  REQUIRE(site.allowed_ips_size() == 2);
  REQUIRE(site.allowed_ips(1) == alice.resources(0).address() + "/32");
  REQUIRE(alice.peers(2).node_id() == w.s2.id);
  REQUIRE(alice.peers(2).allowed_ips_size() == 1);
  REQUIRE(alice.SerializeAsString().find("SECRETKEY") == std::string::npos);

  const wire::Snapshot bob = ClientSnapshot(d, w.settings, w.bob_laptop);
  RequireValid(bob);
  REQUIRE(bob.resources_size() == 1);
  REQUIRE(bob.resources(0).name() == "ssh");
  REQUIRE(bob.peers_size() == 2);
  REQUIRE(bob.peers(1).node_id() == w.s2.id);
}

TEST_CASE("ClientSnapshot: a revoked site serves nothing, a user with no grant gets only the server") {
  World w;
  Ok(w.store->RevokeNode(w.s1.id, kNow));
  const Deployment d = Value(LoadDeployment(*w.store));
  const wire::Snapshot alice = ClientSnapshot(d, w.settings, w.alice_laptop);
  RequireValid(alice);
  REQUIRE(alice.peers_size() == 2);
  REQUIRE(alice.peers(1).node_id() == w.s2.id);  // vault fails over to its next site
  Ok(w.store->RevokeRole("alice", "admins"));
  const wire::Snapshot none = ClientSnapshot(Value(LoadDeployment(*w.store)), w.settings, w.alice_laptop);
  RequireValid(none);
  REQUIRE(none.resources_size() == 0);
  REQUIRE(none.peers_size() == 1);
}

TEST_CASE("SiteSnapshot: a device's endpoint as the server heard it, for hole punching, and none if unheard") {
  World w;
  Ok(w.store->RecordNodeSeen(w.alice_laptop.id, "198.51.100.9:40000", kNow));
  const Deployment d = Value(LoadDeployment(*w.store));
  const wire::Snapshot s2 = SiteSnapshot(d, w.settings, w.s2);
  RequireValid(s2);
  bool alice = false, bob = false;
  for (const auto& p : s2.peers()) {
    if (p.node_id() == w.alice_laptop.id) {
      alice = true;
      CHECK(p.endpoint() == "198.51.100.9:40000");
      CHECK(p.persistent_keepalive_seconds() == 0);  // sites do not keep every device's NAT open
    }
    if (p.node_id() == w.bob_laptop.id) {
      bob = true;
      CHECK(p.endpoint().empty());
    }
  }
  CHECK(alice);
  CHECK(bob);
}
