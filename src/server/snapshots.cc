// snapshots.cc: LoadDeployment, SiteSnapshot, ClientSnapshot.
#include "server/snapshots.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace p2proxy::server {
namespace {

void AddServerPeer(wire::Snapshot& s, const SnapshotSettings& settings) {
  wire::Peer* p = s.add_peers();
  p->set_public_key(settings.server_wireguard_key);
  p->add_allowed_ips(absl::StrCat(settings.server_node_address, "/32"));
  p->set_endpoint(settings.server_wireguard_endpoint);
  p->set_persistent_keepalive_seconds(settings.keepalive_seconds);
  p->set_node_id("server");
  p->set_kind(wire::NODE_KIND_SERVER);
  p->set_name("server");
}

const std::vector<std::string>& RolesOf(const Deployment& d, const std::string& user) {
  static const std::vector<std::string> kNone;
  auto it = d.users.find(user);
  return it == d.users.end() ? kNone : it->second.roles;
}

bool Serves(const wire::Resource& r, const std::string& site_id) {
  return std::any_of(r.targets().begin(), r.targets().end(), [&](const wire::Target& t) { return t.site_id() == site_id; });
}

// ParentZone: the zone a domain's record lives in.
std::string ParentZone(const std::string& domain) {
  absl::string_view name = domain;
  if (absl::StartsWith(name, "*.")) return std::string(name.substr(2));
  const size_t dot = name.find('.');
  return dot == absl::string_view::npos ? std::string(name) : std::string(name.substr(dot + 1));
}

}  // namespace

bool MayUse(const wire::Access& access, const std::string& user, const std::vector<std::string>& roles) {
  if (user.empty()) return false;
  for (const auto& u : access.users()) {
    if (u == user || u == "*") return true;
  }
  for (const auto& r : access.roles()) {
    if (std::find(roles.begin(), roles.end(), r) != roles.end()) return true;
  }
  return false;
}

absl::StatusOr<Deployment> LoadDeployment(Store& store) {
  Deployment d;
  d.version = store.CurrentVersion();
  P2P_ASSIGN_OR_RETURN(std::vector<NodeRecord> sites, store.ListNodes(wire::NODE_KIND_SITE));
  P2P_ASSIGN_OR_RETURN(std::vector<NodeRecord> devices, store.ListNodes(wire::NODE_KIND_CLIENT));
  for (auto& n : sites) {
    if (n.revoked) continue;
    if (!n.last_endpoint.empty()) d.endpoints[n.id] = n.last_endpoint;
    d.sites.push_back(std::move(n));
  }
  for (auto& n : devices) {
    if (n.revoked) continue;
    if (!n.last_endpoint.empty()) d.endpoints[n.id] = n.last_endpoint;
    d.devices.push_back(std::move(n));
  }
  P2P_ASSIGN_OR_RETURN(std::vector<UserRecord> users, store.ListUsers());
  for (auto& u : users) d.users.emplace(u.name, std::move(u));
  P2P_ASSIGN_OR_RETURN(d.resources, store.ListResources());
  for (const auto& r : d.resources) {
    if (r.kind() != wire::RESOURCE_KIND_HTTPS) continue;
    auto cert = store.GetCertificate(r.name());
    if (cert.ok()) d.certificates.emplace(r.name(), std::move(*cert));
  }
  return d;
}

wire::Snapshot SiteSnapshot(const Deployment& d, const SnapshotSettings& settings, const NodeRecord& site) {
  wire::Snapshot s;
  s.set_version(d.version);
  AddServerPeer(s, settings);
  wire::SiteSection* section = s.mutable_site();
  std::vector<const wire::Resource*> mine;
  for (const auto& r : d.resources) {
    if (!Serves(r, site.id)) continue;
    // An https resource without its certificate yet is left out until the server issued it.
    if (r.kind() == wire::RESOURCE_KIND_HTTPS && d.certificates.count(r.name()) == 0) continue;
    mine.push_back(&r);
    wire::Resource* out = s.add_resources();
    *out = r;
    for (auto& t : *out->mutable_targets()) {
      if (t.site_id() != site.id) t.clear_address();
    }
    if (r.kind() == wire::RESOURCE_KIND_HTTPS) {
      const CertificateRecord& c = d.certificates.find(r.name())->second;
      wire::Certificate* wc = section->add_certificates();
      wc->set_resource(r.name());
      wc->set_certificate_chain_pem(c.chain_pem);
      wc->set_private_key_pem(c.key_pem);
    }
  }
  for (const auto& dev : d.devices) {
    const std::vector<std::string>& roles = RolesOf(d, dev.user);
    const bool allowed_somewhere = std::any_of(mine.begin(), mine.end(), [&](const wire::Resource* r) {
      return MayUse(r->access(), dev.user, roles);
    });
    if (!allowed_somewhere) continue;
    wire::Peer* p = s.add_peers();
    p->set_public_key(dev.wireguard_public_key);
    p->add_allowed_ips(absl::StrCat(dev.address, "/32"));
    // Where the server last heard the device (its NAT's mapping): the site sends its first
    // handshake there, which opens the site's own NAT for the device (hole punching, both
    // sides at once; the client does the same towards the site).
    auto ep = d.endpoints.find(dev.id);
    if (ep != d.endpoints.end()) p->set_endpoint(ep->second);
    p->set_node_id(dev.id);
    p->set_kind(wire::NODE_KIND_CLIENT);
    p->set_name(dev.name);
    p->set_user(dev.user);
    for (const auto& role : roles) p->add_roles(role);
  }
  return s;
}

