// node_agent.h: a managed node's side of the control plane (site or client): its state dir,
// enrollment with a one-time token, the session with the server (reconnected with backoff and
// jitter), each snapshot handed to the node to apply and acknowledged, for a site the audit
// events, spooled to disk until the server acknowledges them, and for a client its view of the
// sites' health (coalesced: only the latest report matters).
//
// The state dir (0700) holds, each file 0600:
//   wireguard.key  the node's WireGuard private key (base64), made at enrollment
//   tls.key        the key of its node certificate (PKCS#8 PEM), made at enrollment
//   enrolled.pb    what the server answered at enrollment (wire::Enrolled: node id, address,
//                  node certificate, the server's CA, pin and WireGuard key); no secret
//   snapshot.pb    the last snapshot applied, without the private keys of certificates:
//                  pushed TLS keys live in memory only (invariant I6), so after a restart
//                  without the server, https resources wait for it while tcp/udp ones serve
//   audit/NNNNNNNNNNNNNNNNNNNN.pb  audit batches not yet acknowledged (sites)
// A node that has enrolled starts from these even when the server is down.
#ifndef P2PROXY_CONTROL_NODE_AGENT_H_
#define P2PROXY_CONTROL_NODE_AGENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/backoff.h"
#include "control/channel.h"
#include "control/control.pb.h"
#include "control/dialer.h"
#include "crypto/secret.h"
#include "net/loop.h"
#include "net/timer.h"

namespace p2proxy::control {

class Enrollment;

struct NodeAgentOptions {
  std::string state_dir;
  wire::NodeKind kind = wire::NODE_KIND_SITE;
  // server: "HOST:PORT" of the control channel. Required to enroll; afterwards the one given
  // at enrollment is used unless this overrides it.
  std::string server;
  // token: the one-time enrollment token (`p2proxy-server admin token create`). Used only when
  // the state dir holds no enrollment; a secret, never logged.
  std::string token;
  std::string requested_name;  // empty: the server chooses (a site: its token's name)
  ConnectionOptions connection;
  BackoffOptions backoff;
  // Audit (sites): events are gathered for audit_flush or audit_batch_events, then written as
  // one batch to the spool; at most audit_spool_batches batches wait there. Beyond that new
  // events are dropped, counted and logged (never silently).
  absl::Duration audit_flush = absl::Seconds(1);
  size_t audit_batch_events = 500;
  size_t audit_spool_batches = 2000;
  // Health (clients): the latest report goes out at most once per health_interval.
  absl::Duration health_interval = absl::Seconds(1);
};

// ParseEnrollmentToken splits "p2p1_<64 hex secret>_<64 hex pin>" into its two 32-byte parts.
// InvalidArgument, never repeating the token, otherwise.
absl::Status ParseEnrollmentToken(absl::string_view token, std::string* secret_out, std::string* pin_out);

class NodeAgent {
 public:
  // ApplyFn applies a snapshot to the node, atomically or not at all; its error is sent to the
  // server in the Ack (no secret in it).
  using ApplyFn = absl::AnyInvocable<absl::Status(const wire::Snapshot&)>;
  using OpenCallback = absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<NodeAgent>>)>;

  struct Counters {
    uint64_t sessions = 0;
    uint64_t dial_failures = 0;
    uint64_t snapshots_applied = 0;
    uint64_t snapshots_refused = 0;
    uint64_t audit_events = 0;
    uint64_t audit_batches_sent = 0;
    uint64_t audit_batches_acked = 0;
    uint64_t audit_dropped = 0;  // the spool was full
    uint64_t health_sent = 0;     // Health frames sent
    uint64_t health_invalid = 0;  // reports refused by ReportHealth (ValidateFrame)
  };

  // Open loads the state dir, or enrolls first when it holds no enrollment and a token is
  // given; |done| runs once, on a later turn. Errors say what to do ("not enrolled: give
  // --server and --token", "enrollment refused by the server: the token was used already").
  static void Open(net::Loop& loop, NodeAgentOptions options, OpenCallback done);
  // OpenAndWait is Open that runs |loop| until it is done (daemons, before they start serving),
  // at most |limit|.
  static absl::StatusOr<std::unique_ptr<NodeAgent>> OpenAndWait(net::Loop& loop, NodeAgentOptions options,
                                                                absl::Duration limit = absl::Seconds(60));
  // ReadTokenFile reads a token from the first line of |path| (the --token_file flag).
  static absl::StatusOr<std::string> ReadTokenFile(const std::string& path);
  ~NodeAgent();

