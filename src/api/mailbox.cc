// mailbox.cc: Mailbox.
#include "api/mailbox.h"

#include <atomic>

namespace p2proxy::api {

Mailbox::Mailbox(net::Loop& loop) {
  uv_async_init(loop.uv(), async_.get(), [](uv_async_t* a) {
    if (auto* self = static_cast<Mailbox*>(a->data)) self->Drain();
  });
  async_.MarkInitialized();
  async_->data = this;
}

Mailbox::~Mailbox() { Close(); }

bool Mailbox::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;
    queue_.push_back(std::move(fn));
    // uv_async_send under the lock: Close (which closes the handle) takes it too.
    uv_async_send(async_.get());
  }
  return true;
}

void Mailbox::Close() {
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    dropped.swap(queue_);
    async_.Close();
  }
}

void Mailbox::Drain() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(mu_);
    work.swap(queue_);
  }
  for (auto& fn : work) fn();
}

namespace {
std::atomic<bool> g_stack_slot{false};
}  // namespace

bool AcquireStackSlot() { return !g_stack_slot.exchange(true); }

void ReleaseStackSlot() { g_stack_slot = false; }

}  // namespace p2proxy::api
