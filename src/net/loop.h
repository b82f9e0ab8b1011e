// loop.h: one libuv loop per thread, with a deferred-delete queue: an object that must die
// inside one of its own callbacks is handed to the loop, which destroys it after the callback
// has returned.
#ifndef P2PROXY_NET_LOOP_H_
#define P2PROXY_NET_LOOP_H_

#include <uv.h>

#include <functional>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "net/handle.h"

namespace p2proxy::net {

// DeferredDeletable is anything the loop may destroy later.
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

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

  // Now is the loop's cached monotonic time, in milliseconds.
  uint64_t NowMs() const { return uv_now(loop_.get()); }
  // Turn counts the loop's polls: callbacks of one poll, and the posted work that runs right
  // after them, see the same value. Writers use it to batch what one turn produces.
  uint64_t Turn() const { return turn_; }

 private:
  void ArmIdle();
  void DrainDeferred();

  std::unique_ptr<uv_loop_t> loop_;
  UvHandle<uv_idle_t> idle_;
  UvHandle<uv_prepare_t> prepare_;  // counts turns; never keeps the loop alive
  uint64_t turn_ = 0;
  std::vector<std::unique_ptr<DeferredDeletable>> to_delete_;
  std::vector<absl::AnyInvocable<void()>> posted_;
  bool idle_active_ = false;
};

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_LOOP_H_
