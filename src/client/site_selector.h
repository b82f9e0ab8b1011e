// site_selector.h: which site carries each flow to a resource served by several sites
// (DESIGN.md §5 "Health probes"). The client probes every candidate site through the tunnel
// with ICMP echo to the site's node address (the site's stack answers), keeps a smoothed RTT and
// an up/down state per site, and pins each new flow to the resource's preferred site: the
// lowest-RTT site that is up, changed only when another is clearly faster (hysteresis) or the
// preferred one goes down. A flow stays on its site while that site is up; when it goes down
// the flow moves to the preferred one. One resource keeps one address throughout.
//
// No I/O: the caller sends the probe packets it is given, hands over every packet the tunnel
// delivers (probe replies are consumed), and asks Route for each packet it sends. Time comes in
// as monotonic durations, so the unit tests drive it with a fake clock.
#ifndef P2PROXY_CLIENT_SITE_SELECTOR_H_
#define P2PROXY_CLIENT_SITE_SELECTOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "base/bytes.h"
#include "base/ip_prefix.h"
#include "crypto/secret.h"

namespace p2proxy::client {

// SiteCandidate is a site as a peer of the client.
struct SiteCandidate {
  crypto::PublicKey key{};
  base::IpAddress node_address;  // IPv4: where probes go
  std::string name;              // for logs and status
  friend bool operator==(const SiteCandidate&, const SiteCandidate&) = default;
};

// SharedResource is a resource address with the sites that serve it, in the server's order.
struct SharedResource {
  base::IpAddress address;  // IPv4
  std::vector<SiteCandidate> sites;
};

class SiteSelector {
 public:
  struct Options {
    absl::Duration probe_interval = absl::Seconds(1);
    // A probe is missed after max(min_timeout, 3 x the site's smoothed RTT), at most
    // max_timeout; the next goes out at once.
    absl::Duration min_timeout = absl::Milliseconds(200);
    absl::Duration max_timeout = absl::Seconds(1);
    int misses_to_down = 3;
    int answers_to_up = 3;  // a site that was down is up again after this many answers in a row
    // A new preferred site must have a smoothed RTT below this fraction of the current one's.
    double switch_ratio = 0.8;
    absl::Duration flow_idle = absl::Seconds(120);
    size_t max_flows = 65536;
  };

  enum class Health { kUnknown, kUp, kDown };

  struct SiteStatus {
    SiteCandidate site;
    Health health = Health::kUnknown;
    std::optional<absl::Duration> rtt;  // smoothed; none before the first answer
    uint64_t probes_sent = 0;
    uint64_t answers = 0;
    size_t flows = 0;
  };

  struct Probe {
    crypto::PublicKey site{};
    std::vector<uint8_t> packet;  // an IPv4 ICMP echo request
    // suspect: the site missed its last probe or is down. It may have restarted with new
    // session keys, so the caller starts a new WireGuard handshake (WireGuard sends at most
    // one per 5 s) instead of waiting the 15 s after which WireGuard would try on its own.
    bool suspect = false;
  };

  // Event is a change worth logging: a site up or down, a resource's preferred site.
  struct Event {
    std::string what;  // "site_up", "site_down", "preferred"
    std::string site;  // name
    std::string resource;  // address, for "preferred"
  };

  SiteSelector() : SiteSelector(Options()) {}
  explicit SiteSelector(Options options) : options_(options) {}

  // Configure sets the client's own address (probes' source) and the shared resources. Sites
  // that stay keep their health and RTT; flows to a resource that is gone, or pinned to a site
  // no longer serving it, are forgotten.
  void Configure(const base::IpAddress& self, const std::vector<SharedResource>& resources, absl::Duration now);
  bool empty() const { return resources_.empty(); }

  // Route: the site to carry |packet| (an IP packet from the client) when its destination is a
  // shared resource, else nullopt. Pins new flows (TCP/UDP by ports, other protocols by
  // destination) to the resource's preferred site, and has that site probed at the next Tick
  // if it has not answered in the last quarter of a probe interval.
  std::optional<crypto::PublicKey> Route(base::ByteSpan packet, absl::Duration now);

  // OnDelivered consumes the packet if it is an answer to one of our probes (true).
  bool OnDelivered(base::ByteSpan packet, absl::Duration now);

  // Tick: probes due now (and misses counted), flows idle too long dropped. Call at least every
  // 100 ms while !empty().
  std::vector<Probe> Tick(absl::Duration now);

  // TakeEvents: what changed since the last call, oldest first.
  std::vector<Event> TakeEvents();

  std::vector<SiteStatus> Status() const;
  // PreferredFor: the site new flows to |resource| go to now, or null.
  const SiteCandidate* PreferredFor(const base::IpAddress& resource) const;
  size_t flow_count() const { return flows_.size(); }

  static constexpr uint16_t kProbeId = 0x7032;  // ICMP identifier of every probe ("p2")

 private:
  struct SiteState {
    SiteCandidate site;
    Health health = Health::kUnknown;
    std::optional<absl::Duration> rtt;
    int misses = 0;
    int answers_in_row = 0;
    uint16_t seq = 0;
    std::optional<absl::Duration> outstanding_since;  // the probe in flight, if any
    uint16_t outstanding_seq = 0;
    absl::Duration next_probe_at = absl::ZeroDuration();
    absl::Duration last_answer = -absl::InfiniteDuration();
    uint64_t probes_sent = 0;
    uint64_t answers = 0;
  };
  struct ResourceState {
    std::vector<crypto::PublicKey> sites;  // in the server's order
    std::optional<crypto::PublicKey> preferred;
  };
  struct FlowKey {
    uint32_t dst = 0;
    uint16_t src_port = 0, dst_port = 0;
    uint8_t proto = 0;
    friend bool operator==(const FlowKey&, const FlowKey&) = default;
    template <typename H>
    friend H AbslHashValue(H h, const FlowKey& k) {
      return H::combine(std::move(h), k.dst, k.src_port, k.dst_port, k.proto);
    }
  };
  struct Flow {
    crypto::PublicKey site{};
    absl::Duration last_used;
  };

  SiteState* Find(const crypto::PublicKey& key);
  const SiteState* Find(const crypto::PublicKey& key) const;
  absl::Duration TimeoutOf(const SiteState& s) const;
  void SetHealth(SiteState& s, Health h);
  // Choose recomputes every resource's preferred site (after a health or RTT change).
  void Choose();
  std::vector<uint8_t> MakeProbe(const SiteState& s) const;

  Options options_;
  base::IpAddress self_;
  std::vector<SiteState> sites_;
  absl::flat_hash_map<uint32_t, ResourceState> resources_;  // by IPv4 address (host order)
  absl::flat_hash_map<FlowKey, Flow> flows_;
  absl::Duration last_sweep_ = absl::ZeroDuration();
  std::vector<Event> events_;
};

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_SITE_SELECTOR_H_
