// ValidateFrame: every sample passes; each rule of control.proto, broken once, is refused with
// the field's path; secrets are never repeated; WipeFrameSecrets clears them.
#include "control/validate.h"

#include <catch2/catch.hpp>
#include <functional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "samples.h"

namespace {

using namespace p2proxy::control;
using namespace p2proxy::control::testing;
using wire::Frame;

// Refusal runs |mutate| on a copy of |base| and requires ValidateFrame to refuse it with a
// message that starts "control: " + |expected| (a path, usually with what is wrong).
void RequireRefused(Frame base, const std::function<void(Frame&)>& mutate,
                    const std::string& expected) {
  mutate(base);
  const absl::Status s = ValidateFrame(base);
  INFO("expected: control: " << expected << "\n     got: " << s.message());
  REQUIRE(s.code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(absl::StartsWith(s.message(), "control: " + expected));
  REQUIRE_FALSE(absl::StrContains(s.message(), "\n"));
}

void RequireAccepted(Frame base, const std::function<void(Frame&)>& mutate) {
  mutate(base);
  const absl::Status s = ValidateFrame(base);
  INFO(s.message());
  REQUIRE(s.ok());
}

TEST_CASE("every sample is valid") {
  for (const Frame& f : AllSamples()) {
    INFO(f.ShortDebugString());
    REQUIRE(ValidateFrame(f).ok());
  }
}

TEST_CASE("a frame with no message is refused") {
  REQUIRE(ValidateFrame(Frame()).message() == "control: frame: no message set");
}

TEST_CASE("enroll") {
  const Frame e = SampleEnroll();
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->clear_token(); }, "enroll.token: missing");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->set_token(std::string(257, 't')); },
      "enroll.token: 257 bytes; at most 256");
  SECTION("the token is a secret: its value is never repeated") {
    Frame f = e;
    f.mutable_enroll()->set_token("hunter2 secret");
    const absl::Status s = ValidateFrame(f);
    REQUIRE(s.message() == "control: enroll.token: not printable ASCII");
    REQUIRE_FALSE(absl::StrContains(s.message(), "hunter2"));
  }
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->set_wireguard_public_key(Key(1).substr(1)); },
      "enroll.wireguard_public_key: 31 bytes; a WireGuard key is 32");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->clear_wireguard_public_key(); },
      "enroll.wireguard_public_key: missing");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->set_kind(wire::NODE_KIND_SERVER); },
      "enroll.kind: 3 is not SITE or CLIENT");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->clear_kind(); }, "enroll.kind: missing");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->set_kind(static_cast<wire::NodeKind>(77)); },
      "enroll.kind: 77 is not");
  RequireAccepted(e, [](Frame& f) { f.mutable_enroll()->set_kind(wire::NODE_KIND_CLIENT); });
  RequireAccepted(e, [](Frame& f) { f.mutable_enroll()->clear_requested_name(); });
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->set_requested_name("a,b"); },
      "enroll.requested_name: 'a,b' holds a ','");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->set_requested_name(std::string(65, 'n')); },
      "enroll.requested_name: 65 bytes; at most 64");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->set_csr_pem(kCertPem); },
      "enroll.csr_pem: PEM block 0 is not a CERTIFICATE REQUEST block");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->set_csr_pem(kCsrPem + "junk"); },
      "enroll.csr_pem: PEM block 1 is not");
  RequireRefused(
      e,
      [](Frame& f) {
        f.mutable_enroll()->set_csr_pem("-----BEGIN CERTIFICATE REQUEST-----\nAA\n");
      },
      "enroll.csr_pem: PEM block 0 (CERTIFICATE REQUEST) has no END line");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enroll()->set_csr_pem(kCsrPem + '\t'); },
      "enroll.csr_pem: byte ");
}

