// loop.cc: the loop wrapper and its deferred work.
#include "net/loop.h"

#include <algorithm>
#include <cstdlib>

#include "absl/time/clock.h"
#include "base/log.h"
#include "net/timer.h"

namespace p2proxy::net {

Loop::Loop() : loop_(new uv_loop_t()) {
  if (uv_loop_init(loop_.get()) != 0) {
    P2P_LOG(kError, "loop.init_failed");
    std::abort();
  }
  uv_idle_init(loop_.get(), idle_.get());
  idle_.MarkInitialized();
  idle_->data = this;
  // The idle handle is only active while deferred work waits; it must not keep Run() alive.
  uv_unref(idle_.handle());
  uv_prepare_init(loop_.get(), prepare_.get());
  prepare_.MarkInitialized();
  prepare_->data = this;
  uv_prepare_start(prepare_.get(), [](uv_prepare_t* h) { ++static_cast<Loop*>(h->data)->turn_; });
  uv_unref(prepare_.handle());
}

Loop::~Loop() {
  DrainDeferred();
  idle_.Close();
  prepare_.Close();
  // Let every handle's close callback run so their memory is freed.
  // A handle whose owner still lives is left to that owner (its memory is freed when the owner
  // closes it); one whose owner dies during this drain is marked orphaned and freed here.
  uv_walk(loop_.get(), [](uv_handle_t* h, void*) {
    if (uv_is_closing(h)) return;
    uv_close(h, [](uv_handle_t* closed) {
      if (closed->data == &handle_internal::kOrphaned) handle_internal::Free(closed);
    });
  }, nullptr);
  uv_run(loop_.get(), UV_RUN_DEFAULT);
  // Close callbacks may have deferred more deletions (and those destructors more): delete them
  // here, batch by batch, rather than in the vector's own destructor, where a destructor that
  // defers again would grow the vector being destroyed. Work posted this late is dropped: the
  // loop it was meant for is gone.
  while (!to_delete_.empty() || !posted_.empty()) {
    std::vector<absl::AnyInvocable<void()>> posted;
    posted.swap(posted_);
    posted.clear();
    std::vector<std::unique_ptr<DeferredDeletable>> batch;
    batch.swap(to_delete_);
    batch.clear();
  }
  if (uv_loop_close(loop_.get()) != 0) {
    P2P_LOG(kWarn, "loop.close_busy");
  }
}

void Loop::Run() { uv_run(loop_.get(), UV_RUN_DEFAULT); }

void Loop::RunOnce(bool block) { uv_run(loop_.get(), block ? UV_RUN_ONCE : UV_RUN_NOWAIT); }

bool Loop::RunUntil(const std::function<bool()>& done, absl::Duration limit) {
  bool expired = false;
  UvHandle<uv_timer_t> timer;
  uv_timer_init(loop_.get(), timer.get());
  timer.MarkInitialized();
  timer->data = &expired;
  uv_timer_start(timer.get(), [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; },
                 static_cast<uint64_t>(absl::ToInt64Milliseconds(limit)), 0);
  while (!done()) {
    if (expired) return false;
    uv_run(loop_.get(), UV_RUN_ONCE);
  }
  return true;
}

namespace {
// Manual time starts here (in ms), far from 0 so code that subtracts timestamps never wraps.
constexpr uint64_t kManualOriginMs = 1'000'000;
// The wall time that manual time's origin stands for.
constexpr int64_t kManualWallOriginUnix = 1'700'000'000;
}  // namespace

void Loop::UseManualTime() {
  manual_ = true;
  manual_now_ms_ = kManualOriginMs;
}

Loop::ManualKey Loop::AddManualTimer(uint64_t after_ms, Timer* timer) {
  ManualKey key{manual_now_ms_ + after_ms, manual_seq_++};
  manual_timers_.emplace(key, timer);
  return key;
}

void Loop::AdvanceTime(absl::Duration d) {
  if (!manual_) return;
  const uint64_t target = manual_now_ms_ + ToUvMs(d);
  while (!manual_timers_.empty() && manual_timers_.begin()->first.first <= target) {
    auto it = manual_timers_.begin();
    Timer* timer = it->second;
    manual_now_ms_ = std::max(manual_now_ms_, it->first.first);
    manual_timers_.erase(it);
    timer->FireManual();
  }
  manual_now_ms_ = target;
}

absl::Duration Loop::LoopClock::Monotonic() const {
  return absl::Milliseconds(static_cast<int64_t>(loop_.NowMs()));
}

absl::Time Loop::LoopClock::Wall() const {
  if (!loop_.manual_) return absl::Now();
  return absl::FromUnixSeconds(kManualWallOriginUnix) +
         absl::Milliseconds(static_cast<int64_t>(loop_.manual_now_ms_ - kManualOriginMs));
}

void Loop::DeferDelete(std::unique_ptr<DeferredDeletable> obj) {
  to_delete_.push_back(std::move(obj));
  ArmIdle();
}

void Loop::Post(absl::AnyInvocable<void()> fn) {
  posted_.push_back(std::move(fn));
  ArmIdle();
}

void Loop::ArmIdle() {
  if (idle_active_ || !idle_.get()) return;
  idle_active_ = true;
  // While work waits the idle handle keeps the loop running and makes its poll not block.
  uv_ref(idle_.handle());
  uv_idle_start(idle_.get(), [](uv_idle_t* h) { static_cast<Loop*>(h->data)->DrainDeferred(); });
}

void Loop::DrainDeferred() {
  // Work posted while draining waits for the next turn, so a callback that re-posts itself
  // cannot starve I/O.
  std::vector<absl::AnyInvocable<void()>> posted;
  posted.swap(posted_);
  for (auto& fn : posted) fn();
  while (!to_delete_.empty()) {
    std::vector<std::unique_ptr<DeferredDeletable>> batch;
    batch.swap(to_delete_);
    batch.clear();  // destructors may defer more deletions; the loop picks those up
  }
  if (posted_.empty() && idle_active_ && idle_.get()) {
    idle_active_ = false;
    uv_idle_stop(idle_.get());
    uv_unref(idle_.handle());
  }
}

}  // namespace p2proxy::net
