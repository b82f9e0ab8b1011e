// relay.cc: Relay (relay.h).
#include "server/relay.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "nat/relay_frame.h"

namespace p2proxy::server {

Relay::EndpointKey Relay::KeyOf(const base::SocketAddress& a) {
  // The family, then the address and port bytes: exact, and never two endpoints for one key.
  EndpointKey k{};
  k[0] = static_cast<uint8_t>(a.family());
  if (a.family() == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(a.sa());
    std::memcpy(k.data() + 1, &s->sin_addr, 4);
    std::memcpy(k.data() + 17, &s->sin_port, 2);
  } else if (a.family() == AF_INET6) {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(a.sa());
    std::memcpy(k.data() + 1, &s->sin6_addr, 16);
    std::memcpy(k.data() + 17, &s->sin6_port, 2);
  }
  return k;
}

uint32_t Relay::V4(const base::IpAddress& a) {
  uint32_t v = 0;
  std::memcpy(&v, a.bytes.data(), 4);
  return v;
}

void Relay::SetEndpoint(const base::IpAddress& node, const base::SocketAddress& endpoint) {
  if (node.family != base::IpAddress::kV4 || !endpoint.valid()) return;
  const uint32_t id = V4(node);
  NodeState& n = by_node_[id];
  if (n.endpoint.valid()) {
    auto it = by_endpoint_.find(n.endpoint_key);
    if (it != by_endpoint_.end() && it->second == id) by_endpoint_.erase(it);
  }
  n.endpoint = endpoint;
  n.endpoint_key = KeyOf(endpoint);
  if (n.refilled == absl::Duration()) {
    n.tokens = options_.burst;
    n.refilled = clock_.Monotonic();
  }
  // An endpoint belongs to the node last authenticated there (a NAT may reuse a mapping).
  by_endpoint_[n.endpoint_key] = id;
}

Relay::NodeTraffic Relay::TrafficOf(const base::IpAddress& node) const {
  if (node.family != base::IpAddress::kV4) return {};
  auto it = by_node_.find(V4(node));
  return it == by_node_.end() ? NodeTraffic() : it->second.traffic;
}

void Relay::RemoveNode(const base::IpAddress& node) {
  if (node.family != base::IpAddress::kV4) return;
  auto it = by_node_.find(V4(node));
  if (it == by_node_.end()) return;
  auto e = by_endpoint_.find(it->second.endpoint_key);
  if (e != by_endpoint_.end() && e->second == it->first) by_endpoint_.erase(e);
  by_node_.erase(it);
}

bool Relay::Handle(const base::Datagram& d, const SendFn& send) {
  if (!nat::IsRelayFrame(d.data)) return false;
  nat::RelayFrame f;
  if (!nat::ParseRelayFrame(d.data, &f)) {
    ++counters_.malformed;
    return true;
  }
  auto sender = by_endpoint_.find(KeyOf(d.addr));
  if (sender == by_endpoint_.end()) {
    ++counters_.unknown_sender;
    return true;
  }
  if (sender->second != V4(f.src)) {
    ++counters_.spoofed;
    return true;
  }
  auto dst = by_node_.find(V4(f.dst));
  if (dst == by_node_.end()) {
    ++counters_.unknown_destination;
    return true;
  }
  auto src = by_node_.find(sender->second);
  if (src == by_node_.end()) {
    ++counters_.unknown_sender;
    return true;
  }
  NodeState& from = src->second;
  const absl::Duration now = clock_.Monotonic();
  from.tokens = std::min(options_.burst,
                         from.tokens + absl::ToDoubleSeconds(now - from.refilled) * options_.frames_per_second);
  from.refilled = now;
  if (from.tokens < 1) {
    ++counters_.rate_limited;
    return true;
  }
  from.tokens -= 1;
  ++from.traffic.frames_from;
  from.traffic.last = now;
  ++dst->second.traffic.frames_to;
  dst->second.traffic.last = now;
  ++counters_.forwarded;
  counters_.forwarded_bytes += d.data.size();
  send(dst->second.endpoint, d.data);
  return true;
}

}  // namespace p2proxy::server
