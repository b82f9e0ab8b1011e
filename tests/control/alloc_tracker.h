// alloc_tracker.h: the largest single operator new request while tracking is on, for tests that
// a reader does not allocate a peer's claimed length up front. alloc_tracker.cc replaces the
// global operator new/delete of the test binary (malloc/free underneath).
#ifndef P2PROXY_TESTS_CONTROL_ALLOC_TRACKER_H_
#define P2PROXY_TESTS_CONTROL_ALLOC_TRACKER_H_

#include <cstddef>

namespace p2proxy::control::testing {

// StartAllocTracking resets the record and turns tracking on (single-threaded tests only).
void StartAllocTracking();
// StopAllocTracking turns it off and returns the largest request seen since the start.
size_t StopAllocTracking();

}  // namespace p2proxy::control::testing

#endif  // P2PROXY_TESTS_CONTROL_ALLOC_TRACKER_H_
