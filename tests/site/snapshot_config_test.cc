// SiteConfigFromSnapshot: a site's snapshot becomes the config it applies, held to the static
// config's rules, with certificates from memory.
#include "site/snapshot_config.h"

#include <catch2/catch.hpp>

#include <string>

#include "crypto/keys.h"
#include "crypto/x25519.h"

using namespace p2proxy;
namespace wire = p2proxy::control::wire;

namespace {

std::string KeyBytes(uint8_t fill) { return std::string(32, static_cast<char>(fill)); }

site::ManagedSite Self() {
  site::ManagedSite self;
  self.node_id = "s-1";
  self.private_key = *crypto::ParseKey("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=");
  self.node_address = *base::IpAddress::Parse("100.96.0.10");
  return self;
}

wire::Snapshot SiteSnapshot() {
  wire::Snapshot s;
  s.set_version(3);
  wire::Peer* server = s.add_peers();
  server->set_public_key(KeyBytes(2));
  server->add_allowed_ips("100.96.0.1/32");
  server->set_endpoint("203.0.113.7:51820");
  server->set_persistent_keepalive_seconds(25);
  server->set_node_id("server");
  server->set_kind(wire::NODE_KIND_SERVER);
  wire::Peer* laptop = s.add_peers();
  laptop->set_public_key(KeyBytes(5));
  laptop->add_allowed_ips("100.96.0.5/32");
  laptop->set_node_id("d-1");
  laptop->set_kind(wire::NODE_KIND_CLIENT);
  laptop->set_user("alice");
  laptop->add_roles("admins");

  wire::Resource* vault = s.add_resources();
  vault->set_name("vault");
  vault->add_domains("vault.example.internal");
  vault->set_address("100.96.128.20");
  vault->set_port(443);
  vault->set_kind(wire::RESOURCE_KIND_HTTPS);
  wire::Target* other = vault->add_targets();
  other->set_site_id("s-2");
  wire::Target* mine = vault->add_targets();
  mine->set_site_id("s-1");
  mine->set_address("10.0.10.15:8080");
  vault->mutable_access()->add_roles("admins");
  wire::PathRule* admin = vault->mutable_access()->add_paths();
  admin->set_prefix("/admin");
  admin->add_users("alice");

  wire::Resource* ssh = s.add_resources();
  ssh->set_name("ssh");
  ssh->set_address("100.96.128.21");
  ssh->set_port(22);
  ssh->set_kind(wire::RESOURCE_KIND_TCP);
  wire::Target* t = ssh->add_targets();
  t->set_site_id("s-1");
  t->set_address("10.0.10.16:22");
  ssh->mutable_access()->add_users("alice");

  wire::Certificate* c = s.mutable_site()->add_certificates();
  c->set_resource("vault");
  c->set_certificate_chain_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  c->set_private_key_pem("-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n");
  return s;
}

}  // namespace

TEST_CASE("SiteConfigFromSnapshot: peers, resources, access and pushed certificates") {
  auto config = site::SiteConfigFromSnapshot(SiteSnapshot(), Self());
  REQUIRE(config.ok());
  REQUIRE(config->wireguard.address.ToString() == "100.96.0.10");
  REQUIRE(crypto::KeyToBase64(crypto::PublicFromPrivate(config->wireguard.private_key)) ==
          "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
  REQUIRE(config->peers.size() == 2);
  REQUIRE(config->peers[0].endpoint.has_value());
  REQUIRE(config->peers[0].persistent_keepalive == 25);
  REQUIRE(config->peers[1].user == "alice");
  REQUIRE(config->peers[1].roles == std::vector<std::string>{"admins"});
  REQUIRE(config->peers[1].allowed_ips.size() == 1);
  REQUIRE(config->resources.size() == 2);
  const site::SiteResource& vault = config->resources[0];
  REQUIRE(vault.protocol == site::Protocol::kHttps);
  REQUIRE(vault.target.ToString() == "10.0.10.15:8080");  // this site's target, not s-2's
  REQUIRE(vault.hostnames == std::vector<std::string>{"vault.example.internal"});
  REQUIRE(vault.certificate_file.empty());
  REQUIRE(vault.key_file.empty());
  REQUIRE(vault.certificate_pem.find("BEGIN CERTIFICATE") != std::string::npos);
  REQUIRE(vault.key_pem.view().find("BEGIN PRIVATE KEY") != std::string::npos);
  REQUIRE(vault.access.grant.roles == std::vector<std::string>{"admins"});
  REQUIRE(vault.access.paths.size() == 1);
  REQUIRE(vault.access.paths[0].grant.users == std::vector<std::string>{"alice"});
  const site::SiteResource& ssh = config->resources[1];
  REQUIRE(ssh.protocol == site::Protocol::kTcp);
  REQUIRE(ssh.target.ToString() == "10.0.10.16:22");
}

TEST_CASE("SiteConfigFromSnapshot refuses what this site cannot serve, naming it") {
  auto refused = [](const wire::Snapshot& s) {
    auto config = site::SiteConfigFromSnapshot(s, Self());
    REQUIRE_FALSE(config.ok());
    return std::string(config.status().message());
  };
  {
    wire::Snapshot s = SiteSnapshot();
    s.mutable_client();  // the role oneof: now a client's snapshot
    REQUIRE(refused(s).find("not a site's snapshot") != std::string::npos);
  }
  {
    wire::Snapshot s = SiteSnapshot();
    s.mutable_resources(1)->mutable_targets(0)->set_site_id("s-9");
    const std::string why = refused(s);
    REQUIRE(why.find("resources[1] 'ssh'") != std::string::npos);
    REQUIRE(why.find("no target for this site (s-1)") != std::string::npos);
  }
  {
    wire::Snapshot s = SiteSnapshot();
    s.mutable_site()->clear_certificates();
    REQUIRE(refused(s).find("'vault': an https resource without its certificate") != std::string::npos);
  }
  {
    wire::Snapshot s = SiteSnapshot();
    s.mutable_resources(0)->mutable_access()->mutable_paths(0)->set_prefix("/a/../admin");
    REQUIRE(refused(s).find("not a normalized path") != std::string::npos);
  }
  {
    wire::Snapshot s = SiteSnapshot();
    s.mutable_resources(1)->mutable_targets(0)->set_address("ssh.lan:22");
    REQUIRE(refused(s).find("resources[1].target") != std::string::npos);
  }
  {
    // The key is never part of an error, whatever goes wrong.
    wire::Snapshot s = SiteSnapshot();
    s.mutable_resources(1)->set_port(0);
    const std::string why = refused(s);
    REQUIRE(why.find("dwdtCnMYpX08") == std::string::npos);
  }
}
