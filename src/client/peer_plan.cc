// peer_plan.cc: PlanPeers, ApplyPeerPlan, PlanRoutes.
#include "client/peer_plan.h"

#include <map>
#include <set>
#include <tuple>

namespace p2proxy::client {
namespace {

// PrefixLess orders prefixes by family, address bytes and length, for sets and stable output.
struct PrefixLess {
  bool operator()(const base::IpPrefix& a, const base::IpPrefix& b) const {
    return std::tie(a.address.family, a.address.bytes, a.length) <
           std::tie(b.address.family, b.address.bytes, b.length);
  }
};
using PrefixSet = std::set<base::IpPrefix, PrefixLess>;

PrefixSet RoutedPrefixes(absl::Span<const ClientPeer> peers, PrefixSet* skipped) {
  PrefixSet out;
  for (const ClientPeer& p : peers) {
    for (const base::IpPrefix& prefix : p.allowed_ips) {
      if (prefix.length == 0) {
        if (skipped != nullptr) skipped->insert(prefix);
        continue;
      }
      out.insert(prefix);
    }
  }
  return out;
}

}  // namespace

bool SameClientPeer(const ClientPeer& a, const ClientPeer& b) {
  const bool same_psk = a.preshared_key.has_value() == b.preshared_key.has_value() &&
                        (!a.preshared_key || a.preshared_key->Equals(*b.preshared_key));
  return a.public_key == b.public_key && a.allowed_ips == b.allowed_ips && a.endpoint == b.endpoint &&
         a.persistent_keepalive == b.persistent_keepalive && a.shared_sources == b.shared_sources && same_psk;
}

PeerPlan PlanPeers(absl::Span<const ClientPeer> current, absl::Span<const ClientPeer> next) {
  PeerPlan plan;
  std::map<crypto::PublicKey, const ClientPeer*> had;
  std::set<crypto::PublicKey> wanted;
  for (const ClientPeer& p : current) had[p.public_key] = &p;
  for (const ClientPeer& p : next) wanted.insert(p.public_key);
  for (const ClientPeer& p : current) {
    if (wanted.count(p.public_key) == 0) plan.remove.push_back(p.public_key);
  }
  for (size_t i = 0; i < next.size(); ++i) {
    auto it = had.find(next[i].public_key);
    if (it == had.end()) {
      plan.add.push_back(i);
    } else if (SameClientPeer(*it->second, next[i])) {
      ++plan.num_unchanged;
    } else {
      plan.update.push_back(PeerPlan::Update{i, !(it->second->endpoint == next[i].endpoint)});
    }
  }
  return plan;
}

absl::Status ApplyPeerPlan(wg::Device& device, const PeerPlan& plan, absl::Span<const ClientPeer> next) {
  for (const crypto::PublicKey& key : plan.remove) device.RemovePeer(key);
  auto configure = [&](const ClientPeer& p, bool set_endpoint) -> absl::Status {
    wg::PeerConfig pc;
    pc.public_key = p.public_key;
    // A preshared key that went away is the all-zero key, which WireGuard mixes in as "none".
    pc.preshared_key = p.preshared_key.value_or(crypto::Key());
    pc.persistent_keepalive = p.persistent_keepalive;  // AddPeer changes it only if it differs
    pc.allowed_ips = p.allowed_ips;
    if (set_endpoint) pc.endpoint = p.endpoint;
    // AddPeer adds to a peer's allowed IPs; the new list replaces the old one.
    if (wg::Peer* existing = device.FindPeer(p.public_key)) device.ClearAllowedIps(existing);
    auto peer = device.AddPeer(pc);
    if (!peer.ok()) return peer.status();
    device.SetSharedSources(*peer, p.shared_sources);
    return absl::OkStatus();
  };
  for (size_t i : plan.add) {
    if (absl::Status st = configure(next[i], /*set_endpoint=*/true); !st.ok()) return st;
  }
  for (const PeerPlan::Update& u : plan.update) {
    if (absl::Status st = configure(next[u.index], u.set_endpoint); !st.ok()) return st;
  }
  return absl::OkStatus();
}

RoutePlan PlanRoutes(absl::Span<const ClientPeer> current, absl::Span<const ClientPeer> next) {
  RoutePlan plan;
  PrefixSet skipped;
  const PrefixSet before = RoutedPrefixes(current, nullptr);
  const PrefixSet after = RoutedPrefixes(next, &skipped);
  for (const base::IpPrefix& p : after) {
    if (before.count(p) == 0) plan.add.push_back(p);
  }
  for (const base::IpPrefix& p : before) {
    if (after.count(p) == 0) plan.remove.push_back(p);
  }
  plan.skipped.assign(skipped.begin(), skipped.end());
  return plan;
}

}  // namespace p2proxy::client
