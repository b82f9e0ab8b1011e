// handle.h: ownership of libuv handles. A handle lives on the heap and never moves; its owner
// closes it with uv_close and the memory is freed only in the close callback, after libuv has
// finished with it (including cancelled write callbacks, which run before the close callback).
#ifndef P2PROXY_NET_HANDLE_H_
#define P2PROXY_NET_HANDLE_H_

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <utility>

namespace p2proxy::net {

namespace handle_internal {
// kOrphaned marks, in handle->data, a handle whose owner died while the loop's final walk was
// closing it: the walk's close callback (Loop::~Loop) frees it.
inline char kOrphaned;
// Live handle memory, for tests that check nothing is left behind.
inline std::atomic<int64_t> live{0};
inline void* Allocate(size_t size) {
  live.fetch_add(1, std::memory_order_relaxed);
  return std::calloc(1, size);
}
inline void Free(uv_handle_t* h) {
  live.fetch_sub(1, std::memory_order_relaxed);
  std::free(h);
}
}  // namespace handle_internal

// LiveUvHandles counts handle allocations not yet freed (process-wide).
inline int64_t LiveUvHandles() { return handle_internal::live.load(std::memory_order_relaxed); }

// UvHandle<T> owns one heap-allocated libuv handle of type T (uv_tcp_t, uv_udp_t, ...).
// Destroying it (or calling Close) clears handle->data, so callbacks already queued can see
// that their owner is gone, and closes the handle; the memory goes in the close callback.
// libuv handles are plain C structs, so the memory is calloc'd and freed without a type: the
// loop's final walk can free a handle whose owner died during that walk (a TcpStream owned by
// a connect request that the walk cancelled).
template <typename T>
class UvHandle {
 public:
  UvHandle() : h_(static_cast<T*>(handle_internal::Allocate(sizeof(T)))) {}
  ~UvHandle() { Close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& other) noexcept : h_(std::exchange(other.h_, nullptr)), live_(std::exchange(other.live_, false)) {}

  T* get() const { return h_; }
  T* operator->() const { return h_; }
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_); }
  // MarkInitialized records that uv_*_init succeeded, so Close must go through uv_close.
  void MarkInitialized() { live_ = true; }

  // Close starts closing the handle (idempotent). After it, get() is null.
  void Close() {
    if (!h_) return;
    T* h = std::exchange(h_, nullptr);
    auto* uh = reinterpret_cast<uv_handle_t*>(h);
    h->data = nullptr;
    if (!live_) {
      handle_internal::Free(uh);
      return;
    }
    live_ = false;
    if (uv_is_closing(uh)) {
      // Only the loop's final walk closes a handle behind its owner's back; its close
      // callback frees the memory once libuv is done with it.
      h->data = &handle_internal::kOrphaned;
      return;
    }
    uv_close(uh, &handle_internal::Free);
  }

 private:
  T* h_;
  bool live_ = false;
};

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_HANDLE_H_
