// udp_relay.h: relays datagrams between overlay clients and one UDP target. Each client
// (address, port) gets its own host socket, so the target's replies find their way back; a
// session ends after an idle timeout, and the number of sessions is capped (invariant I5).
#ifndef P2PROXY_PROXY_UDP_RELAY_H_
#define P2PROXY_PROXY_UDP_RELAY_H_

#include <cstdint>
#include <map>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "base/ip_prefix.h"
#include "net/loop.h"
#include "net/timer.h"
#include "net/udp.h"

namespace p2proxy::proxy {

class UdpRelay {
 public:
  // ReplyFn sends a datagram from the target back to a client.
  using ReplyFn = absl::AnyInvocable<void(base::ByteSpan data, const base::IpAddress& client,
                                          uint16_t client_port)>;
  struct Counters {
    uint64_t sessions_opened = 0;
    uint64_t sessions_expired = 0;
    uint64_t sessions_refused = 0;  // at the cap
    uint64_t sessions_not_admitted = 0;  // the admission callback said no
    uint64_t to_target = 0;
    uint64_t to_client = 0;
    uint64_t foreign_dropped = 0;   // datagrams to a session socket from other than the target
  };

  // SessionStats describes a session that ended (expired, or the relay went away).
  struct SessionStats {
    base::IpAddress client;
    uint16_t client_port = 0;
    uint64_t bytes_in = 0;   // client -> target, payload bytes
    uint64_t bytes_out = 0;  // target -> client
    uint64_t started_ms = 0;  // loop time
    uint64_t duration_ms = 0;
  };
  using SessionEndFn = absl::AnyInvocable<void(const SessionStats&)>;
  // AdmitFn decides whether a client may open a new session (the site's per-peer cap). A
  // session it admitted always ends with the session-end callback, which gives the unit back.
  using AdmitFn = absl::AnyInvocable<bool(const base::IpAddress& client, uint16_t client_port)>;

  UdpRelay(net::Loop& loop, const base::SocketAddress& target, absl::Duration idle_timeout,
           size_t max_sessions, ReplyFn reply);
  // ~UdpRelay ends every session, reporting each to the session-end callback.
  ~UdpRelay();

  // SetSessionEnd installs a callback run once per session when it ends (for audit).
  void SetSessionEnd(SessionEndFn fn) { session_end_ = std::move(fn); }
  // SetAdmit installs a callback asked before each new session; false drops the datagram.
  void SetAdmit(AdmitFn fn) { admit_ = std::move(fn); }

  // FromClient forwards one datagram from a client to the target.
  void FromClient(base::ByteSpan data, const base::IpAddress& client, uint16_t client_port);
  size_t sessions() const { return sessions_.size(); }
  const Counters& counters() const { return counters_; }

 private:
  struct Session {
    std::unique_ptr<net::UdpSocket> socket;
    uint64_t last_active_ms = 0;
    base::IpAddress client;
    uint64_t started_ms = 0;
    uint64_t bytes_in = 0;
    uint64_t bytes_out = 0;
  };
  using Key = std::pair<uint32_t, uint16_t>;  // client IPv4 (host order), port
  void Sweep();
  void ReportEnd(const Key& key, const Session& session);

  net::Loop& loop_;
  base::SocketAddress target_;
  absl::Duration idle_timeout_;
  size_t max_sessions_;
  ReplyFn reply_;
  SessionEndFn session_end_;
  AdmitFn admit_;
  std::map<Key, std::unique_ptr<Session>> sessions_;
  net::Timer sweep_timer_;
  Counters counters_;
};

}  // namespace p2proxy::proxy

#endif  // P2PROXY_PROXY_UDP_RELAY_H_
