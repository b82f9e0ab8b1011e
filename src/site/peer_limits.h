// peer_limits.h: what each peer holds at the site (connections, UDP sessions, HTTP/2 streams)
// against its caps, and the site-wide HTTP/2 window budget, so that one peer at its limits
// cannot take what another peer needs (invariant I5). See docs/limits.md.
#ifndef P2PROXY_SITE_PEER_LIMITS_H_
#define P2PROXY_SITE_PEER_LIMITS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "http/h2_server.h"
#include "site/site_config.h"

namespace p2proxy::site {

// PeerLimits counts, per peer (its base64 public key), what it holds now, and refuses more
// than SiteLimits allows. An entry lives only while the peer holds something, so the table is
// bounded by what is open.
class PeerLimits {
 public:
  enum class Kind : uint8_t { kTcp, kUdp, kHttp2Stream };
  static constexpr size_t kNumKinds = 3;

  // Admission is the answer to TryAcquire: |ok|, or a refusal; |first_refusal| marks the first
  // refusal since the peer was last below that limit (audit that one; count the rest).
  struct Admission {
    bool ok = false;
    bool first_refusal = false;
  };

  explicit PeerLimits(const SiteLimits& limits) : limits_(limits) {}
  PeerLimits(const PeerLimits&) = delete;
  PeerLimits& operator=(const PeerLimits&) = delete;

  // TryAcquire takes one unit of |kind| for |peer_key| if the peer is below its cap.
  Admission TryAcquire(std::string_view peer_key, Kind kind);
  // Release gives back one unit a successful TryAcquire took. An unknown peer or a count at
  // zero is ignored (never underflows).
  void Release(std::string_view peer_key, Kind kind);
  size_t InUse(std::string_view peer_key, Kind kind) const;
  uint64_t refused(Kind kind) const { return refused_[static_cast<size_t>(kind)]; }
  size_t Cap(Kind kind) const;
  size_t num_peers() const { return peers_.size(); }

  // The site-wide budget for HTTP/2 request-body windows (SiteLimits::http2_window_budget_bytes).
  bool TryReserveWindow(size_t bytes);
  void ReleaseWindow(size_t bytes);
  size_t window_in_use() const { return window_in_use_; }

 private:
  struct Usage {
    std::array<size_t, kNumKinds> held{};
    std::array<bool, kNumKinds> refusing{};  // refusals since the last time below the cap
  };
  SiteLimits limits_;
  std::unordered_map<std::string, Usage> peers_;
  std::array<uint64_t, kNumKinds> refused_{};
  size_t window_in_use_ = 0;
};

// PeerH2Admission is one HTTP/2 connection's view of PeerLimits: its streams count against the
// peer's cap and its windows against the site's budget. The first refusal of a streak runs
// |on_first_refusal| (for audit).
class PeerH2Admission final : public http::H2Admission {
 public:
  PeerH2Admission(PeerLimits& limits, std::string peer_key, absl::AnyInvocable<void()> on_first_refusal)
      : limits_(limits), peer_key_(std::move(peer_key)), on_first_refusal_(std::move(on_first_refusal)) {}
  bool TryOpenStream() override;
  void CloseStream() override { limits_.Release(peer_key_, PeerLimits::Kind::kHttp2Stream); }
  bool TryReserveWindow(size_t bytes) override { return limits_.TryReserveWindow(bytes); }
  void ReleaseWindow(size_t bytes) override { limits_.ReleaseWindow(bytes); }

 private:
  PeerLimits& limits_;
  std::string peer_key_;
  absl::AnyInvocable<void()> on_first_refusal_;
};

// RecentSet remembers at most |capacity| keys, forgetting the oldest first. The site uses it
// for "this refused flow was audited already": a flood of new flows evicts old entries (which
// may then be audited again) instead of filling a one-way set and silencing audit for good.
template <typename Key, typename Hash = std::hash<Key>>
class RecentSet {
 public:
  explicit RecentSet(size_t capacity) : capacity_(capacity) {}
  // Insert returns true if |key| was not remembered (and now is).
  bool Insert(const Key& key) {
    if (capacity_ == 0 || keys_.count(key) != 0) return false;
    if (order_.size() == capacity_) {
      keys_.erase(order_.front());
      order_.pop_front();
      ++evicted_;
    }
    keys_.insert(key);
    order_.push_back(key);
    return true;
  }
  bool Contains(const Key& key) const { return keys_.count(key) != 0; }
  size_t size() const { return order_.size(); }
  uint64_t evicted() const { return evicted_; }

 private:
  size_t capacity_;
  std::unordered_set<Key, Hash> keys_;
  std::deque<Key> order_;
  uint64_t evicted_ = 0;
};

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_PEER_LIMITS_H_