TEST_CASE("enrolled") {
  const Frame e = SampleEnrolled();
  RequireRefused(
      e, [](Frame& f) { f.mutable_enrolled()->set_node_id("a b"); },
      "enrolled.node_id: 'a b' is not an id");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enrolled()->clear_name(); }, "enrolled.name: missing");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enrolled()->set_node_address("100.96.0.300"); },
      "enrolled.node_address: '100.96.0.300' is not an IPv4 address");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enrolled()->set_node_address("fd00::1"); },
      "enrolled.node_address: 'fd00::1' is not an IPv4 address");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enrolled()->set_node_address("100.96.0.10/32"); },
      "enrolled.node_address: '100.96.0.10/32' is not an IPv4 address");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enrolled()->set_certificate_chain_pem(kKeyPem); },
      "enrolled.certificate_chain_pem: PEM block 0 is not a CERTIFICATE block");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enrolled()->set_ca_certificate_pem(std::string(20000, 'A')); },
      "enrolled.ca_certificate_pem: 20000 bytes; at most 16384");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enrolled()->set_server_spki_sha256(std::string(20, 'x')); },
      "enrolled.server_spki_sha256: 20 bytes; a SHA-256 digest is 32");
  RequireRefused(
      e,
      [](Frame& f) { f.mutable_enrolled()->set_server_wireguard_public_key(std::string(33, 'k')); },
      "enrolled.server_wireguard_public_key: 33 bytes");
  RequireRefused(
      e, [](Frame& f) { f.mutable_enrolled()->set_server_node_address(""); },
      "enrolled.server_node_address: missing");

  SECTION("the server's endpoint: an IP endpoint or a domain and port") {
    const auto ep = [&](const char* v) {
      return [v](Frame& f) { f.mutable_enrolled()->set_server_wireguard_endpoint(v); };
    };
    RequireAccepted(e, ep("203.0.113.7:51820"));
    RequireAccepted(e, ep("[2001:db8::7]:443"));
    RequireAccepted(e, ep("vpn.example.com:1"));
    const std::string p = "enrolled.server_wireguard_endpoint: ";
    RequireRefused(e, ep("Vpn.example.com:51820"), p + "'Vpn.example.com' is not in lower case");
    RequireRefused(e, ep("vpn.example.com"), p + "'vpn.example.com' is not HOST:PORT");
    RequireRefused(e, ep("2001:db8::7:443"),
                   p + "'2001:db8::7:443' is not HOST:PORT (IPv6 goes in brackets)");
    RequireRefused(e, ep("vpn.example.com:0"), p + "'vpn.example.com:0': '0' is not a port");
    RequireRefused(e, ep("vpn.example.com:65536"),
                   p + "'vpn.example.com:65536': '65536' is not a port");
    RequireRefused(e, ep("vpn.example.com:080"), p + "'vpn.example.com:080': '080' is not a port");
    RequireRefused(e, ep("203.0.113.7:0"), p + "'203.0.113.7:0': port 0");
    RequireRefused(e, ep("203.0.113.07:1"), p + "'203.0.113.07:1' is not an endpoint");
    RequireRefused(e, ep("[2001:DB8::7]:443"),
                   p + "'[2001:DB8::7]:443' is not in canonical form ('[2001:db8::7]:443')");
    RequireRefused(e, ep("1.2.3:80"), p + "'1.2.3:80' is not an endpoint");
    RequireRefused(e, ep("*.example.com:80"), p + "'*.example.com': no wildcard allowed here");
    RequireRefused(e, ep("-a.example.com:80"),
                   p + "'-a.example.com': a label starts or ends with '-'");
    RequireRefused(e, ep("a..example.com:80"), p + "'a..example.com' has an empty label");
    RequireRefused(e, ep("a_b.example.com:80"), p + "'a_b.example.com' is not a domain");
  }
}

TEST_CASE("hello") {
  RequireRefused(
      SampleHello(), [](Frame& f) { f.mutable_hello()->clear_node_id(); },
      "hello.node_id: missing");
  RequireRefused(
      SampleHello(), [](Frame& f) { f.mutable_hello()->set_node_id(std::string(65, 'a')); },
      "hello.node_id: 65 bytes; at most 64");
  RequireAccepted(SampleHello(), [](Frame& f) { f.mutable_hello()->set_last_snapshot_version(0); });
}

