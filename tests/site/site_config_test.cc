// Tests for the site's JSON config: a realistic file, the JSON leniencies we refuse, protobuf's
// errors rewritten, and every rule of site_config.proto, each with its exact message.
#include "site/site_config.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "crypto/keys.h"

using namespace p2proxy;

namespace {

// RFC 7748 §6.1's Alice is the site, Bob a peer; Carol and the PSK are made up.
constexpr char kAlicePrivate[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
constexpr char kAlicePublic[] = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
constexpr char kBobPublic[] = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";
constexpr char kCarolPublic[] = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
constexpr char kPsk[] = "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=";
// kNotBase64 has a key's length but a character base64 does not have.
constexpr char kNotBase64[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC*=";

// Keys replaces $ALICE, $ALICE_PUBLIC, $BOB, $CAROL and $PSK, so the JSON below stays readable.
std::string Keys(const std::string& json) {
  return absl::StrReplaceAll(json, {{"$ALICE_PUBLIC", kAlicePublic},
                                    {"$ALICE", kAlicePrivate},
                                    {"$BOB", kBobPublic},
                                    {"$CAROL", kCarolPublic},
                                    {"$PSK", kPsk}});
}

// WithWireGuard: a config with one peer and the given "wireguard" object.
std::string WithWireGuard(const std::string& wireguard) {
  return Keys(
      absl::StrCat(R"({"wireguard": )", wireguard, R"(, "peers": [{"public_key": "$BOB"}]})"));
}
// WithPeers: a valid "wireguard" object and the given "peers" list.
std::string WithPeers(const std::string& peers) {
  return Keys(absl::StrCat(R"({"wireguard": {"private_key": "$ALICE", "address": "100.96.0.10"},)",
                           R"( "peers": )", peers, "}"));
}
// WithResources: a valid "wireguard" object, one peer and the given "resources" list.
std::string WithResources(const std::string& resources) {
  return Keys(absl::StrCat(R"({"wireguard": {"private_key": "$ALICE", "address": "100.96.0.10"},)",
                           R"( "peers": [{"public_key": "$BOB"}], "resources": )", resources, "}"));
}
// Vault is a valid tcp resource; |extra| adds fields after its own.
std::string Vault(const std::string& extra = "") {
  return absl::StrCat(R"({"name": "vault", "address": "100.96.128.20", "port": 443, )",
                      R"("protocol": "tcp", "target": "10.0.10.15:8080")", extra, "}");
}

std::string Message(const std::string& json) {
  auto config = site::ParseSiteConfigJson(json);
  REQUIRE_FALSE(config.ok());
  REQUIRE(config.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

std::string Prefixes(const std::vector<base::IpPrefix>& prefixes) {
  std::string out;
  for (const auto& p : prefixes) out += p.ToString() + " ";
  return out;
}

}  // namespace

TEST_CASE("ParseSiteConfigJson reads a realistic site config") {
  const std::string json = Keys(R"({
  "wireguard": {
    "private_key": "$ALICE",
    "listen_port": 51820,
    "address": "100.96.0.10",
    "mtu": 1380
  },
  "peers": [
    {
      "public_key": "$BOB",
      "allowed_ips": ["100.96.0.1/32", "100.96.64.9/17"],
      "endpoint": "203.0.113.5:51820",
      "persistent_keepalive": 25,
      "preshared_key": "$PSK"
    },
    {"publicKey": "$CAROL", "allowedIps": ["100.96.1.7", "fd00:96::7/128"],
     "endpoint": "[2001:db8::7]:4500"}
  ],
  "resources": [
    {"name": "vault", "address": "100.96.128.20", "port": 443, "protocol": "tcp",
     "target": "10.0.10.15:8080"},
    {"name": "vault-quic", "address": "100.96.128.20", "port": 443, "protocol": "udp",
     "target": "10.0.10.15:8443"},
    {"name": "nas ssh", "address": "100.96.128.21", "port": "22", "protocol": "tcp",
     "target": "[fd00:10::5]:22"},
    {"name": "game", "address": "100.96.128.22", "port": 27015, "protocol": "udp",
     "target": "10.0.10.30:27015", "udpIdleTimeoutSeconds": 300}
  ]
})");
  auto config = site::ParseSiteConfigJson(json);
  INFO(config.status().ToString());
  REQUIRE(config.ok());

  const site::SiteWireGuard& wg = config->wireguard;
  REQUIRE(wg.private_key.Equals(crypto::ParseKey(kAlicePrivate).value()));
  REQUIRE(wg.listen_port == 51820);
  REQUIRE(wg.address == base::IpAddress::V4(100, 96, 0, 10));
  REQUIRE(wg.mtu == 1380);

  REQUIRE(config->peers.size() == 2);
  const site::SitePeer& bob = config->peers[0];
  REQUIRE(bob.public_key == crypto::ParsePublicKey(kBobPublic).value());
  // Host bits are cleared, as wg does.
  REQUIRE(Prefixes(bob.allowed_ips) == "100.96.0.1/32 100.96.0.0/17 ");
  REQUIRE(bob.endpoint->ToString() == "203.0.113.5:51820");
  REQUIRE(bob.persistent_keepalive == 25);
  REQUIRE(bob.preshared_key.has_value());
  REQUIRE(bob.preshared_key->Equals(crypto::ParseKey(kPsk).value()));
  const site::SitePeer& carol = config->peers[1];
  REQUIRE(carol.public_key == crypto::ParsePublicKey(kCarolPublic).value());
  REQUIRE(Prefixes(carol.allowed_ips) == "100.96.1.7/32 fd00:96::7/128 ");
  REQUIRE(carol.endpoint->ToString() == "[2001:db8::7]:4500");
  REQUIRE(carol.persistent_keepalive == 0);
  REQUIRE_FALSE(carol.preshared_key.has_value());

  REQUIRE(config->resources.size() == 4);
  const site::SiteResource& vault = config->resources[0];
  REQUIRE(vault.name == "vault");
  REQUIRE(vault.address == base::IpAddress::V4(100, 96, 128, 20));
  REQUIRE(vault.port == 443);
  REQUIRE(vault.protocol == site::Protocol::kTcp);
  REQUIRE(vault.target.ToString() == "10.0.10.15:8080");
  REQUIRE(vault.udp_idle_timeout == absl::Seconds(60));
  // The same address and port over udp is another resource.
  REQUIRE(config->resources[1].protocol == site::Protocol::kUdp);
  REQUIRE(config->resources[1].udp_idle_timeout == absl::Seconds(60));
  REQUIRE(config->resources[2].name == "nas ssh");
  REQUIRE(config->resources[2].port == 22);  // a decimal string, as protobuf's JSON allows
  REQUIRE(config->resources[2].target.ToString() == "[fd00:10::5]:22");
  REQUIRE(config->resources[3].udp_idle_timeout == absl::Seconds(300));
  REQUIRE(site::ProtocolName(config->resources[3].protocol) == "udp");
}

TEST_CASE("ParseSiteConfigJson fills in defaults") {
  auto config = site::ParseSiteConfigJson(
      WithWireGuard(R"({"private_key": "$ALICE", "address": "100.96.0.10"})"));
  REQUIRE(config.ok());
  REQUIRE(config->wireguard.listen_port == 0);
  REQUIRE(config->wireguard.mtu == 1420);
  REQUIRE(config->peers.size() == 1);
  REQUIRE(config->peers[0].allowed_ips.empty());
  REQUIRE_FALSE(config->peers[0].endpoint.has_value());
  REQUIRE(config->resources.empty());

  SECTION("0 is the default, null is absent, and 576 is the smallest MTU") {
    auto other = site::ParseSiteConfigJson(WithWireGuard(
        R"({"private_key": "$ALICE", "address": "100.96.0.10", "mtu": 0, "listen_port": null})"));
    REQUIRE(other.ok());
    REQUIRE(other->wireguard.mtu == 1420);
    other = site::ParseSiteConfigJson(
        WithWireGuard(R"({"private_key": "$ALICE", "address": "100.96.0.10", "mtu": 576})"));
    REQUIRE(other.ok());
    REQUIRE(other->wireguard.mtu == 576);
  }
  SECTION("a UTF-8 byte order mark is skipped") {
    REQUIRE(site::ParseSiteConfigJson(
                "\xEF\xBB\xBF" +
                WithWireGuard(R"({"private_key": "$ALICE", "address": "100.96.0.10"})"))
                .ok());
  }
}

TEST_CASE("ParseSiteConfigJson: wireguard errors") {
  CHECK(Message(Keys(R"({"peers": [{"public_key": "$BOB"}]})")) ==
        "config: wireguard.private_key: missing (generate one with `wg genkey`)");
  CHECK(Message(WithWireGuard(R"({"address": "100.96.0.10"})")) ==
        "config: wireguard.private_key: missing (generate one with `wg genkey`)");
  CHECK(Message(WithWireGuard(R"({"private_key": "abc", "address": "100.96.0.10"})")) ==
        "config: wireguard.private_key: expected 44 base64 characters, got 3");
  const std::string bad_key =
      Message(WithWireGuard(absl::StrCat(R"({"private_key": ")", kNotBase64, R"("})")));
  CHECK(bad_key == "config: wireguard.private_key: not a base64-encoded 32-byte key");
  CHECK(bad_key.find(std::string(kNotBase64).substr(0, 16)) == std::string::npos);
  CHECK(Message(WithWireGuard(
            R"({"private_key": "$ALICE", "address": "100.96.0.10", "listen_port": 70000})")) ==
        "config: wireguard.listen_port: 70000 is not a port (0-65535; 0: dial out only)");
  CHECK(Message(WithWireGuard(R"({"private_key": "$ALICE"})")) ==
        "config: wireguard.address: missing (the site's node address in the overlay, e.g. "
        "\"100.96.0.10\")");
  CHECK(Message(WithWireGuard(R"({"private_key": "$ALICE", "address": "fd00::10"})")) ==
        "config: wireguard.address: 'fd00::10' is not an IPv4 address (overlay addresses are "
        "IPv4)");
  CHECK(Message(WithWireGuard(R"({"private_key": "$ALICE", "address": "100.96.0.10/17"})")) ==
        "config: wireguard.address: '100.96.0.10/17' is not an IPv4 address (write the address "
        "alone, without a prefix length)");
  CHECK(Message(WithWireGuard(R"({"private_key": "$ALICE", "address": "site.example"})")) ==
        "config: wireguard.address: 'site.example' is not an IPv4 address");
  CHECK(Message(WithWireGuard(R"({"private_key": "$ALICE", "address": "100.96.0.10\n"})")) ==
        "config: wireguard.address: '100.96.0.10\\x0a' is not an IPv4 address");
  CHECK(Message(
            WithWireGuard(R"({"private_key": "$ALICE", "address": "100.96.0.10", "mtu": 575})")) ==
        "config: wireguard.mtu: 575 is not an MTU (576-65535, or 0 for 1420)");
  CHECK(Message(WithWireGuard(
            R"({"private_key": "$ALICE", "address": "100.96.0.10", "mtu": 65536})")) ==
        "config: wireguard.mtu: 65536 is not an MTU (576-65535, or 0 for 1420)");
}

TEST_CASE("ParseSiteConfigJson: peer errors") {
  const std::string none =
      "config: peers: none given (the site accepts packets only from its peers; add at least "
      "one)";
  CHECK(Message(Keys(R"({"wireguard": {"private_key": "$ALICE", "address": "100.96.0.10"}})")) ==
        none);
  CHECK(Message(WithPeers("[]")) == none);
  CHECK(Message(WithPeers(R"([{"allowed_ips": ["100.96.0.1/32"]}])")) ==
        "config: peers[0].public_key: missing (the peer's key, as `wg pubkey` prints it)");
  CHECK(Message(WithPeers(
            absl::StrCat(R"([{"public_key": "$BOB"}, {"public_key": ")", kNotBase64, R"("}])"))) ==
        "config: peers[1].public_key: not a base64-encoded 32-byte key");
  CHECK(Message(WithPeers(R"([{"public_key": "$BOB"}, {"public_key": "$CAROL"},
                              {"public_key": "$BOB"}])")) ==
        "config: peers[2].public_key: same key as peers[0]");
  CHECK(Message(WithPeers(R"([{"public_key": "$ALICE_PUBLIC"}])")) ==
        "config: peers[0].public_key: the site's own public key (of wireguard.private_key); a "
        "site is not its own peer");

  CHECK(Message(WithPeers(
            R"([{"public_key": "$BOB", "allowed_ips": ["10.0.0.0/8", "10.0.0.0/33"]}])")) ==
        "config: peers[0].allowed_ips[1]: '10.0.0.0/33': prefix length must be 0 to 32");
  CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "allowed_ips": ["10.0.0.x/8"]}])")) ==
        "config: peers[0].allowed_ips[0]: '10.0.0.x' is not an IPv4 or IPv6 address");
  CHECK(Message(
            WithPeers(R"([{"public_key": "$BOB", "allowed_ips": ["10.0.0.0/8, 10.1.0.0/16"]}])")) ==
        "config: peers[0].allowed_ips[0]: '10.0.0.0/8, 10.1.0.0/16' is not an IP prefix");
  CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "allowed_ips": [""]}])")) ==
        "config: peers[0].allowed_ips[0]: '' is not an IPv4 or IPv6 address");

  const auto endpoint = [](const std::string& value) {
    return Message(
        WithPeers(absl::StrCat(R"([{"public_key": "$BOB", "endpoint": ")", value, R"("}])")));
  };
  CHECK(endpoint("vpn.example.com:51820") ==
        "config: peers[0].endpoint: 'vpn.example.com:51820': host names are not supported yet; "
        "use an IP address");
  CHECK(endpoint("203.0.113.5") ==
        "config: peers[0].endpoint: '203.0.113.5' has no port (IP:port)");
  CHECK(endpoint("203.0.113.5:0") ==
        "config: peers[0].endpoint: '203.0.113.5:0': '0' is not a port (1-65535)");
  CHECK(endpoint("203.0.113.5:65536") ==
        "config: peers[0].endpoint: '203.0.113.5:65536': '65536' is not a port (1-65535)");
  CHECK(endpoint("2001:db8::7:4500") ==
        "config: peers[0].endpoint: '2001:db8::7:4500' is not an address (write IPv6 as "
        "[IPv6]:port)");
  CHECK(endpoint("[2001:db8::7]") ==
        "config: peers[0].endpoint: '[2001:db8::7]' is not an address ([IPv6]:port)");
  CHECK(endpoint("203.0.113.500:51820") ==
        "config: peers[0].endpoint: '203.0.113.500:51820': '203.0.113.500' is not an IP address");

  CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "persistent_keepalive": 65536}])")) ==
        "config: peers[0].persistent_keepalive: 65536 is not a number of seconds (0-65535; 0: "
        "off)");
  CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "preshared_key": "c2VjcmV0"}])")) ==
        "config: peers[0].preshared_key: expected 44 base64 characters, got 8");
}

