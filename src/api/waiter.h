// waiter.h: a result that a role's loop thread sets and a caller on another thread waits for,
// at most once, with a deadline. What arrives after the caller gave up is refused (Set returns
// false) so that the loop side can release it (close a descriptor).
#ifndef P2PROXY_API_WAITER_H_
#define P2PROXY_API_WAITER_H_

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "p2proxy/status.h"

namespace p2proxy::api {

template <typename T>
struct Waiter {
  std::mutex mu;
  std::promise<Result<T>> promise;
  bool done = false;
  bool abandoned = false;
  // Set returns false if the caller is gone (the value was not taken).
  bool Set(Result<T> r) {
    std::lock_guard<std::mutex> lock(mu);
    if (done || abandoned) return false;
    done = true;
    promise.set_value(std::move(r));
    return true;
  }
};

template <typename T>
Result<T> Wait(const std::shared_ptr<Waiter<T>>& w, int timeout_ms, const std::string& what) {
  std::future<Result<T>> f = w->promise.get_future();
  if (f.wait_for(std::chrono::milliseconds(timeout_ms)) == std::future_status::timeout) {
    std::lock_guard<std::mutex> lock(w->mu);
    if (!w->done) {
      w->abandoned = true;
      return Status(Code::kDeadlineExceeded, absl::StrCat(what, ": no answer within ", timeout_ms, " ms"));
    }
  }
  return f.get();
}

}  // namespace p2proxy::api

#endif  // P2PROXY_API_WAITER_H_