TEST_CASE("snapshot: version, role and peers") {
  const Frame site = SampleSiteSnapshot();
  const Frame client = SampleClientSnapshot();
  auto peer = [](Frame& f, int i) { return f.mutable_snapshot()->mutable_peers(i); };
  RequireRefused(
      site, [](Frame& f) { f.mutable_snapshot()->set_version(0); },
      "snapshot.version: 0; it starts at 1");
  RequireRefused(
      site, [](Frame& f) { f.mutable_snapshot()->clear_site(); },
      "snapshot: neither site nor client is set");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->set_public_key(Key(2)); },
      "snapshot.peers[1].public_key: the same key as an earlier peer");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->set_public_key(""); },
      "snapshot.peers[1].public_key: missing");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->set_node_id("server"); },
      "snapshot.peers[1].node_id: 'server' is listed twice");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->set_allowed_ips(0, "100.96.0.20/24"); },
      "snapshot.peers[1].allowed_ips[0]: '100.96.0.20/24' is not in canonical form "
      "('100.96.0.0/24'");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->set_allowed_ips(0, "100.96.0.20"); },
      "snapshot.peers[1].allowed_ips[0]: '100.96.0.20' is not a prefix");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->add_allowed_ips("100.96.0.20/32"); },
      "snapshot.peers[1].allowed_ips[1]: '100.96.0.20/32' is listed twice");
  RequireRefused(
      client, [&](Frame& f) { peer(f, 1)->set_allowed_ips(3, "fd00:96:0::/64"); },
      "snapshot.peers[1].allowed_ips[3]: 'fd00:96:0::/64' is not in canonical form");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 0)->set_endpoint("203.0.113.7"); },
      "snapshot.peers[0].endpoint: '203.0.113.7' is not an endpoint");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 0)->set_persistent_keepalive_seconds(65536); },
      "snapshot.peers[0].persistent_keepalive_seconds: 65536 is above 65535");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 0)->clear_kind(); }, "snapshot.peers[0].kind: missing");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->clear_user(); },
      "snapshot.peers[1].roles: roles without a user");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->add_roles("ops"); },
      "snapshot.peers[1].roles[2]: 'ops' is listed twice");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->set_user("al\x01ice"); },
      "snapshot.peers[1].user: control character at byte 2");
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->set_user("al\xc2\x85ice"); },  // U+0085 (NEL)
      "snapshot.peers[1].user: control character at byte 2");
  RequireAccepted(site, [&](Frame& f) { peer(f, 1)->set_user("\xc3\xa9lodie"); });  // U+00E9
  RequireRefused(
      site, [&](Frame& f) { peer(f, 1)->set_name(std::string(65, 'n')); },
      "snapshot.peers[1].name: 65 bytes; at most 64");

  SECTION("at most 10,000 peers") {
    Frame f = SampleClientSnapshot();
    wire::Snapshot* s = f.mutable_snapshot();
    while (s->peers_size() < static_cast<int>(kMaxPeers)) {
      const int i = s->peers_size();
      wire::Peer* p = s->add_peers();
      std::string key(32, 0);
      key[0] = static_cast<char>(i & 0xFF);
      key[1] = static_cast<char>(i >> 8);
      key[31] = 'x';
      p->set_public_key(key);
      p->set_node_id(absl::StrCat("c-", i));
      p->set_kind(wire::NODE_KIND_CLIENT);
    }
    REQUIRE(ValidateFrame(f).ok());
    RequireRefused(
        f, [](Frame& g) { *g.mutable_snapshot()->add_peers() = g.snapshot().peers(5); },
        "snapshot.peers: 10001 entries; at most 10000");
  }
}

