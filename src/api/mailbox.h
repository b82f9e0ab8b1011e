// mailbox.h: hands work to a loop from other threads (uv_async_t and a locked queue). The
// public API's objects run their role on a thread of their own and take calls from any thread
// through one of these.
#ifndef P2PROXY_API_MAILBOX_H_
#define P2PROXY_API_MAILBOX_H_

#include <functional>
#include <mutex>
#include <vector>

#include "net/handle.h"
#include "net/loop.h"

namespace p2proxy::api {

class Mailbox {
 public:
  // Create on the loop's thread.
  explicit Mailbox(net::Loop& loop);
  ~Mailbox();
  // Post queues |fn| to run on the loop's thread; false once Close was called (|fn| dropped).
  // Any thread.
  bool Post(std::function<void()> fn);
  // Close stops taking work and releases the async handle (the loop's thread); queued work is
  // dropped.
  void Close();

 private:
  void Drain();
  net::UvHandle<uv_async_t> async_;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
  bool closed_ = false;
};

// One userspace TCP/IP stack per process (lwIP is global): a Client or Site of the public API
// holds the slot from Start until its thread ends. Taken before enrolling, so a second role in
// the same process fails before it spends a token.
bool AcquireStackSlot();
void ReleaseStackSlot();
// StackSlotGuard releases the slot when it goes out of scope.
struct StackSlotGuard {
  StackSlotGuard() = default;
  StackSlotGuard(const StackSlotGuard&) = delete;
  StackSlotGuard& operator=(const StackSlotGuard&) = delete;
  ~StackSlotGuard() { ReleaseStackSlot(); }
};
inline constexpr const char* kStackSlotTaken =
    "a p2proxy Client or Site already runs in this process (one per process: its userspace TCP/IP "
    "stack is process-wide); stop it first, or run the other in a process of its own";

}  // namespace p2proxy::api

#endif  // P2PROXY_API_MAILBOX_H_
