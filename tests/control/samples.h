// samples.h: one valid control frame of every message type (two Snapshots, one per role, and
// two Acks), shared by the control tests. Every sample passes ValidateFrame.
#ifndef P2PROXY_TESTS_CONTROL_SAMPLES_H_
#define P2PROXY_TESTS_CONTROL_SAMPLES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "control/control.pb.h"

namespace p2proxy::control::testing {

// PEM blocks with the right shape; their contents are not real DER (ValidateFrame checks only
// the shape).
inline const std::string kCertPem =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCAVmgAwIBAgIUQk9HVVNCT0dVU0JPR1VTQk9HVVMwCgYIKoZIzj0EAwIw\n"
    "-----END CERTIFICATE-----\n";
inline const std::string kKeyPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgU0VDUkVUU0VDUkVU\n"
    "-----END PRIVATE KEY-----\n";
inline const std::string kCsrPem =
    "-----BEGIN CERTIFICATE REQUEST-----\n"
    "MIHzMIGbAgEAMBExDzANBgNVBAMMBnNpdGUtMTBZMBMGByqGSM49AgEGCCqGSM49\n"
    "-----END CERTIFICATE REQUEST-----\n";

// Key is a 32-byte stand-in for a WireGuard key.
inline std::string Key(uint8_t seed) { return std::string(32, static_cast<char>(seed)); }

inline wire::Frame SampleEnroll() {
  wire::Frame f;
  wire::Enroll* m = f.mutable_enroll();
  m->set_token("p2p-tok-0123456789abcdef");
  m->set_wireguard_public_key(Key(1));
  m->set_kind(wire::NODE_KIND_SITE);
  m->set_requested_name("s1");
  m->set_csr_pem(kCsrPem);
  return f;
}

inline wire::Frame SampleEnrolled() {
  wire::Frame f;
  wire::Enrolled* m = f.mutable_enrolled();
  m->set_node_id("s-1");
  m->set_name("s1");
  m->set_node_address("100.96.0.10");
  m->set_certificate_chain_pem(kCertPem + kCertPem);
  m->set_ca_certificate_pem(kCertPem);
  m->set_server_spki_sha256(std::string(32, '\xab'));
  m->set_server_wireguard_public_key(Key(2));
  m->set_server_wireguard_endpoint("p2p.example.com:51820");
  m->set_server_node_address("100.96.0.1");
  return f;
}

inline wire::Frame SampleHello() {
  wire::Frame f;
  f.mutable_hello()->set_node_id("s-1");
  f.mutable_hello()->set_last_snapshot_version(7);
  return f;
}

// AddCommonPeersAndResources fills what both roles' snapshots share.
inline void AddCommonPeersAndResources(wire::Snapshot* s) {
  wire::Peer* server = s->add_peers();
  server->set_public_key(Key(2));
  server->add_allowed_ips("100.96.0.1/32");
  server->set_endpoint("203.0.113.7:51820");
  server->set_persistent_keepalive_seconds(25);
  server->set_node_id("server");
  server->set_kind(wire::NODE_KIND_SERVER);

  wire::Resource* vault = s->add_resources();
  vault->set_name("vault");
  vault->add_domains("vault.example.internal");
  vault->add_domains("*.vault.example.internal");
  vault->set_address("100.96.128.20");
  vault->set_port(443);
  vault->set_kind(wire::RESOURCE_KIND_HTTPS);
  wire::Access* access = vault->mutable_access();
  access->add_users("bob");
  access->add_roles("admins");
  wire::PathRule* admin = access->add_paths();
  admin->set_prefix("/admin");
  admin->add_users("alice");
  access->set_case_insensitive_paths(true);

  wire::Resource* ssh = s->add_resources();
  ssh->set_name("ssh");
  ssh->add_domains("ssh.example.internal");
  ssh->set_address("100.96.128.21");
  ssh->set_port(22);
  ssh->set_kind(wire::RESOURCE_KIND_TCP);
  ssh->mutable_access()->add_roles("ops");

  wire::Resource* dns = s->add_resources();
  dns->set_name("lan-dns");
  dns->set_address("100.96.128.21");
  dns->set_port(53);
  dns->set_kind(wire::RESOURCE_KIND_UDP);
  dns->mutable_access()->add_users("*");
}

inline wire::Frame SampleSiteSnapshot() {
  wire::Frame f;
  wire::Snapshot* s = f.mutable_snapshot();
  s->set_version(8);
  AddCommonPeersAndResources(s);
  wire::Peer* laptop = s->add_peers();
  laptop->set_public_key(Key(4));
  laptop->add_allowed_ips("100.96.0.20/32");
  laptop->set_node_id("c-1");
  laptop->set_kind(wire::NODE_KIND_CLIENT);
  laptop->set_name("alice-laptop");
  laptop->set_user("alice");
  laptop->add_roles("admins");
  laptop->add_roles("ops");
  const char* targets[] = {"10.0.10.15:8080", "10.0.10.16:22", "[fd00::53]:53"};
  for (int i = 0; i < s->resources_size(); ++i) {
    wire::Target* t = s->mutable_resources(i)->add_targets();
    t->set_site_id("s-1");
    t->set_address(targets[i]);
  }
  s->mutable_resources(0)->add_targets()->set_site_id("s-2");  // another site, no address
  wire::Certificate* cert = s->mutable_site()->add_certificates();
  cert->set_resource("vault");
  cert->set_certificate_chain_pem(kCertPem);
  cert->set_private_key_pem(kKeyPem);
  return f;
}

inline wire::Frame SampleClientSnapshot() {
  wire::Frame f;
  wire::Snapshot* s = f.mutable_snapshot();
  s->set_version(9);
  AddCommonPeersAndResources(s);
  wire::Peer* site = s->add_peers();
  site->set_public_key(Key(5));
  site->add_allowed_ips("100.96.0.10/32");
  site->add_allowed_ips("100.96.128.20/32");
  site->add_allowed_ips("100.96.128.21/32");
  site->add_allowed_ips("fd00:96::/64");
  site->set_endpoint("[2001:db8::5]:41000");
  site->set_node_id("s-1");
  site->set_kind(wire::NODE_KIND_SITE);
  for (int i = 0; i < s->resources_size(); ++i) {
    s->mutable_resources(i)->add_targets()->set_site_id("s-1");
  }
  wire::ClientSection* c = s->mutable_client();
  c->add_zones("example.internal");
  c->add_zones("corp");
  wire::DnsRecord* r = c->add_records();
  r->set_name("vault.example.internal");
  r->set_address("100.96.128.20");
  r = c->add_records();
  r->set_name("*.vault.example.internal");
  r->set_address("100.96.128.20");
  r = c->add_records();
  r->set_name("corp");
  r->set_address("100.96.128.21");
  return f;
}

inline wire::Frame SampleSnapshotAck() {
  wire::Frame f;
  f.mutable_ack()->set_snapshot_version(8);
  return f;
}

inline wire::Frame SampleAuditAck() {
  wire::Frame f;
  f.mutable_ack()->set_audit_batch(3);
  return f;
}

inline wire::Frame SampleEndpointReport() {
  wire::Frame f;
  f.mutable_endpoint_report()->add_endpoints("192.168.1.20:51820");
  f.mutable_endpoint_report()->add_endpoints("[fd00::20]:51820");
  return f;
}

inline wire::Frame SampleHealth() {
  wire::Frame f;
  wire::SiteHealth* up = f.mutable_health()->add_sites();
  up->set_site_id("s-1");
  up->set_up(true);
  up->set_rtt_micros(1500);
  f.mutable_health()->add_sites()->set_site_id("s-2");
  return f;
}

inline wire::Frame SampleAuditBatch() {
  wire::Frame f;
  wire::AuditBatch* b = f.mutable_audit_batch();
  b->set_sequence(3);
  wire::AuditEvent* e = b->add_events();
  e->set_time_unix_ms(1763921401000);
  e->set_kind(wire::AUDIT_KIND_HTTPS);
  e->set_resource("vault");
  e->set_peer_key(Key(4));
  e->set_peer("100.96.0.20:41000");
  e->set_user("alice");
  e->add_roles("admins");
  e->add_roles("ops");
  e->set_method("GET");
  e->set_host("vault.example.internal");
  e->set_path("/admin/users?page=2");
  e->set_status(200);
  e->set_bytes_in(0);
  e->set_bytes_out(5120);
  e->set_duration_ms(12);
  e->set_allowed(true);
  e = b->add_events();
  e->set_time_unix_ms(1763921402000);
  e->set_kind(wire::AUDIT_KIND_TCP);
  e->set_resource("ssh");
  e->set_peer_key(Key(6));
  e->set_peer("100.96.0.21:50000");
  e->set_reason("no grant for the peer's user or roles");
  return f;
}

inline wire::Frame SamplePing() {
  wire::Frame f;
  f.mutable_ping()->set_id(42);
  return f;
}

inline wire::Frame SamplePong() {
  wire::Frame f;
  f.mutable_pong()->set_id(42);
  return f;
}

inline wire::Frame SampleError() {
  wire::Frame f;
  f.mutable_error()->set_code(wire::ERROR_CODE_TOKEN_EXPIRED);
  f.mutable_error()->set_message("token expired at 2025-11-23T18:00:00Z; ask for a new one");
  return f;
}

inline std::vector<wire::Frame> AllSamples() {
  return {SampleEnroll(),         SampleEnrolled(),    SampleHello(),    SampleSiteSnapshot(),
          SampleClientSnapshot(), SampleSnapshotAck(), SampleAuditAck(), SampleEndpointReport(),
          SampleHealth(),         SampleAuditBatch(),  SamplePing(),     SamplePong(),
          SampleError()};
}

}  // namespace p2proxy::control::testing

#endif  // P2PROXY_TESTS_CONTROL_SAMPLES_H_
