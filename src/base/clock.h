// clock.h: injectable time. Code that needs time takes a Clock&, so tests drive it with
// FakeClock instead of sleeping.
#ifndef P2PROXY_BASE_CLOCK_H_
#define P2PROXY_BASE_CLOCK_H_

#include "absl/time/time.h"

namespace p2proxy::base {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic is time since an arbitrary fixed origin; it never goes backwards. Use it for
  // timers, timeouts and rates.
  virtual absl::Duration Monotonic() const = 0;
  // Wall is the civil time (for TAI64N timestamps and log lines); it may jump.
  virtual absl::Time Wall() const = 0;
};

// RealClock reads CLOCK_MONOTONIC and CLOCK_REALTIME.
class RealClock final : public Clock {
 public:
  absl::Duration Monotonic() const override;
  absl::Time Wall() const override;
  // Get returns a process-wide instance (never destroyed).
  static RealClock& Get();
};

// FakeClock moves only when told to. Both readings advance together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time wall_start = absl::FromUnixSeconds(1700000000))
      : wall_start_(wall_start) {}
  absl::Duration Monotonic() const override { return mono_; }
  absl::Time Wall() const override { return wall_start_ + mono_ + wall_skew_; }
  void Advance(absl::Duration d) { mono_ += d; }
  // JumpWall moves only the wall clock (as an NTP step would).
  void JumpWall(absl::Duration d) { wall_skew_ += d; }

 private:
  absl::Time wall_start_;
  absl::Duration mono_ = absl::Seconds(1);
  absl::Duration wall_skew_ = absl::ZeroDuration();
};

}  // namespace p2proxy::base

#endif  // P2PROXY_BASE_CLOCK_H_
