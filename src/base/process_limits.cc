// process_limits.cc: RaiseOpenFileLimit.
#include "base/process_limits.h"

#include <sys/resource.h>

namespace p2proxy::base {

OpenFileLimit RaiseOpenFileLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return {};
  OpenFileLimit out{lim.rlim_cur, lim.rlim_cur, lim.rlim_max};
  if (lim.rlim_cur == lim.rlim_max) return out;
  // select() is not used anywhere (libuv uses epoll), so descriptors above 1024 are safe.
  rlimit want = lim;
  want.rlim_cur = lim.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &want) == 0) out.after = want.rlim_cur;
  return out;
}

}  // namespace p2proxy::base
