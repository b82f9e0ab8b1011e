// snapshot_config.cc: ClientConfigFromSnapshot.
#include "client/snapshot_config.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "client/client_config.pb.h"
#include "client/client_config_internal.h"
#include "config/json_proto.h"

namespace p2proxy::client {
namespace {

using ::p2proxy::config::CheckPlain;
using ::p2proxy::config::IndexPath;
using ::p2proxy::config::JoinPath;
using ::p2proxy::config::ParseHostPort;
using ::p2proxy::config::Quote;

absl::Status SnapshotError(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("snapshot: ", path, ": ", what));
}

// AsSnapshotError turns the config validators' "config: PATH: WHAT" into "snapshot: PATH: WHAT":
// the paths they were given are already the snapshot's.
absl::Status AsSnapshotError(const absl::Status& st) {
  if (st.ok()) return st;
  absl::string_view message = st.message();
  absl::ConsumePrefix(&message, "config: ");
  return absl::Status(st.code(), absl::StrCat("snapshot: ", message));
}

absl::StatusOr<ClientPeer> ConvertPeer(const control::wire::Peer& in, const std::string& path) {
  ClientPeer out;
  const std::string key_path = JoinPath(path, "public_key");
  if (in.public_key().size() != out.public_key.size()) {
    return SnapshotError(key_path, absl::StrCat(in.public_key().size(), " bytes, not a key (32 bytes)"));
  }
  std::copy(in.public_key().begin(), in.public_key().end(), out.public_key.begin());
  for (int i = 0; i < in.allowed_ips_size(); ++i) {
    const std::string item_path = IndexPath(JoinPath(path, "allowed_ips"), static_cast<size_t>(i));
    const std::string& text = in.allowed_ips(i);
    P2P_RETURN_IF_ERROR(AsSnapshotError(CheckPlain(text, item_path, "an IP prefix")));
    auto prefix = base::IpPrefix::Parse(text);
    if (!prefix.ok()) return SnapshotError(item_path, prefix.status().message());
    // The canonical form is the rule (control.proto): "10.0.0.1/24" is a server bug, not a
    // prefix to guess at.
    if (prefix->ToString() != text) {
      return SnapshotError(item_path, absl::StrCat(Quote(text), " is not a prefix in canonical form (",
                                                   prefix->ToString(), ")"));
    }
    for (const base::IpPrefix& seen : out.allowed_ips) {
      if (seen == *prefix) return SnapshotError(item_path, absl::StrCat(prefix->ToString(), " is listed twice"));
    }
    out.allowed_ips.push_back(*prefix);
  }
  if (!in.endpoint().empty()) {
    P2P_ASSIGN_OR_RETURN(out.endpoint, [&]() -> absl::StatusOr<base::SocketAddress> {
      auto ep = ParseHostPort(in.endpoint(), JoinPath(path, "endpoint"), "");
      if (!ep.ok()) return AsSnapshotError(ep.status());
      return *ep;
    }());
  }
  if (in.persistent_keepalive_seconds() > 65535) {
    return SnapshotError(JoinPath(path, "persistent_keepalive_seconds"),
                         absl::StrCat(in.persistent_keepalive_seconds(), " is not a number of seconds (0-65535; 0: off)"));
  }
  out.persistent_keepalive = static_cast<uint16_t>(in.persistent_keepalive_seconds());
  out.name = in.name().empty() ? in.node_id() : in.name();
  return out;
}

}  // namespace

