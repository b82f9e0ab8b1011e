// Tests for the loop: timers, posted work, deferred deletion, bounded waits.
#include "net/loop.h"

#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <vector>

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

TEST_CASE("under manual time a timer fires only when time is advanced past its deadline") {
  Loop loop;
  loop.UseManualTime();
  const uint64_t start = loop.NowMs();
  std::vector<int> order;
  std::vector<uint64_t> seen_now;
  Timer a(loop), b(loop), c(loop);
  a.Start(absl::Seconds(60), [&] { order.push_back(1); seen_now.push_back(loop.NowMs()); });
  b.Start(absl::Seconds(10), [&] { order.push_back(2); seen_now.push_back(loop.NowMs()); });
  c.Start(absl::Seconds(10), [&] { order.push_back(3); });
  REQUIRE(a.active());
  // Real time passing does nothing: run the loop for a while.
  loop.RunUntil([] { return false; }, absl::Milliseconds(20));
  REQUIRE(order.empty());
  loop.AdvanceTime(absl::Milliseconds(9999));
  REQUIRE(order.empty());
  loop.AdvanceTime(absl::Milliseconds(1));
  REQUIRE(order == std::vector<int>{2, 3});  // equal deadlines fire in start order
  REQUIRE(seen_now == std::vector<uint64_t>{start + 10000});
  REQUIRE_FALSE(b.active());
  loop.AdvanceTime(absl::Seconds(100));
  REQUIRE(order == std::vector<int>{2, 3, 1});
  REQUIRE(seen_now.back() == start + 60000);  // the callback sees its own deadline
  REQUIRE(loop.NowMs() == start + 110000);
  REQUIRE(absl::ToInt64Milliseconds(loop.clock().Monotonic()) == static_cast<int64_t>(loop.NowMs()));
}

TEST_CASE("under manual time a repeating timer fires once per period, and Stop and destruction disarm") {
  Loop loop;
  loop.UseManualTime();
  int fired = 0;
  auto rep = std::make_unique<Timer>(loop);
  rep->StartRepeating(absl::Seconds(1), [&] { ++fired; });
  loop.AdvanceTime(absl::Milliseconds(3500));
  REQUIRE(fired == 3);
  REQUIRE(rep->active());
  rep->Stop();
  loop.AdvanceTime(absl::Seconds(5));
  REQUIRE(fired == 3);
  rep->StartRepeating(absl::Seconds(1), [&] { ++fired; });
  rep.reset();  // destroyed while armed: nothing fires, nothing dangles
  loop.AdvanceTime(absl::Seconds(5));
  REQUIRE(fired == 3);

  // A callback that re-arms its own one-shot timer fires again within the same advance.
  int chain = 0;
  Timer t(loop);
  std::function<void()> again = [&] {
    if (++chain < 4) t.Start(absl::Seconds(1), again);
  };
  t.Start(absl::Seconds(1), again);
  loop.AdvanceTime(absl::Seconds(10));
  REQUIRE(chain == 4);
  // A callback that destroys its timer is safe.
  auto self_destruct = std::make_unique<Timer>(loop);
  bool ran = false;
  self_destruct->Start(absl::Seconds(1), [&] { ran = true; self_destruct.reset(); });
  loop.AdvanceTime(absl::Seconds(1));
  REQUIRE(ran);
  REQUIRE(self_destruct == nullptr);
}
