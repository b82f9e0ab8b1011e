// malloc_tune.cc: TuneMallocForThroughput.
#include "base/malloc_tune.h"

#include <malloc.h>

namespace p2proxy::base {

void TuneMallocForThroughput() {
#if defined(__GLIBC__)
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
#endif
}

}  // namespace p2proxy::base
