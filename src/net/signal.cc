// signal.cc: SignalWatcher.
#include "net/signal.h"

#include "absl/strings/str_cat.h"

namespace p2proxy::net {

SignalWatcher::SignalWatcher(Loop& loop) {
  uv_signal_init(loop.uv(), signal_.get());
  signal_.MarkInitialized();
  signal_->data = this;
  uv_unref(signal_.handle());
}

absl::Status SignalWatcher::Watch(int signum, absl::AnyInvocable<void()> cb) {
  cb_ = std::move(cb);
  int rc = uv_signal_start(signal_.get(), [](uv_signal_t* h, int) {
    auto* self = static_cast<SignalWatcher*>(h->data);
    if (self && self->cb_) self->cb_();
  }, signum);
  if (rc != 0) return absl::InternalError(absl::StrCat("signal ", signum, ": ", uv_strerror(rc)));
  return absl::OkStatus();
}

void SignalWatcher::Stop() {
  if (signal_.get()) uv_signal_stop(signal_.get());
}

}  // namespace p2proxy::net
