// ratelimiter.cc: the per-source handshake token bucket.
#include "wg/ratelimiter.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace p2proxy::wg {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
constexpr int kMaxPerSecond = 1000000;
constexpr int kMaxBurst = 1000;

uint64_t LoadBigEndian(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}

}  // namespace

absl::Status SourceRateLimiter::Validate(const RateLimitOptions& options) {
  if (options.per_second < 1 || options.per_second > kMaxPerSecond) {
    return absl::InvalidArgumentError(absl::StrCat("wg: handshake rate limit: per_second ",
                                                   options.per_second, " is not in [1, ",
                                                   kMaxPerSecond, "]"));
  }
  if (options.burst < 1 || options.burst > kMaxBurst) {
    return absl::InvalidArgumentError(absl::StrCat("wg: handshake rate limit: burst ",
                                                   options.burst, " is not in [1, ", kMaxBurst,
                                                   "]"));
  }
  if (options.max_sources < 1) {
    return absl::InvalidArgumentError("wg: handshake rate limit: max_sources must be at least 1");
  }
  return absl::OkStatus();
}

SourceRateLimiter::SourceRateLimiter(const RateLimitOptions& options) : options_(options) {
  options_.per_second = std::clamp(options_.per_second, 1, kMaxPerSecond);
  options_.burst = std::clamp(options_.burst, 1, kMaxBurst);
  options_.max_sources = std::max<size_t>(options_.max_sources, 1);
  cost_ns_ = kNanosPerSecond / options_.per_second;
  max_tokens_ns_ = cost_ns_ * options_.burst;
  // Forgetting an entry gives the source a full bucket again; wait until it would have one.
  idle_ns_ = std::max(absl::ToInt64Nanoseconds(kRateLimiterEntryIdle), max_tokens_ns_);
}

bool SourceRateLimiter::KeyFor(const base::SocketAddress& from, SourceKey* out) {
  if (from.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(from.sa());
    out->bits = LoadBigEndian(reinterpret_cast<const uint8_t*>(&v4->sin_addr), 4);
    out->v6 = false;
    return true;
  }
  if (from.family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(from.sa());
    const uint8_t* a = v6->sin6_addr.s6_addr;
    // A dual-stack socket reports IPv4 senders as ::ffff:a.b.c.d; keyed by /64 they would all
    // share one bucket, and one IPv4 flooder would lock out every other IPv4 peer.
    static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a, kMappedPrefix, sizeof(kMappedPrefix)) == 0) {
      out->bits = LoadBigEndian(a + 12, 4);
      out->v6 = false;
      return true;
    }
    out->bits = LoadBigEndian(a, 8);
    out->v6 = true;
    return true;
  }
  return false;
}

void SourceRateLimiter::Sweep(int64_t now_ns) {
  last_sweep_ns_ = now_ns;
  for (auto it = table_.begin(); it != table_.end();) {
    if (now_ns - it->second.last_ns >= idle_ns_) {
      table_.erase(it++);
    } else {
      ++it;
    }
  }
}

SourceRateLimiter::Verdict SourceRateLimiter::Allow(const base::SocketAddress& from,
                                                    absl::Duration now) {
  SourceKey key;
  if (!KeyFor(from, &key)) return Verdict::kOverRate;
  const int64_t now_ns = absl::ToInt64Nanoseconds(now);
  if (table_.empty()) {
    last_sweep_ns_ = now_ns;  // nothing to forget yet: the next sweep is an interval away
  } else if (now_ns - last_sweep_ns_ >= absl::ToInt64Nanoseconds(kRateLimiterSweepInterval)) {
    Sweep(now_ns);
  }

  auto it = table_.find(key);
  if (it == table_.end()) {
    if (table_.size() >= options_.max_sources) return Verdict::kTableFull;
    // A new source starts with a full bucket, less this message.
    table_.emplace(key, Bucket{max_tokens_ns_ - cost_ns_, now_ns});
    return Verdict::kAllowed;
  }
  // Tokens accrue one per nanosecond up to the burst; the burst is part of the bucket's size,
  // not of the rate.
  Bucket& b = it->second;
  const int64_t elapsed = std::max<int64_t>(0, now_ns - b.last_ns);
  const int64_t tokens = std::min(max_tokens_ns_, b.tokens_ns + std::min(elapsed, max_tokens_ns_));
  b.last_ns = std::max(b.last_ns, now_ns);
  if (tokens < cost_ns_) {
    b.tokens_ns = tokens;
    return Verdict::kOverRate;
  }
  b.tokens_ns = tokens - cost_ns_;
  return Verdict::kAllowed;
}

}  // namespace p2proxy::wg
