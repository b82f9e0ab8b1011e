// handle.h: ownership of libuv handles. A handle lives on the heap and never moves; its owner
// closes it with uv_close and the memory is freed only in the close callback, after libuv has
// finished with it (including cancelled write callbacks, which run before the close callback).
#ifndef P2PROXY_NET_HANDLE_H_
#define P2PROXY_NET_HANDLE_H_

#include <uv.h>

#include <utility>

namespace p2proxy::net {

// UvHandle<T> owns one heap-allocated libuv handle of type T (uv_tcp_t, uv_udp_t, ...).
// Destroying it (or calling Close) clears handle->data, so callbacks already queued can see
// that their owner is gone, and closes the handle; the memory goes in the close callback.
template <typename T>
class UvHandle {
 public:
  UvHandle() : h_(new T()) {}
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
    h->data = nullptr;
    if (!live_) {
      delete h;
      return;
    }
    live_ = false;
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(h))) return;
    uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* hh) { delete reinterpret_cast<T*>(hh); });
  }

 private:
  T* h_;
  bool live_ = false;
};

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_HANDLE_H_