TEST_CASE("ParseSiteConfigJson: resource errors") {
  CHECK(Message(WithResources(R"([{"address": "100.96.128.20"}])")) ==
        "config: resources[0].name: missing (a label for logs, e.g. \"vault\")");
  CHECK(Message(WithResources(R"([{"name": "va\u0007ult"}])")) ==
        "config: resources[0].name: 'va\\x07ult' contains a control character");
  std::string long_name;
  while (long_name.size() < 65) long_name += "long-";
  CHECK(Message(WithResources(absl::StrCat(R"([{"name": ")", long_name, R"("}])"))) ==
        absl::StrCat("config: resources[0].name: '", long_name.substr(0, 64),
                     "...' is longer than 64 bytes"));
  CHECK(Message(WithResources(absl::StrCat(
            "[", Vault(), ", ",
            R"({"name": "vault", "address": "100.96.128.21", "port": 443, "protocol": "tcp", )",
            R"("target": "10.0.10.16:8080"}])"))) ==
        "config: resources[1].name: 'vault' is already the name of resources[0]");

  CHECK(Message(WithResources(R"([{"name": "vault"}])")) ==
        "config: resources[0].address: missing (the resource's address in the overlay, e.g. "
        "\"100.96.128.20\")");
  CHECK(Message(WithResources(R"([{"name": "vault", "address": "100.96.0.10"}])")) ==
        "config: resources[0].address: 100.96.0.10 is the site's own node address "
        "(wireguard.address); give the resource an address of its own");
  CHECK(Message(WithResources(R"([{"name": "vault", "address": "fd00::20"}])")) ==
        "config: resources[0].address: 'fd00::20' is not an IPv4 address (overlay addresses are "
        "IPv4)");

  CHECK(Message(WithResources(R"([{"name": "vault", "address": "100.96.128.20"}])")) ==
        "config: resources[0].port: missing or 0 (the port to serve, 1-65535)");
  CHECK(Message(WithResources(absl::StrCat(
            "[", Vault(), ", ", R"({"name": "b", "address": "100.96.128.21", "port": 1, )",
            R"("protocol": "tcp", "target": "10.0.0.1:1"}, )",
            R"({"name": "c", "address": "100.96.128.22", "port": 70000}])"))) ==
        "config: resources[2].port: 70000 is not a port (1-65535)");

  const std::string prefix = R"([{"name": "vault", "address": "100.96.128.20", "port": 443)";
  CHECK(Message(WithResources(prefix + "}]")) ==
        "config: resources[0].protocol: missing (\"tcp\", \"udp\" or \"https\")");
  CHECK(Message(WithResources(prefix + R"(, "protocol": "TCP"}])")) ==
        "config: resources[0].protocol: 'TCP' is not a protocol (\"tcp\", \"udp\" or \"https\", lower "
        "case)");
  CHECK(Message(WithResources(prefix + R"(, "protocol": "tcp"}])")) ==
        "config: resources[0].target: missing (where to forward, IP:port, e.g. "
        "\"10.0.10.15:8080\", or \"in-process\")");
  const auto target = [&prefix](const std::string& value) {
    return Message(WithResources(
        absl::StrCat(prefix, R"(, "protocol": "tcp", "target": ")", value, R"("}])")));
  };
  CHECK(target("10.0.10.15:0") ==
        "config: resources[0].target: '10.0.10.15:0': '0' is not a port (1-65535)");
  CHECK(target("10.0.10.15:65536") ==
        "config: resources[0].target: '10.0.10.15:65536': '65536' is not a port (1-65535)");
  CHECK(target("10.0.10.15:http") ==
        "config: resources[0].target: '10.0.10.15:http': 'http' is not a port (1-65535)");
  CHECK(target("nas.lan:8080") ==
        "config: resources[0].target: 'nas.lan:8080': host names are not supported yet; use an "
        "IP address");

  CHECK(Message(WithResources("[" + Vault(R"(, "udp_idle_timeout_seconds": 30)") + "]")) ==
        "config: resources[0].udp_idle_timeout_seconds: only udp resources have one (this one "
        "is tcp)");
  CHECK(Message(WithResources(absl::StrCat(
            "[", Vault(), ", ",
            R"({"name": "vault-2", "address": "100.96.128.20", "port": 443, "protocol": "tcp", )",
            R"("target": "10.0.10.16:8080"}])"))) ==
        "config: resources[1]: duplicate of resources[0] (100.96.128.20:443/tcp)");
}