  const wire::Enrolled& enrolled() const { return enrolled_; }
  // DialWireGuardTls dials the server's control port as the control channel does (the pin,
  // the CA, this node's certificate) for WireGuard over TLS (ALPN p2proxy-wg/1).
  std::unique_ptr<DialAttempt> DialWireGuardTls(TlsDialCallback done);
  const crypto::Key& wireguard_key() const { return wireguard_key_; }
  // stored_snapshot: the snapshot kept from the previous run (without certificate keys).
  const std::optional<wire::Snapshot>& stored_snapshot() const { return stored_; }
  uint64_t applied_version() const { return applied_version_; }
  bool connected() const { return conn_ != nullptr && session_up_; }
  const Counters& counters() const { return counters_; }

  // Run starts the session with the server and keeps it up; each new snapshot goes to |apply|.
  void Run(ApplyFn apply);
  // ReportEndpoints tells the server the node's local WireGuard endpoints (now and after every
  // reconnect).
  void ReportEndpoints(std::vector<std::string> endpoints);
  // Audit queues one audit event for the server (sites).
  void Audit(wire::AuditEvent event);
  // ReportHealth tells the server the client's view of the sites it probes (a client's site
  // selector calls it whenever its view changes, or periodically). Health is state, not
  // events: only the latest report is kept, sent at once if none went out in the last
  // health_interval, else when that interval is over (intermediate reports are replaced, never
  // queued), and sent again after every reconnect. While not connected it is only kept (debug
  // log). A report that breaks control.proto's rules (more than kMaxHealthSites sites, a site
  // listed twice, a bad id, rtt above kMaxRttMicros) is dropped, counted in health_invalid and
  // logged, and the previous one stays: the server would refuse it and close the session.
  // Only clients may send it; the server closes the session of a site that does.
  void ReportHealth(wire::Health health);

 private:
  class Session;
  friend class Enrollment;
  NodeAgent(net::Loop& loop, NodeAgentOptions options);
  absl::Status Load();
  void Enroll(OpenCallback done);
  void Dial();
  void OnSessionFrame(wire::Frame frame);
  void OnSessionClosed(const absl::Status& reason);
  void ScheduleDial();
  void OnSnapshot(const wire::Snapshot& snapshot);
  void FlushAudit();
  void SendSpool();
  // SendHealth sends the latest health report if it was not sent yet in this session and the
  // interval allows; otherwise arms health_timer_ for when it does.
  void SendHealth();
  std::string StatePath(absl::string_view name) const;

  net::Loop& loop_;
  NodeAgentOptions options_;
  wire::Enrolled enrolled_;
  crypto::Key wireguard_key_;
  std::string tls_key_pem_;  // wiped in the destructor
  std::optional<wire::Snapshot> stored_;
  uint64_t applied_version_ = 0;
  ApplyFn apply_;
  Backoff backoff_;
  std::unique_ptr<DialAttempt> dial_;
  std::unique_ptr<Connection> conn_;
  std::unique_ptr<Session> handler_;
  bool session_up_ = false;
  absl::Time session_started_;
  net::Timer redial_;
  std::vector<std::string> endpoints_;
  // Audit: events not yet in a batch, and the spooled batches (sequence -> file) in order.
  std::vector<wire::AuditEvent> audit_pending_;
  std::deque<uint64_t> spool_;
  uint64_t next_sequence_ = 1;
  uint64_t sent_up_to_ = 0;  // spooled batches up to this sequence went out this session
  net::Timer audit_timer_;
  // Health: the latest report, whether this session has it, and when one last went out.
  std::optional<wire::Health> health_;
  bool health_unsent_ = false;
  std::optional<uint64_t> health_sent_ms_;  // loop time (NowMs) of the last send this session
  net::Timer health_timer_;
  Counters counters_;
  std::shared_ptr<bool> alive_;
};

}  // namespace p2proxy::control

#endif  // P2PROXY_CONTROL_NODE_AGENT_H_
