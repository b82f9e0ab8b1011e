// upstream.h: forwarding of raw DNS queries to the machine's original resolvers through c-ares,
// driven by the loop (one uv_poll per c-ares socket, one timer for its deadlines).
#ifndef P2PROXY_DNS_UPSTREAM_H_
#define P2PROXY_DNS_UPSTREAM_H_

#include <ares.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "base/bytes.h"
#include "net/handle.h"
#include "net/loop.h"
#include "net/timer.h"

namespace p2proxy::dns {

struct UpstreamCounters {
  uint64_t sent = 0;
  uint64_t answered = 0;
  uint64_t failed = 0;  // timeout, refused, or no server answered
};

class Upstream {
 public:
  struct Options {
    std::vector<base::SocketAddress> servers;  // tried in order; c-ares rotates on failure
    absl::Duration timeout = absl::Seconds(2);  // per try
    int tries = 2;
  };
  // ResponseCallback gets the raw response (its id is the query's, as the caller sent it) or an
  // error (Unavailable: no server answered in time; Cancelled: the Upstream was destroyed).
  using ResponseCallback = absl::AnyInvocable<void(absl::StatusOr<std::vector<uint8_t>>)>;

  // Create starts a c-ares channel aimed only at |options.servers| (never the machine's
  // resolv.conf, which may point back at us). Fails when there is no server.
  static absl::StatusOr<std::unique_ptr<Upstream>> Create(net::Loop& loop, const Options& options);
  // Destruction cancels every pending query: each callback runs once, with Cancelled.
  ~Upstream();

  // Forward sends |query| (a whole DNS message, at least 12 bytes) upstream. c-ares picks a
  // fresh id on the wire and retries over TCP when the answer is truncated; the response
  // handed back carries the caller's id again. The callback runs on a later turn, exactly once.
  void Forward(base::ByteSpan query, ResponseCallback done);

  const UpstreamCounters& counters() const { return counters_; }
  size_t pending() const { return pending_; }

 private:
  struct Pending;
  explicit Upstream(net::Loop& loop);
  static void OnSocketState(void* data, ares_socket_t fd, int readable, int writable);
  static void OnAnswer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  void Process(ares_socket_t read_fd, ares_socket_t write_fd);
  void ArmTimer();

  net::Loop& loop_;
  ares_channel channel_ = nullptr;
  std::map<ares_socket_t, net::UvHandle<uv_poll_t>> polls_;
  net::Timer timer_;
  UpstreamCounters counters_;
  size_t pending_ = 0;
  bool destroying_ = false;
};

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_UPSTREAM_H_
