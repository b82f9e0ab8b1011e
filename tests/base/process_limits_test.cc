// Tests for RaiseOpenFileLimit.
#include "base/process_limits.h"

#include <sys/resource.h>

#include <catch2/catch.hpp>

using namespace p2proxy::base;

TEST_CASE("RaiseOpenFileLimit lifts the soft limit to the hard one and never lowers it") {
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  if (saved.rlim_max < 64) {
    WARN("skipped: the hard limit on open files is too low to lower the soft one");
    return;
  }
  rlimit low = saved;
  low.rlim_cur = 32;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);

  OpenFileLimit got = RaiseOpenFileLimit();
  CHECK(got.before == 32);
  CHECK(got.after == saved.rlim_max);
  CHECK(got.hard == saved.rlim_max);
  rlimit now{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
  CHECK(now.rlim_cur == saved.rlim_max);

  // Already at the hard limit: nothing changes.
  OpenFileLimit again = RaiseOpenFileLimit();
  CHECK(again.before == saved.rlim_max);
  CHECK(again.after == saved.rlim_max);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
}