TEST_CASE("ParseSiteConfigJson reads https resources, identities, access and the audit log") {
  auto config = site::ParseSiteConfigJson(Keys(R"({
    "wireguard": {"private_key": "$ALICE", "address": "100.96.0.10"},
    "peers": [{"public_key": "$BOB", "user": "alice", "roles": ["admin", "dev"]}, {"public_key": "$CAROL"}],
    "audit_log": "/var/log/p2proxy/audit.jsonl",
    "resources": [
      {"name": "vault", "address": "100.96.128.20", "port": 443, "protocol": "https",
       "target": "10.0.10.15:8080", "hostnames": ["Vault.Example.Internal", "*.apps.example.internal"],
       "certificate_file": "/etc/p2proxy/vault.pem", "key_file": "/etc/p2proxy/vault.key",
       "default_certificate": true, "redirect_port": 80,
       "access": {"users": ["alice", "*"], "roles": ["ops"],
                  "paths": [{"prefix": "/admin", "roles": ["admin"]}, {"prefix": "/admin/public/", "users": ["*"]}]}},
      {"name": "ssh", "address": "100.96.128.21", "port": 22, "protocol": "tcp", "target": "10.0.10.16:22"}
    ]})"));
  REQUIRE(config.ok());
  CHECK(config->audit_log == "/var/log/p2proxy/audit.jsonl");
  CHECK(config->peers[0].user == "alice");
  CHECK(config->peers[0].roles == std::vector<std::string>{"admin", "dev"});
  CHECK(config->peers[1].user.empty());
  const site::SiteResource& v = config->resources[0];
  CHECK(v.protocol == site::Protocol::kHttps);
  CHECK(v.hostnames == std::vector<std::string>{"vault.example.internal", "*.apps.example.internal"});
  CHECK(v.certificate_file == "/etc/p2proxy/vault.pem");
  CHECK(v.key_file == "/etc/p2proxy/vault.key");
  CHECK(v.default_certificate);
  CHECK(v.redirect_port == 80);
  CHECK(v.access.grant.users == std::vector<std::string>{"alice", "*"});
  CHECK(v.access.grant.roles == std::vector<std::string>{"ops"});
  REQUIRE(v.access.paths.size() == 2);
  CHECK(v.access.paths[1].prefix == "/admin/public/");
  CHECK(v.access.paths[0].grant.roles == std::vector<std::string>{"admin"});
  // Deny by default: a resource without access has empty grants.
  CHECK(config->resources[1].access.grant.users.empty());
  CHECK(config->resources[1].access.grant.roles.empty());
  auto plain = site::ParseSiteConfigJson(WithResources("[" + Vault() + "]"));
  REQUIRE(plain.ok());
  CHECK(plain->audit_log == "-");
}

