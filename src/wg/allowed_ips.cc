// allowed_ips.cc: a binary trie, one node per bit of prefix. Simple and exact; lookups touch at
// most 32 (IPv4) or 128 (IPv6) nodes.
#include "wg/allowed_ips.h"

#include <functional>

namespace p2proxy::wg {

struct AllowedIps::Node {
  std::unique_ptr<Node> child[2];
  Peer* peer = nullptr;  // owner of the prefix ending here, if any
};

namespace {

inline int Bit(const uint8_t* addr, size_t i) { return (addr[i / 8] >> (7 - i % 8)) & 1; }

}  // namespace

AllowedIps::AllowedIps() : v4_(new Node()), v6_(new Node()) {}
AllowedIps::~AllowedIps() = default;

void AllowedIps::Insert(const base::IpPrefix& prefix, Peer* peer) {
  Node* n = prefix.address.family == base::IpAddress::kV4 ? v4_.get() : v6_.get();
  if (prefix.address.family == base::IpAddress::kNone) return;
  for (size_t i = 0; i < prefix.length; ++i) {
    auto& next = n->child[Bit(prefix.address.bytes.data(), i)];
    if (!next) next.reset(new Node());
    n = next.get();
  }
  n->peer = peer;
}

void AllowedIps::Remove(const base::IpPrefix& prefix, Peer* peer) {
  Node* n = prefix.address.family == base::IpAddress::kV4 ? v4_.get() : v6_.get();
  if (prefix.address.family == base::IpAddress::kNone) return;
  for (size_t i = 0; i < prefix.length && n; ++i) n = n->child[Bit(prefix.address.bytes.data(), i)].get();
  if (n && n->peer == peer) n->peer = nullptr;
}

void AllowedIps::RemovePeer(Peer* peer) {
  std::function<void(Node*)> walk = [&](Node* n) {
    if (!n) return;
    if (n->peer == peer) n->peer = nullptr;
    walk(n->child[0].get());
    walk(n->child[1].get());
  };
  walk(v4_.get());
  walk(v6_.get());
}

Peer* AllowedIps::Lookup(const uint8_t* addr, size_t len) const {
  const Node* n;
  if (len == 4) {
    n = v4_.get();
  } else if (len == 16) {
    n = v6_.get();
  } else {
    return nullptr;
  }
  Peer* best = n->peer;
  for (size_t i = 0; i < len * 8; ++i) {
    n = n->child[Bit(addr, i)].get();
    if (!n) break;
    if (n->peer) best = n->peer;
  }
  return best;
}

Peer* AllowedIps::Lookup(const base::IpAddress& addr) const {
  return Lookup(addr.bytes.data(), addr.size());
}

std::vector<base::IpPrefix> AllowedIps::PrefixesOf(const Peer* peer) const {
  std::vector<base::IpPrefix> out;
  std::function<void(const Node*, base::IpAddress&, uint8_t)> walk =
      [&](const Node* n, base::IpAddress& a, uint8_t depth) {
        if (!n) return;
        if (n->peer == peer) out.push_back(base::IpPrefix::Make(a, depth));
        for (int b = 0; b < 2; ++b) {
          if (!n->child[b]) continue;
          uint8_t& byte = a.bytes[depth / 8];
          const uint8_t mask = static_cast<uint8_t>(0x80 >> (depth % 8));
          byte = b ? (byte | mask) : (byte & ~mask);
          walk(n->child[b].get(), a, static_cast<uint8_t>(depth + 1));
          byte &= ~mask;
        }
      };
  base::IpAddress a4;
  a4.family = base::IpAddress::kV4;
  walk(v4_.get(), a4, 0);
  base::IpAddress a6;
  a6.family = base::IpAddress::kV6;
  walk(v6_.get(), a6, 0);
  return out;
}

void AllowedIps::Clear() {
  v4_.reset(new Node());
  v6_.reset(new Node());
}

}  // namespace p2proxy::wg
