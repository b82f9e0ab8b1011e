// backoff.cc: Backoff, exponential with full jitter.
#include "control/backoff.h"

#include <algorithm>
#include <cmath>

namespace p2proxy::control {

Backoff::Backoff(BackoffOptions options, RandomUnit random)
    : options_(options), random_(std::move(random)), rng_(std::random_device{}()) {}

absl::Duration Backoff::Ceiling() const {
  const double initial = absl::ToDoubleSeconds(options_.initial);
  const double max = absl::ToDoubleSeconds(options_.max);
  // pow of a bounded exponent: past the cap the value no longer matters, so stop at 64.
  const double grown = initial * std::pow(std::max(1.0, options_.factor), std::min(attempts_, 64));
  return absl::Seconds(std::min(grown, max));
}

absl::Duration Backoff::Next() {
  const absl::Duration ceiling = Ceiling();
  double u = random_ ? random_() : std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  u = std::clamp(u, 0.0, 1.0);
  if (attempts_ < 1000) ++attempts_;
  return ceiling * u;
}

void Backoff::SessionEnded(absl::Duration uptime) {
  if (uptime >= options_.reset_after) Reset();
}

}  // namespace p2proxy::control