TEST_CASE("snapshot: resources") {
  const Frame site = SampleSiteSnapshot();
  auto res = [](Frame& f, int i) { return f.mutable_snapshot()->mutable_resources(i); };
  RequireRefused(
      site, [&](Frame& f) { res(f, 1)->set_name("vault"); },
      "snapshot.resources[1].name: 'vault' is listed twice");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->clear_kind(); }, "snapshot.resources[0].kind: missing");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_kind(static_cast<wire::ResourceKind>(4)); },
      "snapshot.resources[0].kind: 4 is not HTTPS, TCP or UDP");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->clear_domains(); },
      "snapshot.resources[0].domains: an https resource needs a domain");
  RequireAccepted(site, [&](Frame& f) { res(f, 1)->clear_domains(); });
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_domains(1, "Vault.example.internal"); },
      "snapshot.resources[0].domains[1]: 'Vault.example.internal' is not in lower case");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_domains(1, "vault.*.internal"); },
      "snapshot.resources[0].domains[1]: 'vault.*.internal' is not a domain");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_domains(1, "vault.example.internal."); },
      "snapshot.resources[0].domains[1]: 'vault.example.internal.': write it without the trailing "
      "dot");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_domains(1, "10.0.0.1"); },
      "snapshot.resources[0].domains[1]: '10.0.0.1': the last label is all digits");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_domains(1, "vault.example.internal"); },
      "snapshot.resources[0].domains[1]: 'vault.example.internal' is listed twice");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_domains(1, std::string(64, 'a') + ".internal"); },
      "snapshot.resources[0].domains[1]: 'aaaa");  // label of 64
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_address("100.96.128.020"); },
      "snapshot.resources[0].address: '100.96.128.020' is not an IPv4 address");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_port(0); }, "snapshot.resources[0].port: missing");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->set_port(70000); },
      "snapshot.resources[0].port: 70000 is not a port");
  RequireRefused(
      site,
      [&](Frame& f) {
        res(f, 1)->set_port(443);
        res(f, 1)->set_address("100.96.128.20");
      },
      "snapshot.resources[1].port: 100.96.128.20 port 443/tcp is served by an earlier resource");
  // udp and tcp may share an address and port.
  RequireAccepted(site, [&](Frame& f) { res(f, 2)->set_port(22); });
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->clear_targets(); },
      "snapshot.resources[0].targets: no site serves the resource");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->mutable_targets(1)->set_site_id("s-1"); },
      "snapshot.resources[0].targets[1].site_id: 's-1' is listed twice");
  RequireRefused(
      site, [&](Frame& f) { res(f, 0)->mutable_targets(0)->set_address("10.0.10.15"); },
      "snapshot.resources[0].targets[0].address: '10.0.10.15' is not HOST:PORT");
  RequireAccepted(site,
                  [&](Frame& f) { res(f, 0)->mutable_targets(0)->set_address("vault.lan:8080"); });

  SECTION("access") {
    auto access = [&](Frame& f, int i) { return res(f, i)->mutable_access(); };
    RequireRefused(
        site, [&](Frame& f) { access(f, 0)->add_users("bob"); },
        "snapshot.resources[0].access.users[1]: 'bob' is listed twice");
    RequireRefused(
        site, [&](Frame& f) { access(f, 0)->add_roles(""); },
        "snapshot.resources[0].access.roles[1]: missing");
    RequireRefused(
        site, [&](Frame& f) { *access(f, 1)->add_paths() = access(f, 0)->paths(0); },
        "snapshot.resources[1].access.paths: path rules are for https resources only");
    RequireRefused(
        site, [&](Frame& f) { access(f, 1)->set_case_insensitive_paths(true); },
        "snapshot.resources[1].access.case_insensitive_paths: for https resources only");
    RequireRefused(
        site, [&](Frame& f) { access(f, 0)->mutable_paths(0)->set_prefix("admin"); },
        "snapshot.resources[0].access.paths[0].prefix: 'admin' does not start with '/'");
    RequireRefused(
        site, [&](Frame& f) { access(f, 0)->mutable_paths(0)->set_prefix("/a%2Fb"); },
        "snapshot.resources[0].access.paths[0].prefix: '/a%2Fb' holds '?', '#', '%' or '\\'");
    RequireRefused(
        site, [&](Frame& f) { access(f, 0)->mutable_paths(0)->set_prefix("/a b"); },
        "snapshot.resources[0].access.paths[0].prefix: '/a b' holds a byte that is not printable "
        "ASCII");
    RequireRefused(
        site, [&](Frame& f) { *access(f, 0)->add_paths() = access(f, 0)->paths(0); },
        "snapshot.resources[0].access.paths[1].prefix: '/admin' is listed twice");
    RequireRefused(
        site, [&](Frame& f) { access(f, 0)->mutable_paths(0)->add_roles("a,b"); },
        "snapshot.resources[0].access.paths[0].roles[0]: 'a,b' holds a ','");
    SECTION("at most 1,000 users") {
      Frame f = site;
      for (int i = 1; i < 1000; ++i) access(f, 0)->add_users(absl::StrCat("u", i));
      REQUIRE(ValidateFrame(f).ok());
      RequireRefused(
          f, [&](Frame& g) { access(g, 0)->add_users("one-more"); },
          "snapshot.resources[0].access.users: 1001 entries; at most 1000");
    }
  }
}

