// Tests for the clocks.
#include "base/clock.h"

#include <catch2/catch.hpp>

using namespace p2proxy::base;

TEST_CASE("FakeClock moves only when told") {
  FakeClock clock(absl::FromUnixSeconds(1000));
  auto m0 = clock.Monotonic();
  auto w0 = clock.Wall();
  REQUIRE(clock.Monotonic() == m0);
  clock.Advance(absl::Seconds(5));
  REQUIRE(clock.Monotonic() - m0 == absl::Seconds(5));
  REQUIRE(clock.Wall() - w0 == absl::Seconds(5));
  clock.JumpWall(absl::Hours(-1));
  REQUIRE(clock.Monotonic() - m0 == absl::Seconds(5));
  REQUIRE(clock.Wall() - w0 == absl::Seconds(5) - absl::Hours(1));
}

TEST_CASE("RealClock is monotonic") {
  auto& clock = RealClock::Get();
  auto a = clock.Monotonic();
  auto b = clock.Monotonic();
  REQUIRE(b >= a);
  REQUIRE(clock.Wall() > absl::FromUnixSeconds(1600000000));
}
