// uapi_bridge.cc: UAPI get/set against a WgTransport.
#include "tunnel/uapi_bridge.h"

#include <errno.h>

#include "base/log.h"

namespace p2proxy::tunnel {

wg::UapiState UapiStateOf(const WgTransport& t) {
  const wg::Device& d = t.device();
  wg::UapiState st;
  if (d.identity().has_private_key) st.private_key = d.identity().private_key;
  st.listen_port = t.listen_port();
  for (const wg::Peer* p : d.peers()) {
    wg::UapiPeerState ps;
    ps.public_key = p->public_key();
    ps.preshared_key = p->preshared_key();
    if (p->endpoint()) ps.endpoint = *p->endpoint();
    ps.persistent_keepalive_interval = p->persistent_keepalive();
    ps.last_handshake = p->stats().last_handshake;
    ps.rx_bytes = p->stats().rx_bytes;
    ps.tx_bytes = p->stats().tx_bytes;
    ps.allowed_ips = d.allowed_ips().PrefixesOf(p);
    st.peers.push_back(std::move(ps));
  }
  return st;
}

int ApplyUapiSet(WgTransport& t, const wg::UapiSet& set) {
  wg::Device& d = t.device();
  if (set.private_key) d.SetPrivateKey(*set.private_key);
  if (set.listen_port) {
    auto st = t.Rebind(*set.listen_port);
    if (!st.ok()) {
      P2P_LOG(kWarn, "uapi.rebind_failed").Kv("error", st.message());
      return EADDRINUSE;
    }
  }
  if (set.replace_peers) d.RemoveAllPeers();
  for (const wg::UapiPeerSet& ps : set.peers) {
    if (ps.remove) {
      d.RemovePeer(ps.public_key);
      continue;
    }
    wg::Peer* peer = d.FindPeer(ps.public_key);
    if (!peer && ps.update_only) continue;
    if (!peer) {
      wg::PeerConfig config;
      config.public_key = ps.public_key;
      auto added = d.AddPeer(config);
      if (!added.ok()) continue;  // our own key: wireguard-go ignores it too
      peer = *added;
    }
    if (ps.preshared_key) d.SetPresharedKey(peer, *ps.preshared_key);
    if (ps.endpoint) d.SetEndpoint(peer, *ps.endpoint);
    if (ps.replace_allowed_ips) d.ClearAllowedIps(peer);
    for (const auto& prefix : ps.allowed_ips) d.AddAllowedIp(peer, prefix);
    if (ps.persistent_keepalive_interval) d.SetPersistentKeepalive(peer, *ps.persistent_keepalive_interval);
  }
  t.Kick();
  return 0;
}

}  // namespace p2proxy::tunnel