TEST_CASE("snapshot: site certificates") {
  const Frame site = SampleSiteSnapshot();
  auto cert = [](Frame& f) {
    return f.mutable_snapshot()->mutable_site()->mutable_certificates(0);
  };
  RequireRefused(
      site, [&](Frame& f) { cert(f)->set_resource("ssh"); },
      "snapshot.site.certificates[0].resource: 'ssh' is not an https resource");
  RequireRefused(
      site, [&](Frame& f) { cert(f)->set_resource("gone"); },
      "snapshot.site.certificates[0].resource: 'gone' is not a resource of this snapshot");
  RequireRefused(
      site, [&](Frame& f) { *f.mutable_snapshot()->mutable_site()->add_certificates() = *cert(f); },
      "snapshot.site.certificates[1].resource: 'vault' has a certificate already");
  RequireRefused(
      site, [&](Frame& f) { cert(f)->set_certificate_chain_pem(""); },
      "snapshot.site.certificates[0].certificate_chain_pem: missing");
  SECTION("a bad key is refused without being repeated") {
    Frame f = site;
    cert(f)->set_private_key_pem("-----BEGIN PUBLIC KEY-----\nS3CR3T\n-----END PUBLIC KEY-----\n");
    const absl::Status s = ValidateFrame(f);
    REQUIRE(s.message() ==
            "control: snapshot.site.certificates[0].private_key_pem: PEM block 0 is not a "
            "PRIVATE KEY block (or text outside a block)");
    REQUIRE_FALSE(absl::StrContains(s.message(), "S3CR3T"));
  }
  RequireAccepted(site, [&](Frame& f) {
    cert(f)->set_private_key_pem(
        "-----BEGIN EC PRIVATE KEY-----\nAA\n-----END EC PRIVATE KEY-----\n");
  });
}

TEST_CASE("snapshot: client DNS") {
  const Frame client = SampleClientSnapshot();
  auto c = [](Frame& f) { return f.mutable_snapshot()->mutable_client(); };
  RequireRefused(
      client, [&](Frame& f) { c(f)->set_zones(0, "*.example.internal"); },
      "snapshot.client.zones[0]: '*.example.internal': no wildcard allowed here");
  RequireRefused(
      client, [&](Frame& f) { c(f)->add_zones("corp"); },
      "snapshot.client.zones[2]: 'corp' is listed twice");
  RequireRefused(
      client, [&](Frame& f) { c(f)->mutable_records(0)->set_name("vault.example.com"); },
      "snapshot.client.records[0].name: 'vault.example.com' is in none of the zones");
  RequireRefused(
      client, [&](Frame& f) { c(f)->mutable_records(0)->set_name("xample.internal"); },
      "snapshot.client.records[0].name: 'xample.internal' is in none of the zones");
  RequireRefused(
      client, [&](Frame& f) { *c(f)->add_records() = c(f)->records(0); },
      "snapshot.client.records[3].name: 'vault.example.internal' is listed twice");
  RequireRefused(
      client, [&](Frame& f) { c(f)->mutable_records(1)->set_address("fd00::1"); },
      "snapshot.client.records[1].address: 'fd00::1' is not an IPv4 address");
}

