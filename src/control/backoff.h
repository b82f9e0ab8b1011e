// backoff.h: reconnect delays: exponential growth with full jitter (each delay uniform between
// zero and the current ceiling), so a restarted server is not hit by every node at once.
#ifndef P2PROXY_CONTROL_BACKOFF_H_
#define P2PROXY_CONTROL_BACKOFF_H_

#include <cstdint>
#include <random>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace p2proxy::control {

struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(500);  // the first ceiling
  absl::Duration max = absl::Seconds(30);            // the ceiling never grows past this
  double factor = 2;
  // reset_after: a session that stayed up this long resets the sequence (SessionEnded).
  absl::Duration reset_after = absl::Seconds(60);
};

class Backoff {
 public:
  // RandomUnit returns a number in [0, 1). Tests pass a fixed sequence; null uses a
  // std::mt19937_64 seeded from std::random_device.
  using RandomUnit = absl::AnyInvocable<double()>;
  explicit Backoff(BackoffOptions options = {}, RandomUnit random = nullptr);

  // Next is the delay before the next attempt: uniform in [0, ceiling) where ceiling is
  // min(max, initial * factor^attempts), and counts the attempt.
  absl::Duration Next();
  // Ceiling is the current ceiling (before Next counts the attempt).
  absl::Duration Ceiling() const;
  // Reset starts over from |initial|.
  void Reset() { attempts_ = 0; }
  // SessionEnded: a session that was up at least reset_after resets the sequence; a shorter
  // one (a server that accepts and drops us) keeps growing it.
  void SessionEnded(absl::Duration uptime);
  int attempts() const { return attempts_; }

 private:
  BackoffOptions options_;
  RandomUnit random_;
  std::mt19937_64 rng_;
  int attempts_ = 0;
};

}  // namespace p2proxy::control

#endif  // P2PROXY_CONTROL_BACKOFF_H_
