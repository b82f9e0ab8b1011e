// constants.h: WireGuard's protocol constants (the paper §6, and the reference implementations),
// kept apart from this implementation's own limits below them.
#ifndef P2PROXY_WG_CONSTANTS_H_
#define P2PROXY_WG_CONSTANTS_H_

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"

namespace p2proxy::wg {

// ---- Protocol constants: changing these breaks interoperability. ----
inline constexpr uint64_t kRekeyAfterMessages = uint64_t{1} << 60;
inline constexpr uint64_t kRejectAfterMessages = UINT64_MAX - (uint64_t{1} << 13);
inline constexpr absl::Duration kRekeyAfterTime = absl::Seconds(120);
inline constexpr absl::Duration kRejectAfterTime = absl::Seconds(180);
inline constexpr absl::Duration kRekeyAttemptTime = absl::Seconds(90);
inline constexpr absl::Duration kRekeyTimeout = absl::Seconds(5);
inline constexpr absl::Duration kKeepaliveTimeout = absl::Seconds(10);
inline constexpr absl::Duration kCookieSecretMaxAge = absl::Seconds(120);
inline constexpr absl::Duration kCookieSecretLatency = absl::Seconds(5);
// A retried initiation waits REKEY_TIMEOUT plus up to this much random jitter.
inline constexpr absl::Duration kRekeyTimeoutJitterMax = absl::Milliseconds(333);
// REKEY_ATTEMPT_TIME / REKEY_TIMEOUT: initiations sent before giving up.
inline constexpr int kMaxTimerHandshakes = 90 / 5;

inline constexpr char kConstruction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
inline constexpr char kIdentifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
inline constexpr char kLabelMac1[] = "mac1----";
inline constexpr char kLabelCookie[] = "cookie--";

// ---- Implementation limits (ours; a peer cannot tell). ----
// Packets held for a peer while its handshake completes; the oldest go first.
inline constexpr size_t kMaxStagedPackets = 128;
// Handshake messages per second above which the device is "under load" and demands cookies.
inline constexpr int kUnderLoadHandshakesPerSecond = 256;
// How long the device stays under load after the rate falls again.
inline constexpr absl::Duration kUnderLoadAfterTime = absl::Seconds(1);
// Under load, handshake messages with a valid mac2 from one source (IPv4 address, IPv6 /64):
// at most this many per second, after a burst of this many. The kernel's values.
inline constexpr int kHandshakesPerSecondPerSource = 20;
inline constexpr int kHandshakeBurstPerSource = 5;
// Sources the per-source limiter tracks at once; beyond it new sources are refused (see
// ratelimiter.h for why not evicted). 8192 entries are about half a megabyte.
inline constexpr size_t kMaxRateLimitedSources = 8192;
// A source's entry is forgotten after this long without a message (it would have refilled);
// idle entries are looked for at most once per sweep interval.
inline constexpr absl::Duration kRateLimiterEntryIdle = absl::Seconds(1);
inline constexpr absl::Duration kRateLimiterSweepInterval = absl::Seconds(1);
// A peer's initiations are consumed at most this often (flood protection).
inline constexpr absl::Duration kMinInitiationInterval = absl::Milliseconds(20);
// Default tunnel MTU: a 1500-byte path less IPv6 (40) + UDP (8) + WireGuard (32).
inline constexpr size_t kDefaultMtu = 1420;

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_CONSTANTS_H_
