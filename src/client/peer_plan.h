// peer_plan.h: how the client's WireGuard peers and kernel routes change from one peer list to
// the next (a snapshot from the server, or the wg-quick file at start): a pure diff by public
// key, and its application to a wg::Device, which has no I/O, so both run in unit tests.
#ifndef P2PROXY_CLIENT_PEER_PLAN_H_
#define P2PROXY_CLIENT_PEER_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "base/address.h"
#include "base/ip_prefix.h"
#include "crypto/secret.h"
#include "wg/device.h"

namespace p2proxy::client {

// ClientPeer is one WireGuard peer of the client (the server, a site, or a wg-quick [Peer]).
struct ClientPeer {
  crypto::PublicKey public_key{};
  std::optional<crypto::Key> preshared_key;  // wg-quick only; snapshots carry none
  std::vector<base::IpPrefix> allowed_ips;   // canonical (host bits zero)
  std::optional<base::SocketAddress> endpoint;  // configured; none: learnt from the peer
  uint16_t persistent_keepalive = 0;            // seconds; 0: off
  std::string name;                             // for logs; may be empty
  // shared_sources: resource addresses this peer (a site) may answer from although routing
  // sends them to another site (wg::Device::SetSharedSources).
  std::vector<base::IpPrefix> shared_sources;
};

// SameClientPeer: nothing configured about the peer differs.
bool SameClientPeer(const ClientPeer& a, const ClientPeer& b);

// PeerPlan is what turns the current peers into the next ones.
struct PeerPlan {
  struct Update {
    size_t index = 0;           // into the next list
    bool set_endpoint = false;  // the configured endpoint changed: set it (else keep the one
                                // the peer roamed to)
  };
  std::vector<crypto::PublicKey> remove;  // in the current list, not in the next
  std::vector<size_t> add;                // indexes into the next list, new keys
  std::vector<Update> update;             // in both, something configured changed
  size_t num_unchanged = 0;               // in both, identical: left alone
};

// PlanPeers diffs |current| and |next| by public key. Keys are unique within each list (the
// callers check); indexes follow |next|'s order.
PeerPlan PlanPeers(absl::Span<const ClientPeer> current, absl::Span<const ClientPeer> next);

// ApplyPeerPlan carries |plan| (from PlanPeers(current, next)) out on |device|: removed peers
// go with their sessions; added ones get their configured endpoint; an updated peer keeps its
// sessions, gets exactly its new allowed IPs, its keepalive if it changed, and its endpoint only
// if the configured one changed. Unchanged peers are not touched. Fails only if the device
// refuses a peer (its own key), which the callers check before; peers before it are applied.
absl::Status ApplyPeerPlan(wg::Device& device, const PeerPlan& plan, absl::Span<const ClientPeer> next);

// RoutePlan is the kernel routes (one per allowed prefix, through the TUN) to add and remove.
struct RoutePlan {
  std::vector<base::IpPrefix> add;     // a prefix of some next peer that no current peer has
  std::vector<base::IpPrefix> remove;  // a prefix of some current peer that no next peer has
  // skipped: next prefixes of length 0 (a default route needs policy routing, which p2proxy
  // does not set up), never routed.
  std::vector<base::IpPrefix> skipped;
};

// PlanRoutes diffs the union of allowed prefixes of |current| and |next|: a prefix that stays
// (with any peer) is neither added nor removed. Each list is sorted by address family, address
// and length, without duplicates.
RoutePlan PlanRoutes(absl::Span<const ClientPeer> current, absl::Span<const ClientPeer> next);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_PEER_PLAN_H_