TEST_CASE("snapshot and enrolled: the deployment's ranges") {
  const Frame client = SampleClientSnapshot();
  auto c = [](Frame& f) { return f.mutable_snapshot()->mutable_client(); };
  RequireAccepted(client, [&](Frame& f) {
    c(f)->set_node_range("10.77.0.0/17");
    c(f)->set_resource_range("10.77.128.0/18");
  });
  RequireRefused(
      client, [&](Frame& f) { c(f)->set_resource_range("10.77.128.1/18"); },
      "snapshot.client.resource_range: '10.77.128.1/18'");
  RequireRefused(
      client, [&](Frame& f) { c(f)->set_node_range("16.0.0.0/4"); },
      "snapshot.client.node_range: '16.0.0.0/4' is not an IPv4 range of /8 to /30");
  RequireRefused(
      client, [&](Frame& f) { c(f)->set_node_range("fd00::/64"); },
      "snapshot.client.node_range: 'fd00::/64' is not an IPv4 range of /8 to /30");
  RequireRefused(
      client, [&](Frame& f) { c(f)->set_resource_range("10.77.128.0/31"); },
      "snapshot.client.resource_range: '10.77.128.0/31' is not an IPv4 range of /8 to /30");
}

TEST_CASE("ack") {
  RequireRefused(
      SampleSnapshotAck(), [](Frame& f) { f.mutable_ack()->set_snapshot_version(0); },
      "ack.snapshot_version: 0; it starts at 1");
  RequireRefused(
      SampleAuditAck(), [](Frame& f) { f.mutable_ack()->set_audit_batch(0); },
      "ack.audit_batch: 0; it starts at 1");
  RequireRefused(
      SampleAuditAck(), [](Frame& f) { f.mutable_ack()->set_error("x"); },
      "ack.error: only with snapshot_version");
  RequireAccepted(SampleSnapshotAck(),
                  [](Frame& f) { f.mutable_ack()->set_error("resource 'x': no certificate"); });
  RequireRefused(
      SampleSnapshotAck(), [](Frame& f) { f.mutable_ack()->set_error("line\nbreak"); },
      "ack.error: control character at byte 4");
  RequireRefused(
      SampleSnapshotAck(), [](Frame& f) { f.mutable_ack()->clear_what(); },
      "ack: neither snapshot_version nor audit_batch is set");
}

TEST_CASE("endpoint_report and health") {
  RequireRefused(
      SampleEndpointReport(),
      [](Frame& f) { f.mutable_endpoint_report()->add_endpoints("192.168.1.20:51820"); },
      "endpoint_report.endpoints[2]: '192.168.1.20:51820' is listed twice");
  RequireRefused(
      SampleEndpointReport(),
      [](Frame& f) { f.mutable_endpoint_report()->set_endpoints(1, "[fd00:0::20]:51820"); },
      "endpoint_report.endpoints[1]: '[fd00:0::20]:51820' is not in canonical form "
      "('[fd00::20]:51820')");
  RequireRefused(
      SampleEndpointReport(),
      [](Frame& f) {
        for (int i = 0; i < 15; ++i) {
          f.mutable_endpoint_report()->add_endpoints(absl::StrCat("10.0.0.", i + 1, ":1"));
        }
      },
      "endpoint_report.endpoints: 17 entries; at most 16");
  RequireAccepted(SampleEndpointReport(),
                  [](Frame& f) { f.mutable_endpoint_report()->clear_endpoints(); });

  RequireRefused(
      SampleHealth(), [](Frame& f) { f.mutable_health()->mutable_sites(1)->set_site_id("s-1"); },
      "health.sites[1].site_id: 's-1' is listed twice");
  RequireRefused(
      SampleHealth(),
      [](Frame& f) { f.mutable_health()->mutable_sites(0)->set_rtt_micros(60'000'001); },
      "health.sites[0].rtt_micros: 60000001 is above 60000000");
  RequireRefused(
      SampleHealth(), [](Frame& f) { f.mutable_health()->mutable_sites(0)->clear_site_id(); },
      "health.sites[0].site_id: missing");
}

