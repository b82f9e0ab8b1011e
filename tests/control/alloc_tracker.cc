// alloc_tracker.cc: replaces the global operator new/delete (allowed by the standard; this
// test binary only) to record the largest request while tracking. In its own file so that no
// caller sees the definitions inlined next to the allocations they pair with.
#include "alloc_tracker.h"

#include <cstdlib>
#include <new>

namespace {
bool g_track = false;
size_t g_largest = 0;
}  // namespace

namespace p2proxy::control::testing {

void StartAllocTracking() {
  g_largest = 0;
  g_track = true;
}

size_t StopAllocTracking() {
  g_track = false;
  return g_largest;
}

}  // namespace p2proxy::control::testing

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
