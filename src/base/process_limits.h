// process_limits.h: resource limits a network daemon sets for itself at start.
#ifndef P2PROXY_BASE_PROCESS_LIMITS_H_
#define P2PROXY_BASE_PROCESS_LIMITS_H_

#include <cstdint>

namespace p2proxy::base {

struct OpenFileLimit {
  uint64_t before = 0;  // the soft limit found at start
  uint64_t after = 0;   // the soft limit now
  uint64_t hard = 0;
};

// RaiseOpenFileLimit lifts the soft limit on open descriptors (RLIMIT_NOFILE) to the hard limit.
// Every proxied connection costs the site a socket to its target and the server one per node,
// and the usual soft default of 1024 would refuse the 1,000th connection with EMFILE while the
// hard limit allows far more (Go and systemd services do the same). Never lowers a limit. Call
// once, early in main; the daemon logs the result. Returns {0, 0, 0} if getrlimit fails.
OpenFileLimit RaiseOpenFileLimit();

}  // namespace p2proxy::base

#endif  // P2PROXY_BASE_PROCESS_LIMITS_H_
