// ClientConfigFromSnapshot: a client's snapshot becomes the peers and private names it applies,
// held to the static config's rules, with errors naming the snapshot's fields.
#include "client/snapshot_config.h"

#include <catch2/catch.hpp>

#include <string>

#include "absl/strings/match.h"
#include "crypto/keys.h"

using namespace p2proxy;
namespace wire = p2proxy::control::wire;

namespace {

std::string KeyBytes(uint8_t fill) { return std::string(32, static_cast<char>(fill)); }

crypto::PublicKey Own() {
  crypto::PublicKey k;
  k.fill(0x42);
  return k;
}

wire::Snapshot ClientSnapshot() {
  wire::Snapshot s;
  s.set_version(7);
  wire::Peer* server = s.add_peers();
  server->set_public_key(KeyBytes(2));
  server->add_allowed_ips("100.96.0.1/32");
  server->set_endpoint("203.0.113.7:51820");
  server->set_persistent_keepalive_seconds(25);
  server->set_node_id("server");
  server->set_kind(wire::NODE_KIND_SERVER);
  server->set_name("server");
  wire::Peer* site = s.add_peers();
  site->set_public_key(KeyBytes(3));
  site->add_allowed_ips("100.96.0.10/32");
  site->add_allowed_ips("100.96.128.20/32");
  site->set_node_id("s-1");
  site->set_kind(wire::NODE_KIND_SITE);

  wire::Resource* vault = s.add_resources();
  vault->set_name("vault");
  vault->add_domains("vault.example.internal");
  vault->set_address("100.96.128.20");
  vault->set_port(443);
  vault->set_kind(wire::RESOURCE_KIND_HTTPS);
  vault->add_targets()->set_site_id("s-1");

  wire::ClientSection* c = s.mutable_client();
  c->add_zones("example.internal");
  c->add_zones("corp.example");
  wire::DnsRecord* r = c->add_records();
  r->set_name("vault.example.internal");
  r->set_address("100.96.128.20");
  r = c->add_records();
  r->set_name("*.apps.example.internal");
  r->set_address("100.96.128.21");
  r = c->add_records();
  r->set_name("corp.example");
  r->set_address("100.96.128.22");
  return s;
}

std::string Refusal(const wire::Snapshot& s, const client::ClientConfig& local = client::ClientConfig()) {
  auto c = client::ClientConfigFromSnapshot(s, Own(), local);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

}  // namespace

TEST_CASE("ClientConfigFromSnapshot: peers and private names") {
  client::ClientConfig local;
  local.dns.ttl = 30;
  local.zones = {"old.internal"};  // the snapshot's names replace the local ones
  local.resources = {client::ClientResource{"x.old.internal", base::IpAddress::V4(100, 96, 128, 9)}};
  auto c = client::ClientConfigFromSnapshot(ClientSnapshot(), Own(), local);
  INFO(c.status().message());
  REQUIRE(c.ok());
  CHECK(c->version == 7);
  REQUIRE(c->peers.size() == 2);
  const client::ClientPeer& server = c->peers[0];
  CHECK(server.public_key == crypto::PublicKey{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
                                               2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2});
  REQUIRE(server.allowed_ips.size() == 1);
  CHECK(server.allowed_ips[0].ToString() == "100.96.0.1/32");
  REQUIRE(server.endpoint.has_value());
  CHECK(server.endpoint->ToString() == "203.0.113.7:51820");
  CHECK(server.persistent_keepalive == 25);
  CHECK_FALSE(server.preshared_key.has_value());
  CHECK(server.name == "server");
  const client::ClientPeer& site = c->peers[1];
  CHECK(site.name == "s-1");  // no name: the node id
  CHECK_FALSE(site.endpoint.has_value());  // learnt from the site, or through the relay
  REQUIRE(site.allowed_ips.size() == 2);
  CHECK(site.allowed_ips[1].ToString() == "100.96.128.20/32");

  CHECK(c->names.zones == std::vector<std::string>{"example.internal", "corp.example"});
  REQUIRE(c->names.resources.size() == 3);
  CHECK(c->names.resources[0].name == "vault.example.internal");
  CHECK(c->names.resources[0].address.ToString() == "100.96.128.20");
  CHECK(c->names.resources[1].name == "*.apps.example.internal");
  CHECK(c->names.resources[2].name == "corp.example");  // a zone's apex may have a record
  CHECK(c->names.dns.ttl == 30);  // local settings kept
  CHECK(c->names.resource_range.ToString() == "100.96.128.0/18");

  // No peers and no names is a valid snapshot: a device allowed on nothing.
  wire::Snapshot empty;
  empty.set_version(1);
  empty.mutable_client();
  auto e = client::ClientConfigFromSnapshot(empty, Own(), local);
  REQUIRE(e.ok());
  CHECK(e->peers.empty());
  CHECK(e->names.zones.empty());
  CHECK(e->names.resources.empty());
}

TEST_CASE("ClientConfigFromSnapshot: refusals name the snapshot's field") {
  SECTION("a site's snapshot") {
    wire::Snapshot s = ClientSnapshot();
    s.mutable_site();
    CHECK(Refusal(s) == "snapshot: role: not a client's snapshot (it has no client section)");
    s.clear_role();
    CHECK(Refusal(s) == "snapshot: role: not a client's snapshot (it has no client section)");
  }
  SECTION("version 0") {
    wire::Snapshot s = ClientSnapshot();
    s.set_version(0);
    CHECK(Refusal(s) == "snapshot: version: 0 (versions start at 1)");
  }
  SECTION("peers") {
    wire::Snapshot s = ClientSnapshot();
    s.mutable_peers(1)->set_public_key(std::string(31, 'k'));
    CHECK(Refusal(s) == "snapshot: peers[1].public_key: 31 bytes, not a key (32 bytes)");

    s = ClientSnapshot();
    const crypto::PublicKey own = Own();
    s.mutable_peers(1)->set_public_key(std::string(own.begin(), own.end()));
    CHECK(Refusal(s) ==
          "snapshot: peers[1].public_key: the client's own public key (of its WireGuard private key); a "
          "node is not its own peer");

    s = ClientSnapshot();
    s.mutable_peers(1)->set_public_key(KeyBytes(2));
    CHECK(Refusal(s) == "snapshot: peers[1].public_key: the same key as an earlier peer");

    s = ClientSnapshot();
    s.mutable_peers(1)->set_allowed_ips(1, "100.96.128.20/33");
    CHECK(absl::StartsWith(Refusal(s), "snapshot: peers[1].allowed_ips[1]: "));

    s = ClientSnapshot();
    s.mutable_peers(1)->set_allowed_ips(1, "100.96.128.21/24");
    CHECK(Refusal(s) ==
          "snapshot: peers[1].allowed_ips[1]: '100.96.128.21/24' is not a prefix in canonical form "
          "(100.96.128.0/24)");

    s = ClientSnapshot();
    s.mutable_peers(1)->add_allowed_ips("100.96.0.10/32");
    CHECK(Refusal(s) == "snapshot: peers[1].allowed_ips[2]: 100.96.0.10/32 is listed twice");

    s = ClientSnapshot();
    s.mutable_peers(0)->set_endpoint("server.example.com:51820");
    CHECK(absl::StartsWith(Refusal(s), "snapshot: peers[0].endpoint: "));

    s = ClientSnapshot();
    s.mutable_peers(0)->set_persistent_keepalive_seconds(70000);
    CHECK(Refusal(s) ==
          "snapshot: peers[0].persistent_keepalive_seconds: 70000 is not a number of seconds (0-65535; 0: off)");
  }
  SECTION("zones and records: the static config's rules") {
    wire::Snapshot s = ClientSnapshot();
    s.mutable_client()->set_zones(1, "*.corp.example");
    CHECK(Refusal(s) ==
          "snapshot: client.zones[1]: '*.corp.example' is not a DNS name: a zone cannot be a wildcard");

    s = ClientSnapshot();
    s.mutable_client()->add_zones("Example.Internal");
    CHECK(Refusal(s) == "snapshot: client.zones[2]: 'Example.Internal' is already client.zones[0]");

    s = ClientSnapshot();
    s.mutable_client()->mutable_records(2)->set_name("wiki.other.internal");
    CHECK(Refusal(s) ==
          "snapshot: client.records[2].name: 'wiki.other.internal' is not inside any of zones (add its "
          "zone there)");

    s = ClientSnapshot();
    s.mutable_client()->mutable_records(1)->set_name("apps.*.example.internal");
    CHECK(absl::StartsWith(Refusal(s), "snapshot: client.records[1].name: 'apps.*.example.internal' is not a DNS name"));

    s = ClientSnapshot();
    wire::DnsRecord* dup = s.mutable_client()->add_records();
    dup->set_name("VAULT.example.internal");
    dup->set_address("100.96.128.23");
    CHECK(Refusal(s) ==
          "snapshot: client.records[3].name: 'VAULT.example.internal' is already the name of client.records[0]");

    s = ClientSnapshot();
    s.mutable_client()->mutable_records(0)->set_address("100.96.0.5");
    CHECK(Refusal(s) ==
          "snapshot: client.records[0].address: \"100.96.0.5\" is not inside resource_range 100.96.128.0/18");

    s = ClientSnapshot();
    s.mutable_client()->mutable_records(0)->set_address("100.96.128.1");
    CHECK(Refusal(s) ==
          "snapshot: client.records[0].address: 100.96.128.1 is the resolver's address; give the resource another");

    s = ClientSnapshot();
    s.mutable_client()->clear_zones();
    CHECK(absl::StartsWith(Refusal(s), "snapshot: client.zones: none given"));
  }
  SECTION("the local resource range applies") {
    client::ClientConfig local;
    local.resource_range = *base::IpPrefix::Parse("100.96.128.0/24");
    wire::Snapshot s = ClientSnapshot();
    s.mutable_client()->mutable_records(2)->set_address("100.96.129.1");
    CHECK(Refusal(s, local) ==
          "snapshot: client.records[2].address: \"100.96.129.1\" is not inside resource_range 100.96.128.0/24");
  }
}

TEST_CASE("ClientConfigFromSnapshot: the deployment's ranges govern the records, whatever the local config says") {
  wire::Snapshot s = ClientSnapshot();
  s.mutable_client()->clear_records();
  wire::DnsRecord* r = s.mutable_client()->add_records();
  r->set_name("vault.example.internal");
  r->set_address("10.77.128.20");

  // Without ranges in the snapshot, the local (default) resource range refuses the address.
  auto refused = client::ClientConfigFromSnapshot(s, Own(), client::ClientConfig());
  REQUIRE_FALSE(refused.ok());
  CHECK(absl::StrContains(refused.status().message(), "client.records[0].address"));
  CHECK(absl::StrContains(refused.status().message(), "100.96.128.0/18"));

  s.mutable_client()->set_resource_range("10.77.128.0/18");
  s.mutable_client()->set_node_range("10.77.0.0/17");
  auto c = client::ClientConfigFromSnapshot(s, Own(), client::ClientConfig());
  REQUIRE(c.ok());
  CHECK(c->names.resource_range.ToString() == "10.77.128.0/18");
  CHECK(c->node_range.ToString() == "10.77.0.0/17");
  REQUIRE(c->names.resources.size() == 1);
  CHECK(c->names.resources[0].address.ToString() == "10.77.128.20");
  // The resolver is the range's second address; a record there is refused.
  CHECK(client::ResolverAddressIn(c->names.resource_range).ToString() == "10.77.128.1");
  r->set_address("10.77.128.1");
  auto resolver = client::ClientConfigFromSnapshot(s, Own(), client::ClientConfig());
  REQUIRE_FALSE(resolver.ok());
  CHECK(absl::StrContains(resolver.status().message(), "resolver"));
}
