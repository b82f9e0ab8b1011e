// The per-source handshake token bucket on its own: rate, burst, refill, keying by address
// (IPv4 address, IPv6 /64, IPv4-mapped as IPv4, port ignored), expiry and the bounded table.
#include "wg/ratelimiter.h"

#include <catch2/catch.hpp>

#include <string>

#include "absl/strings/str_cat.h"

using namespace p2proxy;
using namespace p2proxy::wg;
using Verdict = SourceRateLimiter::Verdict;

namespace {

base::SocketAddress Addr(const std::string& text) { return *base::SocketAddress::Parse(text); }

// AllowedOf counts how many of |n| messages from |from| at |now| pass.
int AllowedOf(SourceRateLimiter& rl, const base::SocketAddress& from, absl::Duration now, int n) {
  int allowed = 0;
  for (int i = 0; i < n; ++i) allowed += rl.Allow(from, now) == Verdict::kAllowed;
  return allowed;
}

const absl::Duration kT0 = absl::Seconds(100);

}  // namespace

TEST_CASE("ratelimiter: a new source gets the burst, then the rate, and refills up to the burst only") {
  SourceRateLimiter rl;
  const auto src = Addr("203.0.113.7:4000");
  REQUIRE(AllowedOf(rl, src, kT0, 20) == kHandshakeBurstPerSource);
  REQUIRE(rl.Allow(src, kT0) == Verdict::kOverRate);
  // One token per 1/20 s.
  REQUIRE(AllowedOf(rl, src, kT0 + absl::Milliseconds(49), 1) == 0);
  REQUIRE(AllowedOf(rl, src, kT0 + absl::Milliseconds(50), 5) == 1);
  REQUIRE(AllowedOf(rl, src, kT0 + absl::Milliseconds(150), 5) == 2);
  // A long quiet spell refills to the burst, never beyond.
  REQUIRE(AllowedOf(rl, src, kT0 + absl::Milliseconds(900), 20) == kHandshakeBurstPerSource);
  // Drained again, then over a steady second of tries a source gets its rate.
  REQUIRE(AllowedOf(rl, src, kT0 + absl::Milliseconds(1000), 20) == 2);
  int allowed = 0;
  for (int ms = 1010; ms <= 2000; ms += 10) allowed += AllowedOf(rl, src, kT0 + absl::Milliseconds(ms), 1);
  REQUIRE(allowed == kHandshakesPerSecondPerSource);
}

TEST_CASE("ratelimiter: sources are IPv4 addresses and IPv6 /64s, whatever their ports") {
  SourceRateLimiter rl;
  REQUIRE(AllowedOf(rl, Addr("203.0.113.7:4000"), kT0, 5) == 5);
  REQUIRE(rl.Allow(Addr("203.0.113.7:4001"), kT0) == Verdict::kOverRate);  // same address
  REQUIRE(rl.Allow(Addr("203.0.113.8:4000"), kT0) == Verdict::kAllowed);   // next address
  REQUIRE(AllowedOf(rl, Addr("[2001:db8:1:2::1]:4000"), kT0, 5) == 5);
  REQUIRE(rl.Allow(Addr("[2001:db8:1:2:ffff::9]:5000"), kT0) == Verdict::kOverRate);  // same /64
  REQUIRE(rl.Allow(Addr("[2001:db8:1:3::1]:4000"), kT0) == Verdict::kAllowed);        // next /64
  REQUIRE(rl.size() == 4);
}

TEST_CASE("ratelimiter: IPv4-mapped IPv6 sources are keyed as IPv4, not as one shared /64") {
  SourceRateLimiter rl;
  REQUIRE(AllowedOf(rl, Addr("[::ffff:203.0.113.7]:4000"), kT0, 5) == 5);
  REQUIRE(rl.Allow(Addr("[::ffff:203.0.113.7]:4000"), kT0) == Verdict::kOverRate);
  // Another IPv4 peer on the same dual-stack socket is not affected...
  REQUIRE(rl.Allow(Addr("[::ffff:198.51.100.1]:4000"), kT0) == Verdict::kAllowed);
  // ...and the mapped form is the same source as the plain IPv4 one.
  REQUIRE(rl.Allow(Addr("203.0.113.7:9"), kT0) == Verdict::kOverRate);
}