wire::Snapshot ClientSnapshot(const Deployment& d, const SnapshotSettings& settings, const NodeRecord& device) {
  wire::Snapshot s;
  s.set_version(d.version);
  AddServerPeer(s, settings);
  const std::vector<std::string>& roles = RolesOf(d, device.user);
  wire::ClientSection* section = s.mutable_client();
  section->set_node_range(settings.node_range);
  section->set_resource_range(settings.resource_range);
  std::set<std::string> zones(settings.zones.begin(), settings.zones.end());
  const bool derive_zones = settings.zones.empty();
  // Each site that serves a usable resource is a peer. A resource address is routed to its
  // first live site (WireGuard routes a prefix to one peer); where several sites serve it, the
  // client's site selector picks one per flow among all of them (client/site_selector.h).
  std::map<std::string, std::vector<std::string>> routes;  // site id -> resource prefixes
  std::set<std::string> routed;
  std::set<std::string> records;
  for (const auto& r : d.resources) {
    if (!MayUse(r.access(), device.user, roles)) continue;
    const wire::Target* first = nullptr;
    for (const auto& t : r.targets()) {
      const bool live = std::any_of(d.sites.begin(), d.sites.end(), [&](const NodeRecord& n) { return n.id == t.site_id(); });
      if (live) {
        first = &t;
        break;
      }
    }
    if (first == nullptr) continue;  // no enrolled site serves it now
    for (const auto& t : r.targets()) {
      const bool live = std::any_of(d.sites.begin(), d.sites.end(), [&](const NodeRecord& n) { return n.id == t.site_id(); });
      if (live) routes[t.site_id()];  // a peer, even where no address is routed to it
    }
    wire::Resource* out = s.add_resources();
    *out = r;
    for (auto& t : *out->mutable_targets()) t.clear_address();
    out->mutable_access()->clear_paths();  // the site enforces them; the client needs none
    const std::string prefix = absl::StrCat(r.address(), "/32");
    if (routed.insert(prefix).second) routes[first->site_id()].push_back(prefix);
    for (const auto& domain : r.domains()) {
      if (derive_zones) zones.insert(ParentZone(domain));
      if (records.insert(domain).second) {
        wire::DnsRecord* rec = section->add_records();
        rec->set_name(domain);
        rec->set_address(r.address());
      }
    }
  }
  for (const auto& site : d.sites) {
    auto it = routes.find(site.id);
    if (it == routes.end()) continue;
    wire::Peer* p = s.add_peers();
    p->set_public_key(site.wireguard_public_key);
    p->add_allowed_ips(absl::StrCat(site.address, "/32"));
    for (const auto& prefix : it->second) p->add_allowed_ips(prefix);
    auto ep = d.endpoints.find(site.id);
    if (ep != d.endpoints.end()) p->set_endpoint(ep->second);
    p->set_persistent_keepalive_seconds(settings.keepalive_seconds);
    p->set_node_id(site.id);
    p->set_kind(wire::NODE_KIND_SITE);
    p->set_name(site.name);
  }
  // Zones may not nest in one another's records ambiguously; a zone that is a subdomain of
  // another listed zone is dropped (the outer one answers for it).
  for (const auto& z : zones) {
    bool inner = false;
    for (const auto& other : zones) {
      if (other != z && absl::EndsWith(z, absl::StrCat(".", other))) inner = true;
    }
    if (!inner) section->add_zones(z);
  }
  return s;
}

}  // namespace p2proxy::server
