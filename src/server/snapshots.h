// snapshots.h: what each node is told. The server reads the deployment from its store once per
// change (LoadDeployment) and makes each connected node's Snapshot from it: a site gets the
// resources it serves (with its own targets' addresses and their certificates) and the devices
// allowed on them; a client device gets the resources its user may use, the sites that serve
// them, and the private DNS names. Least knowledge: nobody is told more than it needs.
#ifndef P2PROXY_SERVER_SNAPSHOTS_H_
#define P2PROXY_SERVER_SNAPSHOTS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/control.pb.h"
#include "server/store.h"

namespace p2proxy::server {

// SnapshotSettings: what the server says about itself in every snapshot.
struct SnapshotSettings {
  std::string server_wireguard_key;       // 32 bytes
  std::string server_wireguard_endpoint;  // "IP:port" where nodes reach the server; empty: none
  std::string server_node_address = "100.96.0.1";
  uint32_t keepalive_seconds = 25;        // for peers that may sit behind NAT
  // node_range, resource_range: the deployment's ranges, told to clients ("" : not told).
  std::string node_range;
  std::string resource_range;
  // zones: the clients' private zones. Empty: each resource domain's parent ("vault.example.
  // internal" -> "example.internal"; a wildcard "*.apps.x.internal" -> "apps.x.internal").
  std::vector<std::string> zones;
};

// Deployment is the store's content that snapshots are made of, read in one go.
struct Deployment {
  uint64_t version = 0;
  std::vector<NodeRecord> sites;    // not revoked
  std::vector<NodeRecord> devices;  // not revoked
  std::map<std::string, UserRecord, std::less<>> users;
  std::vector<wire::Resource> resources;
  std::map<std::string, CertificateRecord, std::less<>> certificates;  // by resource
  // endpoints: where each node can be reached (node id -> "IP:port"), as the server learned it.
  std::map<std::string, std::string, std::less<>> endpoints;
};

// LoadDeployment reads everything snapshots need. Certificate keys are in the result: keep it
// no longer than the push.
absl::StatusOr<Deployment> LoadDeployment(Store& store);

// SiteSnapshot is |site|'s snapshot: the server; the devices whose user may use at least one of
// its resources (with user and roles); those resources with only this site's target address;
// their certificates.
wire::Snapshot SiteSnapshot(const Deployment& d, const SnapshotSettings& settings, const NodeRecord& site);

// ClientSnapshot is |device|'s snapshot: the resources its user may use (targets named, their
// addresses not told), the sites serving them as peers (each resource address routed to its
// first serving site, the node address of every site), the zones and one record per domain.
wire::Snapshot ClientSnapshot(const Deployment& d, const SnapshotSettings& settings, const NodeRecord& device);

// MayUse: whether a user with |roles| passes a resource's connection-level grant (as the site
// decides it: a listed user, "*" for any user, or a listed role).
bool MayUse(const wire::Access& access, const std::string& user, const std::vector<std::string>& roles);

}  // namespace p2proxy::server

#endif  // P2PROXY_SERVER_SNAPSHOTS_H_
