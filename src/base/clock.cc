// clock.cc: the real clock.
#include "base/clock.h"

#include <time.h>

#include "absl/time/clock.h"

namespace p2proxy::base {

absl::Duration RealClock::Monotonic() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::DurationFromTimespec(ts);
}

absl::Time RealClock::Wall() const { return absl::Now(); }

RealClock& RealClock::Get() {
  static RealClock* clock = new RealClock();
  return *clock;
}

}  // namespace p2proxy::base
