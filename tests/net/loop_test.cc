// Tests for the loop: timers, posted work, deferred deletion, bounded waits.
#include "net/loop.h"

#include <catch2/catch.hpp>
#include <memory>

#include "net/timer.h"

using namespace p2proxy::net;

namespace {

class Tracked : public DeferredDeletable {
 public:
  explicit Tracked(int* deaths) : deaths_(deaths) {}
  ~Tracked() override { ++*deaths_; }

 private:
  int* deaths_;
};

}  // namespace

TEST_CASE("a timer fires once and the loop then has nothing to do") {
  Loop loop;
  int fired = 0;
  Timer t(loop);
  t.Start(absl::Milliseconds(1), [&] { ++fired; });
  loop.Run();  // returns when no active handle is left
  REQUIRE(fired == 1);
  REQUIRE_FALSE(t.active());
}

TEST_CASE("a repeating timer repeats until its callback stops it") {
  Loop loop;
  int fired = 0;
  Timer t(loop);
  t.StartRepeating(absl::Milliseconds(1), [&] {
    if (++fired == 3) t.Stop();
  });
  loop.Run();
  REQUIRE(fired == 3);
}

TEST_CASE("a timer callback may destroy its own timer") {
  Loop loop;
  auto t = std::make_unique<Timer>(loop);
  bool fired = false;
  t->Start(absl::Milliseconds(1), [&] {
    fired = true;
    t.reset();
  });
  REQUIRE(loop.RunUntil([&] { return fired; }, absl::Seconds(10)));
  REQUIRE(t == nullptr);
}

TEST_CASE("deferred deletion happens after the current callback, not during it") {
  Loop loop;
  int deaths = 0;
  int deaths_seen_in_callback = -1;
  Timer t(loop);
  t.Start(absl::Milliseconds(1), [&] {
    loop.DeferDelete(std::make_unique<Tracked>(&deaths));
    deaths_seen_in_callback = deaths;
  });
  REQUIRE(loop.RunUntil([&] { return deaths == 1; }, absl::Seconds(10)));
  REQUIRE(deaths_seen_in_callback == 0);
}

TEST_CASE("posted work runs on a later turn, in order") {
  Loop loop;
  std::vector<int> order;
  loop.Post([&] { order.push_back(1); });
  loop.Post([&] {
    order.push_back(2);
    loop.Post([&] { order.push_back(3); });
  });
  REQUIRE(order.empty());
  loop.Run();  // posted work keeps the loop alive until done
  REQUIRE(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("RunUntil gives up at its bound when the event never comes") {
  Loop loop;
  Timer keepalive(loop);
  keepalive.StartRepeating(absl::Milliseconds(5), [] {});
  REQUIRE_FALSE(loop.RunUntil([] { return false; }, absl::Milliseconds(30)));
}