absl::StatusOr<ClientSnapshotConfig> ClientConfigFromSnapshot(const control::wire::Snapshot& snapshot,
                                                              const crypto::PublicKey& own_key,
                                                              const ClientConfig& local) {
  if (!snapshot.has_client()) {
    return SnapshotError("role", "not a client's snapshot (it has no client section)");
  }
  if (snapshot.version() == 0) return SnapshotError("version", "0 (versions start at 1)");
  ClientSnapshotConfig out;
  out.version = snapshot.version();
  std::set<crypto::PublicKey> keys;
  for (int i = 0; i < snapshot.peers_size(); ++i) {
    const std::string path = IndexPath("peers", static_cast<size_t>(i));
    P2P_ASSIGN_OR_RETURN(ClientPeer peer, ConvertPeer(snapshot.peers(i), path));
    if (peer.public_key == own_key) {
      return SnapshotError(JoinPath(path, "public_key"),
                           "the client's own public key (of its WireGuard private key); a node is not its own peer");
    }
    if (!keys.insert(peer.public_key).second) {
      return SnapshotError(JoinPath(path, "public_key"), "the same key as an earlier peer");
    }
    out.peers.push_back(std::move(peer));
  }

  // Resources served by several of these sites: the site selector's candidates. A site's probe
  // address is its first allowed /32 (its node address, as the server lists it).
  std::map<std::string, size_t> by_node;  // node id -> index into peers
  for (int i = 0; i < snapshot.peers_size(); ++i) {
    if (snapshot.peers(i).kind() == control::wire::NODE_KIND_SITE && !snapshot.peers(i).node_id().empty()) {
      by_node.emplace(snapshot.peers(i).node_id(), static_cast<size_t>(i));
    }
  }
  for (const control::wire::Resource& r : snapshot.resources()) {
    auto address = base::IpAddress::Parse(r.address());
    if (!address.ok() || address->family != base::IpAddress::kV4) continue;
    SharedResource shared;
    shared.address = *address;
    for (const control::wire::Target& t : r.targets()) {
      auto it = by_node.find(t.site_id());
      if (it == by_node.end()) continue;
      ClientPeer& peer = out.peers[it->second];
      if (peer.allowed_ips.empty() || peer.allowed_ips[0].length != 32 ||
          peer.allowed_ips[0].address.family != base::IpAddress::kV4) {
        continue;
      }
      const bool seen = std::any_of(shared.sites.begin(), shared.sites.end(),
                                    [&](const SiteCandidate& c) { return c.key == peer.public_key; });
      if (!seen) shared.sites.push_back(SiteCandidate{peer.public_key, peer.allowed_ips[0].address, peer.name});
    }
    if (shared.sites.size() < 2) continue;
    const base::IpPrefix host = base::IpPrefix::Make(*address, 32);
    for (const SiteCandidate& c : shared.sites) {
      for (ClientPeer& peer : out.peers) {
        if (peer.public_key == c.key) peer.shared_sources.push_back(host);
      }
    }
    out.shared.push_back(std::move(shared));
  }

  // The names go through the static config's own validators, with the snapshot's paths.
  out.names = local;
  const control::wire::ClientSection& section = snapshot.client();
  // The deployment's ranges (ValidateFrame checked their form): they decide where resource
  // addresses may lie, whatever the local config says.
  if (!section.resource_range().empty()) {
    auto range = base::IpPrefix::Parse(section.resource_range());
    if (!range.ok()) return SnapshotError("client.resource_range", range.status().message());
    out.names.resource_range = *range;
  }
  if (!section.node_range().empty()) {
    auto range = base::IpPrefix::Parse(section.node_range());
    if (!range.ok()) return SnapshotError("client.node_range", range.status().message());
    out.node_range = *range;
  }
  P2P_RETURN_IF_ERROR(AsSnapshotError(ValidateZoneList(section.zones(), "client.zones", &out.names)));
  google::protobuf::RepeatedPtrField<config::Resource> records;
  records.Reserve(section.records_size());
  for (const control::wire::DnsRecord& r : section.records()) {
    config::Resource* q = records.Add();
    q->set_name(r.name());
    q->set_address(r.address());
  }
  P2P_RETURN_IF_ERROR(
      AsSnapshotError(ValidateResourceList(records, "client.records", "client.zones", &out.names)));
  return out;
}

}  // namespace p2proxy::client