TEST_CASE("ParseSiteConfigJson: https, identity and access errors") {
  const std::string https = R"({"name": "vault", "address": "100.96.128.20", "port": 443, "protocol": "https", )"
                            R"("target": "10.0.10.15:8080")";
  const auto res = [&](const std::string& extra) { return Message(WithResources("[" + https + extra + "}]")); };
  CHECK(res("") ==
        "config: resources[0].hostnames: none given (the TLS server names to answer, e.g. "
        "[\"vault.example.internal\"])");
  CHECK(res(R"(, "hostnames": ["vault..internal"])") == "config: resources[0].hostnames[0]: 'vault..internal' is not a host name");
  CHECK(res(R"(, "hostnames": ["va*.example.internal"])") ==
        "config: resources[0].hostnames[0]: 'va*.example.internal' is not a host name (a wildcard is allowed only "
        "as the whole leftmost label, \"*.example.internal\")");
  CHECK(res(R"(, "hostnames": ["*.internal"])") ==
        "config: resources[0].hostnames[0]: '*.internal' is a wildcard over a top-level name; use at least two "
        "labels after \"*.\"");
  CHECK(res(R"(, "hostnames": ["a.example.internal", "A.example.internal"])") ==
        "config: resources[0].hostnames[1]: 'A.example.internal' is listed twice");
  CHECK(res(R"(, "hostnames": ["a.example.internal"])") ==
        "config: resources[0].certificate_file: missing (a PEM file with the certificate chain, leaf first)");
  CHECK(res(R"(, "hostnames": ["a.example.internal"], "certificate_file": "c.pem")") ==
        "config: resources[0].key_file: missing (a PEM file with the certificate's private key)");
  const std::string tls = R"(, "hostnames": ["a.example.internal"], "certificate_file": "c", "key_file": "k")";
  CHECK(res(tls + R"(, "redirect_port": 443)") == "config: resources[0].redirect_port: 443 is the resource's own port");
  CHECK(res(tls + R"(, "access": {"paths": [{"prefix": "admin"}]})") ==
        "config: resources[0].access.paths[0].prefix: 'admin' does not start with '/'");
  CHECK(res(tls + R"(, "access": {"paths": [{"prefix": "/a/../b"}]})") ==
        "config: resources[0].access.paths[0].prefix: '/a/../b' is not a normalized path (no escapes, '.', '..' "
        "or '//')");
  CHECK(res(tls + R"(, "access": {"paths": [{"prefix": "/a"}, {"prefix": "/a"}]})") ==
        "config: resources[0].access.paths[1].prefix: '/a' has a rule already");
  CHECK(res(tls + R"(, "access": {"users": ["bob", "bob"]})") == "config: resources[0].access.users[1]: 'bob' is listed twice");
  CHECK(res(tls + R"(, "access": {"roles": ["a,b"]})") == "config: resources[0].access.roles[0]: 'a,b' contains ','");
  CHECK(res(tls + R"(, "access": {"users": [""]})") == "config: resources[0].access.users[0]: empty (a user name or \"*\")");

  CHECK(Message(WithResources("[" + Vault(R"(, "hostnames": ["a.example.internal"])") + "]")) ==
        "config: resources[0].hostnames: only https resources have one (this one is tcp)");
  CHECK(Message(WithResources("[" + Vault(R"(, "access": {"paths": [{"prefix": "/"}]})") + "]")) ==
        "config: resources[0].access.paths: only https resources have path rules");
  CHECK(Message(WithResources(absl::StrCat(
            "[", https, tls, R"(, "redirect_port": 80}, )",
            R"({"name": "web", "address": "100.96.128.20", "port": 80, "protocol": "tcp", "target": "10.0.0.1:80"}])"))) ==
        "config: resources[1]: uses 100.96.128.20:80/tcp, as resources[0] does");

  CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "roles": ["dev"]}])")) ==
        "config: peers[0].roles: given without a user; set user too");
  CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "user": "a,b"}])")) == "config: peers[0].user: 'a,b' contains ','");
  CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "user": "al", "roles": ["x", "x"]}])")) ==
        "config: peers[0].roles[1]: 'x' is listed twice");
}

