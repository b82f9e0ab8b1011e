// loop.h: one libuv loop per thread, with a deferred-delete queue: an object that must die
// inside one of its own callbacks is handed to the loop, which destroys it after the callback
// has returned.
#ifndef P2PROXY_NET_LOOP_H_
#define P2PROXY_NET_LOOP_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "net/handle.h"

namespace p2proxy::net {

// DeferredDeletable is anything the loop may destroy later.
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

class Timer;

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* uv() { return loop_.get(); }

  // Run runs until Stop() is called or nothing is left to do.
  void Run();
  // RunOnce runs one iteration, blocking for I/O only if |block|.
  void RunOnce(bool block = true);
  // RunUntil runs until |done()| is true (checked after each iteration) or |limit| passes.
  // Returns whether |done()| became true. Tests use it to wait on an event with a bound.
  bool RunUntil(const std::function<bool()>& done, absl::Duration limit);
  void Stop() { uv_stop(loop_.get()); }

  // DeferDelete destroys |obj| on a later turn of the loop, never during the current callback.
  void DeferDelete(std::unique_ptr<DeferredDeletable> obj);
  // Post runs |fn| on a later turn of the loop (same thread).
  void Post(absl::AnyInvocable<void()> fn);

  // NowMs is the loop's cached monotonic time, in milliseconds (under manual time, the manual
  // counter).
  uint64_t NowMs() const { return manual_ ? manual_now_ms_ : uv_now(loop_.get()); }

  // UseManualTime switches the loop to manual time, for tests: NowMs() then starts at a fixed
  // origin and moves only through AdvanceTime, and every net::Timer of this loop fires only
  // when AdvanceTime passes its deadline (never by itself). Call it before any Timer of this
  // loop is started. I/O, Post and DeferDelete work as before, and RunUntil's |limit| stays
  // real time, so a test still waits on events with a real bound.
  void UseManualTime();
  bool manual_time() const { return manual_; }
  // AdvanceTime moves manual time forward by |d| and runs, in deadline order, the callback of
  // every timer that falls due on the way (a timer re-armed by a callback fires again within
  // the same advance if its new deadline is due). Each callback sees NowMs() equal to its own
  // deadline. Only under manual time; a no-op otherwise.
  void AdvanceTime(absl::Duration d);

  // clock is a base::Clock that reads this loop's time: Monotonic() is NowMs(); Wall() is the
  // real wall clock, or under manual time a fixed origin plus NowMs(). Lives as long as the loop.
  base::Clock& clock() const { return clock_; }
  // Turn counts the loop's polls: callbacks of one poll, and the posted work that runs right
  // after them, see the same value. Writers use it to batch what one turn produces.
  uint64_t Turn() const { return turn_; }

 private:
  friend class Timer;
  class LoopClock final : public base::Clock {
   public:
    explicit LoopClock(const Loop& loop) : loop_(loop) {}
    absl::Duration Monotonic() const override;
    absl::Time Wall() const override;

   private:
    const Loop& loop_;
  };
  // Manual timers, keyed by (deadline, sequence) so equal deadlines fire in start order.
  using ManualKey = std::pair<uint64_t, uint64_t>;
  ManualKey AddManualTimer(uint64_t after_ms, Timer* timer);
  void RemoveManualTimer(const ManualKey& key) { manual_timers_.erase(key); }

  void ArmIdle();
  void DrainDeferred();

  std::unique_ptr<uv_loop_t> loop_;
  UvHandle<uv_idle_t> idle_;
  UvHandle<uv_prepare_t> prepare_;  // counts turns; never keeps the loop alive
  uint64_t turn_ = 0;
  std::vector<std::unique_ptr<DeferredDeletable>> to_delete_;
  std::vector<absl::AnyInvocable<void()>> posted_;
  bool idle_active_ = false;
  bool manual_ = false;
  uint64_t manual_now_ms_ = 0;
  uint64_t manual_seq_ = 0;
  std::map<ManualKey, Timer*> manual_timers_;
  mutable LoopClock clock_{*this};
};

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_LOOP_H_
