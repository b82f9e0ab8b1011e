// timer.h: a libuv timer with a callback. The callback may destroy the Timer. Under the loop's
// manual time (Loop::UseManualTime) the timer fires only from Loop::AdvanceTime.
#ifndef P2PROXY_NET_TIMER_H_
#define P2PROXY_NET_TIMER_H_

#include <optional>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "net/handle.h"
#include "net/loop.h"

namespace p2proxy::net {

class Timer {
 public:
  explicit Timer(Loop& loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Start (re)arms the timer to call |cb| once after |after| (rounded up to a millisecond).
  void Start(absl::Duration after, absl::AnyInvocable<void()> cb);
  // StartRepeating calls |cb| every |every| until Stop().
  void StartRepeating(absl::Duration every, absl::AnyInvocable<void()> cb);
  void Stop();
  bool active() const {
    return loop_.manual_time() ? manual_key_.has_value() : uv_is_active(timer_.handle()) != 0;
  }

 private:
  friend class Loop;
  static void OnFire(uv_timer_t* t);
  void Fire();
  void FireManual();  // from Loop::AdvanceTime; the loop already dropped manual_key_'s entry
  void ArmManual(uint64_t after_ms);
  void DisarmManual();

  Loop& loop_;
  UvHandle<uv_timer_t> timer_;
  std::optional<Loop::ManualKey> manual_key_;
  uint64_t every_ms_ = 0;
  absl::AnyInvocable<void()> cb_;
  bool repeating_ = false;
  bool* destroyed_ = nullptr;  // set while cb_ runs, so a callback that deletes us is safe
};

// ToUvMs rounds |d| up to whole milliseconds for libuv, never below 0.
uint64_t ToUvMs(absl::Duration d);

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_TIMER_H_
