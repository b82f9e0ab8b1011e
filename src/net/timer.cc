// timer.cc: Timer.
#include "net/timer.h"

#include <algorithm>

namespace p2proxy::net {

uint64_t ToUvMs(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  return static_cast<uint64_t>(absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1))));
}

Timer::Timer(Loop& loop) : loop_(loop) {
  uv_timer_init(loop.uv(), timer_.get());
  timer_.MarkInitialized();
  timer_->data = this;
}

Timer::~Timer() {
  DisarmManual();
  if (destroyed_) *destroyed_ = true;
}

void Timer::ArmManual(uint64_t after_ms) {
  DisarmManual();
  manual_key_ = loop_.AddManualTimer(after_ms, this);
}

void Timer::DisarmManual() {
  if (!manual_key_) return;
  loop_.RemoveManualTimer(*manual_key_);
  manual_key_.reset();
}

void Timer::Start(absl::Duration after, absl::AnyInvocable<void()> cb) {
  cb_ = std::move(cb);
  repeating_ = false;
  if (loop_.manual_time()) {
    ArmManual(ToUvMs(after));
    return;
  }
  uv_timer_start(timer_.get(), &Timer::OnFire, ToUvMs(after), 0);
}

void Timer::StartRepeating(absl::Duration every, absl::AnyInvocable<void()> cb) {
  cb_ = std::move(cb);
  repeating_ = true;
  uint64_t ms = std::max<uint64_t>(1, ToUvMs(every));
  every_ms_ = ms;
  if (loop_.manual_time()) {
    ArmManual(ms);
    return;
  }
  uv_timer_start(timer_.get(), &Timer::OnFire, ms, ms);
}

void Timer::Stop() {
  if (loop_.manual_time()) {
    DisarmManual();
  } else {
    uv_timer_stop(timer_.get());
  }
  cb_ = nullptr;
}

void Timer::OnFire(uv_timer_t* t) {
  auto* self = static_cast<Timer*>(t->data);
  if (self) self->Fire();
}

void Timer::FireManual() {
  manual_key_.reset();
  // As libuv does, a repeating timer is re-armed before its callback runs.
  if (repeating_) manual_key_ = loop_.AddManualTimer(every_ms_, this);
  Fire();
}

void Timer::Fire() {
  Timer* self = this;
  if (!self->cb_) return;
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