TEST_CASE("ParseSiteConfigJson: case_insensitive_paths and path-rule prefixes") {
  const std::string https = R"({"name": "vault", "address": "100.96.128.20", "port": 443, "protocol": "https", )"
                            R"("target": "10.0.10.15:8080", "hostnames": ["a.example.internal"], )"
                            R"("certificate_file": "c", "key_file": "k")";
  const auto parse = [&](const std::string& access) {
    return site::ParseSiteConfigJson(WithResources("[" + https + R"(, "access": )" + access + "}]"));
  };
  const auto res = [&](const std::string& access) { return Message(WithResources("[" + https + R"(, "access": )" + access + "}]")); };
  auto off = parse(R"({"users": ["*"], "paths": [{"prefix": "/admin"}]})");
  REQUIRE(off.ok());
  CHECK_FALSE(off->resources[0].access.case_insensitive_paths);
  auto on = parse(R"({"users": ["*"], "case_insensitive_paths": true, "paths": [{"prefix": "/Admin"}]})");
  REQUIRE(on.ok());
  CHECK(on->resources[0].access.case_insensitive_paths);
  CHECK(on->resources[0].access.paths[0].prefix == "/Admin");
  auto camel = parse(R"({"users": ["*"], "caseInsensitivePaths": true})");
  REQUIRE(camel.ok());
  CHECK(camel->resources[0].access.case_insensitive_paths);

  CHECK(Message(WithResources("[" + Vault(R"(, "access": {"case_insensitive_paths": true})") + "]")) ==
        "config: resources[0].access.case_insensitive_paths: only https resources have paths");
  // Two rules that cover the same paths.
  CHECK(res(R"({"case_insensitive_paths": true, "paths": [{"prefix": "/admin"}, {"prefix": "/ADMIN"}]})") ==
        "config: resources[0].access.paths[1].prefix: '/ADMIN' covers the same paths as '/admin'");
  CHECK(parse(R"({"paths": [{"prefix": "/admin"}, {"prefix": "/ADMIN"}]})").ok());
  CHECK(res(R"({"paths": [{"prefix": "/admin"}, {"prefix": "/admin/"}]})") ==
        "config: resources[0].access.paths[1].prefix: '/admin/' covers the same paths as '/admin'");
  // Prefixes are matched against normalized paths, so they must be normalized themselves.
  CHECK(res(R"({"paths": [{"prefix": "/admin;x"}]})") ==
        "config: resources[0].access.paths[0].prefix: '/admin;x' holds ';' (requests are matched with ';' "
        "parameters removed)");
  for (const char* prefix : {"/a%2Fb", "/a//b", "/%41dmin", "/../a", "/a/./b"}) {
    INFO(prefix);
    CHECK(res(absl::StrCat(R"({"paths": [{"prefix": ")", prefix, R"("}]})")) ==
          absl::StrCat("config: resources[0].access.paths[0].prefix: '", prefix,
                       "' is not a normalized path (no escapes, '.', '..' or '//')"));
  }
  CHECK(parse(R"({"paths": [{"prefix": "/admin."}]})").ok());
  CHECK(res(R"({"case_insensitive_paths": true, "paths": [{"prefix": "/admin."}]})") ==
        "config: resources[0].access.paths[0].prefix: '/admin.' is not a normalized path (no escapes, '.', '..' or "
        "'//')");
}

