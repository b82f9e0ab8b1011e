// timer.cc: Timer.
#include "net/timer.h"

namespace p2proxy::net {

uint64_t ToUvMs(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  return static_cast<uint64_t>(absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1))));
}

Timer::Timer(Loop& loop) {
  uv_timer_init(loop.uv(), timer_.get());
  timer_.MarkInitialized();
  timer_->data = this;
}

Timer::~Timer() {
  if (destroyed_) *destroyed_ = true;
}

void Timer::Start(absl::Duration after, absl::AnyInvocable<void()> cb) {
  cb_ = std::move(cb);
  repeating_ = false;
  uv_timer_start(timer_.get(), &Timer::OnFire, ToUvMs(after), 0);
}

void Timer::StartRepeating(absl::Duration every, absl::AnyInvocable<void()> cb) {
  cb_ = std::move(cb);
  repeating_ = true;
  uint64_t ms = std::max<uint64_t>(1, ToUvMs(every));
  uv_timer_start(timer_.get(), &Timer::OnFire, ms, ms);
}

void Timer::Stop() {
  uv_timer_stop(timer_.get());
  cb_ = nullptr;
}

void Timer::OnFire(uv_timer_t* t) {
  auto* self = static_cast<Timer*>(t->data);
  if (!self || !self->cb_) return;
  // The callback runs from a local, so it survives if it destroys or re-arms the Timer.
  auto cb = std::move(self->cb_);
  bool destroyed = false;
  self->destroyed_ = &destroyed;
  const bool repeating = self->repeating_;
  cb();
  if (destroyed) return;
  self->destroyed_ = nullptr;
  // Put a repeating callback back unless the callback stopped or re-armed the timer.
  if (repeating && self->repeating_ && !self->cb_ && self->active()) self->cb_ = std::move(cb);
}

}  // namespace p2proxy::net
