// role_thread.h: a role (client or site) of the public API on a thread of its own. The thread
// owns a Side (the loop and the role's objects: `net::Loop loop;` and `void Close();`, which
// takes the role down); calls from any thread reach it through a Mailbox. A role with a
// userspace stack (client, site) is one per process: Start takes the process's stack slot
// (mailbox.h) before anything else.
#ifndef P2PROXY_API_ROLE_THREAD_H_
#define P2PROXY_API_ROLE_THREAD_H_

#include <pthread.h>
#include <signal.h>

#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "api/mailbox.h"

namespace p2proxy::api {

template <typename Side>
class RoleThread {
 public:
  explicit RoleThread(bool uses_stack = true) : uses_stack_(uses_stack) {}
  RoleThread(const RoleThread&) = delete;
  RoleThread& operator=(const RoleThread&) = delete;
  ~RoleThread() { Stop(); }

  // Start runs |open| on a new thread with a fresh Side and waits for its verdict. On success
  // the loop runs until Stop; on failure the thread has ended and the slot is free again.
  absl::Status Start(absl::AnyInvocable<absl::Status(Side&)> open) {
    if (uses_stack_ && !AcquireStackSlot()) return absl::FailedPreconditionError(kStackSlotTaken);
    std::promise<absl::Status> started;
    std::future<absl::Status> verdict = started.get_future();
    thread_ = std::thread([this, open = std::move(open), started = std::move(started)]() mutable {
      std::optional<StackSlotGuard> slot;  // released last, after the stack is gone
      if (uses_stack_) slot.emplace();
      // A peer that closes its end makes writes fail with EPIPE, never kill the host program.
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
      Side side;
      Mailbox mailbox(side.loop);
      absl::Status st = open(side);
      if (st.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          mailbox_ = &mailbox;
          side_ = &side;
        }
        started.set_value(absl::OkStatus());
        side.loop.Run();  // until Stop's task stops it
        std::lock_guard<std::mutex> lock(mu_);
        mailbox_ = nullptr;
        side_ = nullptr;
      }
      side.Close();
      mailbox.Close();
      for (int i = 0; i < 8; ++i) side.loop.RunOnce(false);  // close callbacks, deferred deletes
      if (!st.ok()) started.set_value(std::move(st));
    });
    absl::Status st = verdict.get();
    if (!st.ok()) thread_.join();
    return st;
  }

  // Run posts |fn| to the loop's thread; false once stopped.
  bool Run(std::function<void(Side&)> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || mailbox_ == nullptr) return false;
    Side* s = side_;
    return mailbox_->Post([s, fn = std::move(fn)] { fn(*s); });
  }

  // Stop ends the loop and joins the thread (not from the loop's own thread). Idempotent;
  // false if it had stopped already.
  bool Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return false;
      stopped_ = true;
      if (mailbox_ != nullptr) {
        Side* s = side_;
        mailbox_->Post([s] { s->loop.Stop(); });
      }
    }
    if (thread_.joinable()) thread_.join();
    return true;
  }

  bool stopped() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_;
  }

 private:
  const bool uses_stack_;
  std::thread thread_;
  std::mutex mu_;
  Mailbox* mailbox_ = nullptr;  // set while the loop runs
  Side* side_ = nullptr;
  bool stopped_ = false;
};

}  // namespace p2proxy::api

#endif  // P2PROXY_API_ROLE_THREAD_H_
