// alloc_tracker.cc: records the largest allocation while tracking. Normally it replaces the
// global operator new/delete (allowed by the standard; this test binary only), in its own file so
// that no caller sees the definitions inlined next to the allocations they pair with. Under
// AddressSanitizer, whose allocator must see every new and delete in pairs, it uses the
// sanitizer's malloc hook instead (which also sees operator new).
#include "alloc_tracker.h"

#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define P2P_ALLOC_TRACKER_HOOK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define P2P_ALLOC_TRACKER_HOOK 1
#endif
#endif
#ifdef P2P_ALLOC_TRACKER_HOOK
// From the sanitizer runtime (sanitizer/allocator_interface.h, which GCC does not install).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void*, size_t),
                                                         void (*free_hook)(const volatile void*));
#endif

namespace {
bool g_track = false;
size_t g_largest = 0;
}  // namespace

namespace p2proxy::control::testing {

#ifdef P2P_ALLOC_TRACKER_HOOK
namespace {
void OnMalloc(const volatile void*, size_t n) {
  if (g_track && n > g_largest) g_largest = n;
}
void OnFree(const volatile void*) {}
}  // namespace
#endif

void StartAllocTracking() {
#ifdef P2P_ALLOC_TRACKER_HOOK
  static const bool installed = __sanitizer_install_malloc_and_free_hooks(OnMalloc, OnFree) != 0;
  (void)installed;
#endif
  g_largest = 0;
  g_track = true;
}

size_t StopAllocTracking() {
  g_track = false;
  return g_largest;
}

}  // namespace p2proxy::control::testing

#ifndef P2P_ALLOC_TRACKER_HOOK
void* operator new(size_t n) {
  if (g_track && n > g_largest) g_largest = n;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
#endif  // !P2P_ALLOC_TRACKER_HOOK