TEST_CASE("ratelimiter: idle entries expire on the injected time, and expiry adds no tokens") {
  SourceRateLimiter rl;
  const auto src = Addr("203.0.113.7:4000");
  REQUIRE(AllowedOf(rl, src, kT0, 5) == 5);
  REQUIRE(rl.size() == 1);
  // Half a second later: not forgotten (the next sweep is due a second after the first use).
  REQUIRE(AllowedOf(rl, Addr("203.0.113.8:1"), kT0 + absl::Milliseconds(500), 1) == 1);
  REQUIRE(rl.size() == 2);
  // After the entry idled for kRateLimiterEntryIdle, the next Allow sweeps it away.
  REQUIRE(AllowedOf(rl, Addr("203.0.113.9:1"), kT0 + kRateLimiterEntryIdle, 1) == 1);
  REQUIRE(rl.size() == 2);  // .7 gone; .8 (idle 0.5 s) kept; .9 added
  REQUIRE(AllowedOf(rl, Addr("203.0.113.9:1"), kT0 + 2 * kRateLimiterEntryIdle, 1) == 1);
  REQUIRE(rl.size() == 1);

  // With a slow rate (a bucket takes 5 s to refill) an entry lives until it would be full, so
  // forgetting it never gives a source more than it would have had.
  SourceRateLimiter slow(RateLimitOptions{1, 5, 16});
  REQUIRE(AllowedOf(slow, src, kT0, 10) == 5);
  REQUIRE(AllowedOf(slow, Addr("203.0.113.8:1"), kT0 + absl::Seconds(2), 1) == 1);  // sweeps
  REQUIRE(slow.size() == 2);
  REQUIRE(AllowedOf(slow, src, kT0 + absl::Seconds(2), 10) == 2);  // 2 s of refill, not 5
}

TEST_CASE("ratelimiter: the table is bounded: when full, new sources are refused, known ones served") {
  SourceRateLimiter rl;
  size_t refused = 0;
  // Twice the table's size of distinct IPv6 /64s, all within one instant.
  for (size_t i = 0; i < 2 * kMaxRateLimitedSources; ++i) {
    const auto a = Addr(absl::StrCat("[2001:db8:", absl::Hex(i >> 16), ":", absl::Hex(i & 0xffff), "::1]:1"));
    refused += rl.Allow(a, kT0) == Verdict::kTableFull;
    REQUIRE(rl.size() <= kMaxRateLimitedSources);
  }
  REQUIRE(rl.size() == kMaxRateLimitedSources);
  REQUIRE(refused == kMaxRateLimitedSources);
  // A source already in the table keeps its bucket.
  REQUIRE(rl.Allow(Addr("[2001:db8:0:0::1]:1"), kT0) == Verdict::kAllowed);
  // Once the flood has been quiet for the idle time, the table drains and new sources get in.
  REQUIRE(rl.Allow(Addr("192.0.2.1:1"), kT0 + kRateLimiterEntryIdle) == Verdict::kAllowed);
  REQUIRE(rl.size() == 1);
}

TEST_CASE("ratelimiter: options are validated") {
  REQUIRE(SourceRateLimiter::Validate({}).ok());
  REQUIRE(SourceRateLimiter::Validate(RateLimitOptions{0, 5, 10}).message() ==
          "wg: handshake rate limit: per_second 0 is not in [1, 1000000]");
  REQUIRE(!SourceRateLimiter::Validate(RateLimitOptions{20, 0, 10}).ok());
  REQUIRE(!SourceRateLimiter::Validate(RateLimitOptions{20, 5, 0}).ok());
  SourceRateLimiter rl(RateLimitOptions{20, 5, 2});
  REQUIRE(rl.Allow(Addr("192.0.2.1:1"), kT0) == Verdict::kAllowed);
  REQUIRE(rl.Allow(Addr("192.0.2.2:1"), kT0) == Verdict::kAllowed);
  REQUIRE(rl.Allow(Addr("192.0.2.3:1"), kT0) == Verdict::kTableFull);
  REQUIRE(rl.Allow(base::SocketAddress(), kT0) == Verdict::kOverRate);  // no address at all
}