TEST_CASE("ParseSiteConfigJson refuses what RFC 8259 does not allow") {
  CHECK(Message("") == "config: empty (a config is a JSON object: {...})");
  CHECK(Message(" \n\t") == "config: empty (a config is a JSON object: {...})");
  CHECK(Message("[]") == "config: line 1, column 1: expected '{' (a config is a JSON object)");
  CHECK(Message("{\n  \"wireguard\": {},\n}") ==
        "config: line 3, column 1: expected a field name after ',' (JSON has no trailing "
        "commas)");
  CHECK(Message("{\"peers\": [{\"allowed_ips\": [\"10.0.0.0/8\",]}]}") ==
        "config: line 1, column 42 (in peers[0].allowed_ips): expected a value after ',' (JSON "
        "has no trailing commas)");
  CHECK(Message("{ // a comment\n}") ==
        "config: line 1, column 3: expected a field name in double quotes");
  CHECK(Message("{'wireguard': {}}") ==
        "config: line 1, column 2: expected a field name in double quotes");
  CHECK(Message("{wireguard: {}}") ==
        "config: line 1, column 2: expected a field name in double quotes");
  CHECK(Message("{\"wireguard\": {\"address\": 'x'}}") ==
        "config: line 1, column 27 (in wireguard.address): expected a value (strings take double "
        "quotes)");
  CHECK(Message("{\"wireguard\": {\"address\": 100.96.0.10}}") ==
        "config: line 1, column 33 (in wireguard): expected ',' or '}' after a field");
  CHECK(Message("{\"wireguard\": {\"mtu\": 01}}") ==
        "config: line 1, column 24 (in wireguard.mtu): numbers have no leading zeros in JSON");
  CHECK(Message("{\"wireguard\": {\"mtu\": 1e999}}") ==
        "config: line 1, column 23 (in wireguard.mtu): number out of range");
  CHECK(Message("{\"wireguard\": {\"\": 1}}") ==
        "config: line 1, column 16 (in wireguard): empty field name");
  CHECK(Message("{\"wireguard\": {") ==
        "config: line 1, column 16 (in wireguard): unexpected end of input (expected a field "
        "name in double quotes)");
  CHECK(Message("{\"wireguard\": {\"address\": \"100.96") ==
        "config: line 1, column 34 (in wireguard.address): unexpected end of input in a string "
        "(missing '\"')");
  CHECK(Message("{} {}") ==
        "config: line 1, column 4: unexpected text after the config's closing '}'");
  CHECK(Message("{\"wireguard\": {\"address\": \"a\nb\"}}") ==
        "config: line 1, column 29 (in wireguard.address): control character in a string (write "
        "a newline as \\n, a tab as \\t)");
  CHECK(Message("{\"wireguard\": {\"address\": \"\\x41\"}}") ==
        "config: line 1, column 29 (in wireguard.address): invalid escape in a string (JSON has "
        "\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
  CHECK(Message("{\"wireguard\": {\"address\": \"\\ud800x\"}}") ==
        "config: line 1, column 34 (in wireguard.address): \\u escape is a high surrogate "
        "without a low one after it");
  CHECK(Message("{\"wireguard\": {\"address\": \"\\udc00\"}}") ==
        "config: line 1, column 34 (in wireguard.address): \\u escape is a lone low surrogate");
  // Columns count characters: "é" is one.
  CHECK(Message("{\"resources\": [{\"name\": \"caf\xC3\xA9\xFF\"}]}") ==
        "config: line 1, column 30 (in resources[0].name): invalid UTF-8 in a string");
  CHECK(Message("{\"resources\": [{\"name\": \"\xED\xA0\x80\"}]}") ==
        "config: line 1, column 26 (in resources[0].name): invalid UTF-8 in a string");

  std::string deep = "{\"x\": ";
  for (int i = 0; i < 20; ++i) deep += "[";
  CHECK(Message(deep) ==
        "config: line 1, column 22 (in x[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]): "
        "nested more than 16 levels deep");
  CHECK(Message(std::string(1 << 20, ' ') + "{}") == "config: larger than 1 MiB");
}

TEST_CASE("ParseSiteConfigJson refuses what protobuf's JSON parser would let through") {
  SECTION("a field given twice, in either spelling") {
    CHECK(Message(Keys("{\"wireguard\": {\"private_key\": \"$ALICE\", \"listen_port\": 1,\n"
                       "  \"address\": \"100.96.0.10\", \"listenPort\": 2}}")) ==
          "config: wireguard.listen_port: given twice (lines 1 and 2)");
    CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "allowedIps": [], "allowed_ips": []}])")) ==
          "config: peers[0].allowed_ips: given twice (both on line 1)");
  }
  SECTION("a lone value where a list goes, or a list where one value goes") {
    CHECK(Message(WithPeers(R"({"public_key": "$BOB"})")) ==
          "config: peers: expected a list of objects ([...])");
    CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "allowed_ips": "10.0.0.0/8"}])")) ==
          "config: peers[0].allowed_ips: expected a list of strings ([...])");
    CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "allowed_ips": [["10.0.0.0/8"]]}])")) ==
          "config: peers[0].allowed_ips[0]: expected a string, not a list");
    CHECK(Message(WithPeers(R"([{"public_key": ["$BOB"]}])")) ==
          "config: peers[0].public_key: expected a string, not a list");
    CHECK(Message(WithWireGuard("[]")) == "config: wireguard: expected an object, not a list");
  }
  SECTION("an object where a scalar goes") {
    CHECK(Message(WithWireGuard(R"({"mtu": {}})")) ==
          "config: wireguard.mtu: expected a non-negative integer, not an object");
    CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "allowed_ips": [{}]}])")) ==
          "config: peers[0].allowed_ips[0]: expected a string, not an object");
  }
  SECTION("null in a list, which would shift the indexes errors name") {
    CHECK(Message(WithPeers(R"([null, {"public_key": "$BOB"}])")) ==
          "config: peers[0]: null in a list (remove it)");
  }
}

