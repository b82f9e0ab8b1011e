// resolver.h: the client's DNS resolver. Private names are answered from the zone table and
// never leave the process (invariant I2); every other name is forwarded to the machine's
// original resolvers through c-ares, with a TTL-honouring cache. Serves UDP and TCP on one
// address (RFC 1035 §4.2, RFC 7766), with truncation for UDP answers that do not fit.
#ifndef P2PROXY_DNS_RESOLVER_H_
#define P2PROXY_DNS_RESOLVER_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "base/address.h"
#include "base/clock.h"
#include "dns/cache.h"
#include "dns/message.h"
#include "dns/upstream.h"
#include "dns/zone.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "net/udp.h"

namespace p2proxy::dns {

struct ResolverCounters {
  uint64_t udp_queries = 0;
  uint64_t tcp_queries = 0;
  uint64_t answered_locally = 0;  // private names (I2)
  uint64_t fast_path = 0;         // of those, UDP answers written by AnswerFast (fast_path.h)
  uint64_t cache_hits = 0;
  uint64_t forwarded = 0;
  uint64_t formerr = 0;           // malformed queries answered FORMERR
  uint64_t notimp = 0;
  uint64_t servfail = 0;          // the upstream failed or sent garbage
  uint64_t truncated = 0;         // UDP answers cut to fit, TC set
  uint64_t dropped = 0;           // shorter than a header, or not a query: no answer at all
  uint64_t tcp_connections = 0;
  uint64_t tcp_refused = 0;       // over max_tcp_connections
  uint64_t tcp_refused_per_source = 0;  // over max_tcp_connections_per_source
  uint64_t tcp_write_paused = 0;  // reading paused: the client left max_tcp_write_queue unread
  uint64_t tcp_idle_closed = 0;   // no complete query nor answer for tcp_idle_timeout
};

// TcpBacklog is what the TCP sessions hold in memory right now, summed over sessions.
struct TcpBacklog {
  size_t num_sessions = 0;
  size_t input_len = 0;   // received, not yet handled (a partial query, or queries held back)
  size_t output_len = 0;  // answers queued in the streams, not yet taken by the kernel
};

class Resolver {
 public:
  struct Options {
    base::SocketAddress listen;                 // UDP and TCP, e.g. 100.96.128.1:53
    std::vector<base::SocketAddress> upstreams;  // empty: private names only, others SERVFAIL
    absl::Duration upstream_timeout = absl::Seconds(2);
    size_t cache_entries = 10000;
    size_t max_tcp_connections = 256;
    // One source address may hold this many of max_tcp_connections; more are closed at once.
    size_t max_tcp_connections_per_source = 16;
    // Idleness counts from the last complete query (or answer), never from a partial one.
    absl::Duration tcp_idle_timeout = absl::Seconds(10);  // RFC 7766 §6.2.3
    size_t max_tcp_pipeline = 32;  // queries in flight per connection before reading pauses
    // Answers a connection's client has not taken yet: at or above this, no further query of
    // that connection is handled and reading pauses until the queue drains. A queue holds at
    // most this plus one answer, plus the max_tcp_pipeline forwarded answers in flight.
    size_t max_tcp_write_queue = 64 * 1024;
  };

  // Create binds UDP and TCP on options.listen (port 0 picks a port, the same for both).
  // Errors name the address and what to do.
  static absl::StatusOr<std::unique_ptr<Resolver>> Create(net::Loop& loop, const base::Clock& clock,
                                                          ZoneTable zones, const Options& options);
  ~Resolver();

  // local_address is where it listens (the UDP socket's address; TCP has the same).
  base::SocketAddress local_address() const { return udp_->local_address(); }
  const ResolverCounters& counters() const { return counters_; }
  const Cache& cache() const { return cache_; }
  // tcp_backlog sums what the TCP sessions buffer (for tests and metrics).
  TcpBacklog tcp_backlog() const;
  // ReplaceZones swaps the private zones (a new config): later queries see the new table.
  void ReplaceZones(ZoneTable zones) { zones_ = std::move(zones); }

  // Reply delivers one response message (without TCP's length prefix).
  using Reply = absl::AnyInvocable<void(std::vector<uint8_t>)>;
  // HandleQuery answers one message from a client; |over_tcp| lifts the UDP size limit.
  // |reply| is called at most once, now or on a later turn; a query dropped without an answer
  // (shorter than a header, a response) destroys it uncalled, which a caller counting its
  // queries in flight must treat as the end of that query. Public so that a userspace-stack
  // transport can feed it too.
  void HandleQuery(base::ByteSpan wire, bool over_tcp, Reply reply);

 private:
  class TcpSession;
  // SourceKey is a client's address without its port (family byte, then 16 address bytes),
  // for max_tcp_connections_per_source.
  using SourceKey = std::array<uint8_t, 17>;
  Resolver(net::Loop& loop, const base::Clock& clock, ZoneTable zones, const Options& options);
  void OnUdp(absl::Span<const base::Datagram> batch);
  void OnTcp(std::unique_ptr<net::TcpStream> stream);
  void EndSession(uint64_t id);
  static void Respond(const Message& response, size_t limit, Reply& reply, ResolverCounters& c);

  net::Loop& loop_;
  Options options_;
  ZoneTable zones_;
  Cache cache_;
  std::unique_ptr<Upstream> upstream_;
  std::unique_ptr<net::UdpSocket> udp_;
  void FlushUdp();
  // Answers ready while the loop reads datagrams wait in |udp_out_| and leave in one
  // SendBatch from |flush_|, a check handle: it runs once the loop's I/O phase is over, so all
  // the recvmmsg batches of one wakeup share one sendmmsg. Fast-path answers live in
  // |udp_slots_| (kMaxUdpSlots slots of kMaxFastAnswerLen, allocated once), the general
  // path's in |udp_owned_| (moving a vector keeps its bytes where the views point).
  static constexpr size_t kMaxUdpSlots = 64;
  bool in_udp_batch_ = false;
  std::vector<uint8_t> udp_slots_;
  size_t num_udp_slots_used_ = 0;
  std::vector<std::vector<uint8_t>> udp_owned_;
  std::vector<base::Datagram> udp_out_;
  net::UvHandle<uv_check_t> flush_;
  bool flush_armed_ = false;
  std::unique_ptr<net::TcpListener> tcp_;
  std::map<uint64_t, std::unique_ptr<TcpSession>> sessions_;
  // Sessions per source address; an entry goes when its count drops to 0, so this holds at
  // most max_tcp_connections entries.
  std::map<SourceKey, size_t> sessions_per_source_;
  uint64_t next_session_ = 1;
  ResolverCounters counters_;
  std::shared_ptr<bool> alive_;  // shared with pending upstream callbacks: false once destroyed
};

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_RESOLVER_H_
