// ratelimiter.h: a token bucket per source address for handshake messages that arrive while the
// device is under load, as the Linux kernel's WireGuard does (drivers/net/wireguard/
// ratelimiter.c). A valid mac2 proves the sender receives at its address, so a flood that got
// past the cookie can come only from addresses the attacker really holds; this bounds the
// Diffie-Hellman work each of them can cause. IPv4 sources are keyed by address, IPv6 by /64
// (one customer's allocation), IPv4-mapped IPv6 as IPv4. The port never matters.
#ifndef P2PROXY_WG_RATELIMITER_H_
#define P2PROXY_WG_RATELIMITER_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "wg/constants.h"

namespace p2proxy::wg {

// RateLimitOptions: the defaults are the kernel's rate and burst (constants.h).
struct RateLimitOptions {
  int per_second = kHandshakesPerSecondPerSource;  // sustained messages per second per source
  int burst = kHandshakeBurstPerSource;            // messages a quiet source may send back to back
  size_t max_sources = kMaxRateLimitedSources;     // entries in the table
};

// SourceRateLimiter holds one bucket per source. An entry is forgotten once idle for longer than
// it takes to refill (at least kRateLimiterEntryIdle), so forgetting it never adds tokens.
//
// When the table is full a new source is refused (kTableFull), as the kernel does, rather than
// an old entry evicted: eviction would hand a fresh burst to every address an attacker cycles
// through, so one holding more addresses than the table would get unbounded handshakes, while
// refusing keeps the total at max_sources x per_second. Sources already in the table keep their
// rate. Sweeps run inside Allow (the device has no timer for this), so idle entries hold memory
// until the next handshake under load, never more than max_sources of them.
class SourceRateLimiter {
 public:
  enum class Verdict : uint8_t { kAllowed, kOverRate, kTableFull };

  // Validate: per_second in [1, 1000000], burst in [1, 1000], max_sources >= 1.
  static absl::Status Validate(const RateLimitOptions& options);
  // The options must have passed Validate (out-of-range values are clamped into range).
  explicit SourceRateLimiter(const RateLimitOptions& options = {});

  // Allow takes one token from |from|'s bucket at monotonic time |now|. An address of neither
  // family is refused as kOverRate. At most once per kRateLimiterSweepInterval it first
  // forgets idle entries, so the cost of a sweep is spread over a second of traffic.
  Verdict Allow(const base::SocketAddress& from, absl::Duration now);

  size_t size() const { return table_.size(); }
  const RateLimitOptions& options() const { return options_; }

 private:
  struct SourceKey {
    uint64_t bits = 0;  // the IPv4 address, or the first 64 bits of the IPv6 address
    bool v6 = false;
    friend bool operator==(const SourceKey& a, const SourceKey& b) {
      return a.bits == b.bits && a.v6 == b.v6;
    }
    template <typename H>
    friend H AbslHashValue(H h, const SourceKey& k) {
      return H::combine(std::move(h), k.bits, k.v6);
    }
  };
  struct Bucket {
    int64_t tokens_ns;  // time-denominated tokens: one message costs cost_ns_
    int64_t last_ns;    // monotonic time of the last message from this source
  };

  static bool KeyFor(const base::SocketAddress& from, SourceKey* out);
  void Sweep(int64_t now_ns);

  RateLimitOptions options_;
  int64_t cost_ns_;        // 1 s / per_second
  int64_t max_tokens_ns_;  // cost_ns_ x burst
  int64_t idle_ns_;        // entries idle this long are forgotten
  int64_t last_sweep_ns_ = 0;  // set by the first Allow
  absl::flat_hash_map<SourceKey, Bucket> table_;
};

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_RATELIMITER_H_