TEST_CASE("ParseSiteConfigJson rewrites protobuf's errors to name the field") {
  SECTION("unknown fields") {
    CHECK(Message(WithPeers(R"([{"public_key": "$BOB"}], "peer": [])")) ==
          "config: peer: unknown field (expected one of: wireguard, peers, resources, audit_log, limits)");
    CHECK(Message(WithResources("[" + Vault() + ", " + Vault(R"(, "frob": 1)") + "]")) ==
          "config: resources[1].frob: unknown field (expected one of: name, address, port, "
          "protocol, target, udp_idle_timeout_seconds, access, hostnames, certificate_file, key_file, "
        "default_certificate, redirect_port)");
    CHECK(Message(WithWireGuard(R"({"private_key": "$ALICE", "ListenPort": 1})")) ==
          "config: wireguard.ListenPort: unknown field (expected one of: private_key, "
          "listen_port, address, mtu)");
    // A key pasted where a field name goes is not repeated.
    const std::string pasted = Message(WithWireGuard(R"({"$ALICE": 1})"));
    CHECK(pasted ==
          "config: wireguard: unknown field (name not shown; expected one of: private_key, "
          "listen_port, address, mtu)");
  }
  SECTION("wrong types") {
    CHECK(Message(WithWireGuard(R"({"listen_port": "abc"})")) ==
          "config: wireguard.listen_port: expected a non-negative integer, got a string that is "
          "not one");
    CHECK(Message(WithWireGuard(R"({"listen_port": -1})")) ==
          "config: wireguard.listen_port: expected a non-negative integer, got -1");
    CHECK(Message(WithWireGuard(R"({"mtu": 1.5})")) ==
          "config: wireguard.mtu: expected a non-negative integer, got 1.5");
    CHECK(Message(WithWireGuard(R"({"mtu": 4294967296})")) ==
          "config: wireguard.mtu: expected a non-negative integer, got 4294967296");
    CHECK(Message(WithWireGuard(R"({"mtu": true})")) ==
          "config: wireguard.mtu: expected a non-negative integer, got true");
    CHECK(Message(WithWireGuard(R"({"private_key": 5})")) ==
          "config: wireguard.private_key: expected a string, got 5");
    CHECK(Message(WithWireGuard(R"("$ALICE")")) ==
          "config: wireguard: expected an object, got a string");
    CHECK(Message(WithWireGuard("5")) == "config: wireguard: expected an object, got 5");
    CHECK(Message(WithPeers(R"([{"public_key": "$BOB", "allowed_ips": ["10.0.0.0/8", false]}])")) ==
          "config: peers[0].allowed_ips[1]: expected a string, got false");
    CHECK(Message(WithResources("[" + Vault() + R"(, {"port": "443x"}])")) ==
          "config: resources[1].port: expected a non-negative integer, got a string that is not "
          "one");
  }
}