TEST_CASE("audit_batch") {
  const Frame b = SampleAuditBatch();
  auto ev = [](Frame& f, int i) { return f.mutable_audit_batch()->mutable_events(i); };
  RequireRefused(
      b, [](Frame& f) { f.mutable_audit_batch()->set_sequence(0); },
      "audit_batch.sequence: 0; it starts at 1");
  RequireRefused(
      b, [](Frame& f) { f.mutable_audit_batch()->clear_events(); },
      "audit_batch.events: empty; a batch holds at least one event");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 1)->set_time_unix_ms(-5); },
      "audit_batch.events[1].time_unix_ms: -5 is before 1970");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 1)->clear_kind(); }, "audit_batch.events[1].kind: missing");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 1)->set_peer_key(""); }, "audit_batch.events[1].peer_key: missing");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 1)->set_peer("100.96.0.21"); },
      "audit_batch.events[1].peer: '100.96.0.21' is not an endpoint");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 1)->set_method("GET"); },
      "audit_batch.events[1].method: HTTP events only");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 1)->set_path("/"); },
      "audit_batch.events[1].path: HTTP events only");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 1)->set_status(200); },
      "audit_batch.events[1].status: HTTP events only");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 0)->set_status(700); },
      "audit_batch.events[0].status: 700 is not an HTTP status");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 0)->set_path("/a\x7f"); },
      "audit_batch.events[0].path: '/a\\x7f' holds a byte that is not printable ASCII");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 0)->set_path("/" + std::string(8192, 'a')); },
      "audit_batch.events[0].path: 8193 bytes; at most 8192");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 0)->set_host("vault example"); },
      "audit_batch.events[0].host: 'vault example' holds a byte");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 0)->add_roles(""); }, "audit_batch.events[0].roles[2]: missing");
  RequireRefused(
      b, [&](Frame& f) { ev(f, 1)->set_reason(std::string(513, 'r')); },
      "audit_batch.events[1].reason: 513 bytes; at most 512");
  SECTION("at most 1,000 events") {
    Frame f = b;
    while (f.audit_batch().events_size() < static_cast<int>(kMaxAuditEvents)) {
      *f.mutable_audit_batch()->add_events() = f.audit_batch().events(1);
    }
    REQUIRE(ValidateFrame(f).ok());
    RequireRefused(
        f, [](Frame& g) { *g.mutable_audit_batch()->add_events() = g.audit_batch().events(0); },
        "audit_batch.events: 1001 entries; at most 1000");
  }
}

TEST_CASE("error, ping and pong") {
  RequireRefused(
      SampleError(), [](Frame& f) { f.mutable_error()->clear_code(); }, "error.code: missing");
  RequireRefused(
      SampleError(),
      [](Frame& f) { f.mutable_error()->set_code(static_cast<wire::ErrorCode>(99)); },
      "error.code: 99 is not an error code");
  RequireRefused(
      SampleError(), [](Frame& f) { f.mutable_error()->clear_message(); },
      "error.message: missing");
  RequireRefused(
      SampleError(), [](Frame& f) { f.mutable_error()->set_message(std::string(1025, 'm')); },
      "error.message: 1025 bytes; at most 1024");
  RequireAccepted(SamplePing(), [](Frame& f) { f.mutable_ping()->set_id(0); });
  RequireAccepted(SamplePong(), [](Frame& f) { f.mutable_pong()->set_id(~uint64_t{0}); });
}

TEST_CASE("WipeFrameSecrets clears the token and the certificate keys, nothing else") {
  Frame e = SampleEnroll();
  WipeFrameSecrets(&e);
  REQUIRE(e.enroll().token().empty());
  REQUIRE(e.enroll().wireguard_public_key() == Key(1));

  Frame s = SampleSiteSnapshot();
  WipeFrameSecrets(&s);
  REQUIRE(s.snapshot().site().certificates(0).private_key_pem().empty());
  REQUIRE(s.snapshot().site().certificates(0).certificate_chain_pem() == kCertPem);
  REQUIRE(s.snapshot().peers_size() == 2);
}

}  // namespace
