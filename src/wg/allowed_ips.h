// allowed_ips.h: WireGuard's cryptokey routing table: a longest-prefix-match trie from IP
// prefixes to peers, used both ways: outbound (which peer gets a packet for this destination)
// and inbound (may this peer send from this source address).
//
// Standard WireGuard gives each prefix to exactly one peer; Insert moves a prefix from its old
// owner. DESIGN.md §3's multi-site extension (one resource address served by several sites)
// does not change this table: the client's flow table picks the peer per flow above it, and
// inbound packets are still checked here against the sending peer's own prefixes.
#ifndef P2PROXY_WG_ALLOWED_IPS_H_
#define P2PROXY_WG_ALLOWED_IPS_H_

#include <memory>
#include <vector>

#include "base/ip_prefix.h"

namespace p2proxy::wg {

class Peer;

class AllowedIps {
 public:
  AllowedIps();
  ~AllowedIps();
  AllowedIps(const AllowedIps&) = delete;
  AllowedIps& operator=(const AllowedIps&) = delete;

  // Insert routes |prefix| to |peer|, replacing any previous owner of exactly that prefix.
  void Insert(const base::IpPrefix& prefix, Peer* peer);
  // Remove drops |prefix| if |peer| owns it.
  void Remove(const base::IpPrefix& prefix, Peer* peer);
  // RemovePeer drops every prefix of |peer|.
  void RemovePeer(Peer* peer);
  // Lookup returns the peer owning the longest prefix that contains |addr|, or null.
  Peer* Lookup(const base::IpAddress& addr) const;
  // Lookup on a raw address of 4 or 16 bytes (the per-packet path: no allocation).
  Peer* Lookup(const uint8_t* addr, size_t len) const;
  // PrefixesOf lists |peer|'s prefixes (for the UAPI and `wg show`).
  std::vector<base::IpPrefix> PrefixesOf(const Peer* peer) const;
  void Clear();

 private:
  struct Node;
  std::unique_ptr<Node> v4_, v6_;
};

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_ALLOWED_IPS_H_
