// signal.h: a POSIX signal delivered on the loop (SIGTERM drains, SIGHUP reloads, ...).
#ifndef P2PROXY_NET_SIGNAL_H_
#define P2PROXY_NET_SIGNAL_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "net/handle.h"
#include "net/loop.h"

namespace p2proxy::net {

class SignalWatcher {
 public:
  explicit SignalWatcher(Loop& loop);
  // Watch calls |cb| on the loop each time |signum| arrives. The watcher does not keep the loop
  // running by itself.
  absl::Status Watch(int signum, absl::AnyInvocable<void()> cb);
  void Stop();

 private:
  UvHandle<uv_signal_t> signal_;
  absl::AnyInvocable<void()> cb_;
};

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_SIGNAL_H_
