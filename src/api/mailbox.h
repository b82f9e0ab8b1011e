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

}  // namespace p2proxy::api

#endif  // P2PROXY_API_MAILBOX_H_
