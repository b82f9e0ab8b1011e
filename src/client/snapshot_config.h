// snapshot_config.h: a managed client's configuration, made from the snapshot the server pushed
// (control.proto Snapshot with its ClientSection) and the client's local settings (its resolver
// and resource range from the JSON config, its public key). What the client knows of itself
// beside the snapshot (key, node address, port) is WgClient's ManagedClient (wg_client.h).
#ifndef P2PROXY_CLIENT_SNAPSHOT_CONFIG_H_
#define P2PROXY_CLIENT_SNAPSHOT_CONFIG_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client_config.h"
#include "client/peer_plan.h"
#include "client/site_selector.h"
#include "control/control.pb.h"
#include "crypto/secret.h"

namespace p2proxy::client {

// ClientSnapshotConfig is one snapshot made fit to apply.
struct ClientSnapshotConfig {
  uint64_t version = 0;
  // peers: the server and the sites, in the snapshot's order, keys unique, none the client's.
  std::vector<ClientPeer> peers;
  // shared: each resource that two or more of the peers serve (its targets' site ids are the
  // peers' node ids), with those sites in the snapshot's target order. Each of those peers has
  // the resource's address in its shared_sources (the site selector picks per flow; routing
  // sends the address to the first site's peer, whose allowed IPs hold it).
  std::vector<SharedResource> shared;
  // names: the local config's dns settings and resource_range, with the snapshot's zones and
  // records (as resources) in place of the local config's zones and resources.
  ClientConfig names;
  // node_range: the deployment's node addresses (the snapshot's, else 100.96.0.0/17); the
  // resource range is names.resource_range (the snapshot's, else the local config's).
  base::IpPrefix node_range = DefaultNodeRange();
};

// ClientConfigFromSnapshot makes the configuration to apply for |snapshot|, which passed
// ValidateFrame (control/validate.h). It applies the static config's rules to the snapshot
// (client_config.proto's rules for zones and names against |local|'s resource_range and
// dns.listen; wg-quick's for peers) and what needs the client's context: the snapshot is a
// client's, and no peer has the client's own public key (|own_key|).
//
// Failure: InvalidArgument "snapshot: PATH: WHAT", PATH naming the snapshot's field
// ("snapshot: client.records[3].name: ...", "snapshot: peers[1].endpoint: ..."); the client then
// keeps what it runs and acks the snapshot with the error. No key is ever in a message.
absl::StatusOr<ClientSnapshotConfig> ClientConfigFromSnapshot(const control::wire::Snapshot& snapshot,
                                                              const crypto::PublicKey& own_key,
                                                              const ClientConfig& local);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_SNAPSHOT_CONFIG_H_