TEST_CASE("ParseSiteConfigJson never repeats key material") {
  const std::vector<std::string> messages = {
      Message(WithWireGuard(R"({"listen_port": "$ALICE"})")),
      Message(WithWireGuard(R"({"address": "$ALICE"})")),
      Message(WithWireGuard(R"({"private_key": "$ALICE ", "address": "x"})")),
      Message(WithWireGuard(R"({"private_key": "$ALICE$ALICE", "address": "100.96.0.10"})")),
      Message(WithWireGuard(R"({"$ALICE": "$ALICE"})")),
      Message(WithPeers(R"([{"public_key": "$BOB", "preshared_key": "$PSK=="}])")),
      Message(WithPeers(R"([{"public_key": "$BOB", "preshared_key": ["$PSK"]}])")),
      Message(WithPeers(R"([{"public_key": "$BOB", "endpoint": "$PSK"}])")),
      Message(WithPeers(R"([{"public_key": "$BOB", "allowed_ips": ["$PSK"]}])")),
      Message(WithResources(
          absl::StrReplaceAll("[" + Vault() + ", " + Vault() + "]", {{"\"vault\"", "\"$PSK\""}}))),
      Message(Keys(R"({"wireguard": {"private_key": "$ALICE}})")),
      Message(Keys(R"({"wireguard": {"private_key": "$ALICE"}} "$PSK")")),
  };
  CHECK(messages[7] ==
        "config: peers[0].endpoint: a value that looks like a key (not shown) is not an address "
        "(IP:port)");
  for (const std::string& m : messages) {
    INFO(m);
    CHECK(m.find(std::string(kAlicePrivate).substr(0, 16)) == std::string::npos);
    CHECK(m.find(std::string(kPsk).substr(0, 16)) == std::string::npos);
  }
}

TEST_CASE("ParseSiteConfigJson: an in-process target (tcp and https, never udp)") {
  auto config = site::ParseSiteConfigJson(WithResources(
      R"([{"name": "app", "address": "100.96.128.20", "port": 7070, "protocol": "tcp", "target": "in-process"}])"));
  REQUIRE(config.ok());
  REQUIRE(config->resources.size() == 1);
  CHECK(config->resources[0].in_process);
  auto lan = site::ParseSiteConfigJson(WithResources("[" + Vault() + "]"));
  REQUIRE(lan.ok());
  CHECK_FALSE(lan->resources[0].in_process);
  CHECK(Message(WithResources(R"([{"name": "dns", "address": "100.96.128.20", "port": 53, "protocol": "udp", )"
                              R"("target": "in-process"}])")) ==
        "config: resources[0].target: \"in-process\" serves tcp and https resources only (this one is udp)");
  // The word is exact: anything else is parsed as IP:PORT and refused as such.
  CHECK(absl::StrContains(Message(WithResources(R"([{"name": "app", "address": "100.96.128.20", "port": 7070, )"
                                                R"("protocol": "tcp", "target": "In-Process"}])")),
                          "resources[0].target"));
}
