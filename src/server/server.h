// server.h: the p2proxy-server role (DESIGN.md §2, §5-§7): the control plane. It holds the
// deployment in its store (SQLite), its identity in a state dir (the internal CA, the TLS key
// of the control listener, its WireGuard key), serves the control channel (enrollment with
// one-time tokens, then mutual-TLS sessions), pushes each node its snapshot whenever what the
// node sees changed, issues and renews the certificates of https resources, and stores the
// sites' audit events. daemons/server only parses flags and runs it.
#ifndef P2PROXY_SERVER_SERVER_H_
#define P2PROXY_SERVER_SERVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "base/clock.h"
#include "control/channel.h"
#include "control/listener.h"
#include "net/loop.h"
#include "net/timer.h"
#include "server/admin.h"
#include "server/snapshots.h"
#include "server/store.h"
#include "server/tunnel.h"
#include "tls/pki.h"

namespace p2proxy::server {

// ServerConfig: where the server keeps its state and how nodes reach it.
struct ServerConfig {
  // state_dir holds ca.pem, ca.key, control.pem, control.key, wireguard.key (keys 0600) and
  // server.db; the directory itself is 0700.
  std::string state_dir = "/var/lib/p2proxy-server";
  // listen: the control channel's TCP address (TLS 1.3, ALPN p2proxy-ctl/1).
  base::SocketAddress listen;
  // public_address: "HOST:PORT" as nodes dial the control channel; printed with every token
  // and in the control certificate's names. Required at init.
  std::string public_address;
  // wireguard_listen: the UDP address of the server's own WireGuard interface (tunnel.h); not
  // valid (unset): the server runs none and learns endpoints only from the control channel.
  base::SocketAddress wireguard_listen;
  // wireguard_endpoint: "HOST:port" where nodes send WireGuard to the server (told in Enrolled
  // and snapshots). Empty: the host of public_address with the port of wireguard_listen.
  std::string wireguard_endpoint;
  // node_range, resource_range: the deployment's ranges, chosen at Init (kept in the database;
  // Start reads them from there).
  base::IpPrefix node_range = base::IpPrefix::Make(base::IpAddress::V4(100, 96, 0, 0), 17);
  base::IpPrefix resource_range = base::IpPrefix::Make(base::IpAddress::V4(100, 96, 128, 0), 18);
  // zones: the clients' private zones; empty: derived from resource domains.
  std::vector<std::string> zones;
  absl::Duration audit_retention = absl::Hours(24 * 90);
  absl::Duration node_certificate_validity = absl::Hours(24 * 365);
  absl::Duration resource_certificate_validity = absl::Hours(24 * 90);
  // Resource certificates are renewed when they have less than this left.
  absl::Duration renew_before = absl::Hours(24 * 30);
  control::ConnectionOptions connection;  // ping interval, frame cap... (tests shorten them)
};

// SameCertificateSerial compares two certificate serials in hex as numbers: the CA writes 32
// digits, TLS reports them without leading zeros.
bool SameCertificateSerial(absl::string_view a, absl::string_view b);

class Server final : public AdminHost {
 public:
  struct Counters {
    uint64_t enrolled = 0;
    uint64_t enroll_refused = 0;
    uint64_t sessions = 0;
    uint64_t sessions_refused = 0;  // no valid, current node certificate
    uint64_t snapshots_sent = 0;
    uint64_t snapshots_acked = 0;
    uint64_t snapshots_refused = 0;
    uint64_t audit_batches = 0;
    uint64_t audit_events = 0;
    uint64_t audit_duplicates = 0;
    uint64_t certificates_issued = 0;
    uint64_t endpoints_learned = 0;  // a node heard over WireGuard from a new address
    uint64_t health_reports = 0;        // Health frames taken from clients
    uint64_t health_unknown_sites = 0;  // their entries naming no live site: ignored
    uint64_t health_refused = 0;        // Health from a site: the session closed
  };

  // Init makes a new state dir: the CA, the control listener's key and certificate (for the
  // host of |config.public_address|), the WireGuard key and an empty database. Refuses a state
  // dir that already holds a CA (it never overwrites keys). Returns a summary for people.
  static absl::StatusOr<std::string> Init(const ServerConfig& config, absl::Time now);

  // Start loads the state dir (refused with a hint to run init when there is none), opens the
  // store and listens. The loop and clock must outlive the server.
  static absl::StatusOr<std::unique_ptr<Server>> Start(net::Loop& loop, base::Clock& clock, ServerConfig config);
  ~Server();

  // Changed (AdminHost) is called after every write that may change what nodes see:
  // certificates are issued or renewed as needed, then each connected node whose snapshot
  // version is behind is sent its new snapshot. Disconnect closes a node's session (after a
  // revocation or removal).
  // RotateServerCertificate issues a new control certificate for the same key (the pin stays).
  absl::Status RotateServerCertificate();
  // SetWgTlsCertificate gives WireGuard over TLS the control certificate |certificate_pem| (with
  // the control key), requiring a node certificate from the CA.
  absl::Status SetWgTlsCertificate(const std::string& certificate_pem);
  // RotateResourceCertificates reissues the certificate of |resource|, or of every https
  // resource when it is empty, and pushes them.
  absl::Status RotateResourceCertificates(const std::string& resource);

  const tls::CertificateAuthority& ca() const { return ca_; }
  // pin_hex: SHA-256 of the control key's SubjectPublicKeyInfo, lower-case hex (in tokens).
  std::string pin_hex() const;
  const ServerConfig& config() const { return config_; }
  base::SocketAddress control_address() const { return listener_->local_address(); }
  // tunnel: the server's WireGuard interface, or null when wireguard_listen is unset.
  const ServerTunnel* tunnel() const { return tunnel_.get(); }

  // AdminHost (admin.h): what `p2proxy-server admin` commands use.
  Store& store() override { return *store_; }
  absl::Time Now() override { return clock_.Wall(); }
  std::string EnrollmentPin() override { return pin_hex(); }
  std::string ControlAddress() override { return config_.public_address; }
  std::string CaCertificatePem() override { return ca_.certificate_pem(); }
  absl::Status RotateCertificates(const CertRotation& what) override;
  void Changed() override;
  void Disconnect(absl::string_view node_id) override;
  std::vector<NodeLiveStatus> LiveStatus() override;
  std::vector<SiteHealthReport> HealthReports() override;
  const Counters& counters() const { return counters_; }

 private:
  class Session;
  friend class Session;
  // SessionState is what the server keeps of a node's control session (for `site list`).
  struct SessionState {
    bool connected = false;
    uint64_t sent_version = 0;   // the last snapshot pushed
    uint64_t acked_version = 0;  // the last snapshot the node applied
    std::string last_error;      // the node's last refusal of a snapshot
    std::string remote;          // the control connection's source
    std::optional<absl::Time> last_seen;
  };

  Server(net::Loop& loop, base::Clock& clock, ServerConfig config, tls::CertificateAuthority ca);
  void OnConnection(std::unique_ptr<control::Connection> conn, control::PeerInfo info);
  void EndSession(Session* session);
  void Enroll(Session& s, const wire::Enroll& enroll);
  void Hello(Session& s, const wire::Hello& hello);
  void Push(Session& s, const Deployment& d);
  // CurrentDeployment: the deployment at the store's current version, read once per version
  // (null if the store failed; logged).
  const Deployment* CurrentDeployment();
  absl::Status EnsureCertificates();
  void OnEndpointReport(Session& s, const wire::EndpointReport& report);
  // SetEndpoint records where node |id| is reached; a site's new endpoint is pushed to the
  // clients that use it (coalesced: one version per loop turn).
  void SetEndpoint(const std::string& id, const std::string& endpoint);
  void OnAuditBatch(Session& s, const wire::AuditBatch& batch);
  // OnHealth replaces client |s|'s health reports with |health|'s entries for live sites.
  void OnHealth(Session& s, const wire::Health& health);
  void Housekeeping();

  net::Loop& loop_;
  base::Clock& clock_;
  ServerConfig config_;
  tls::CertificateAuthority ca_;
  std::unique_ptr<Store> store_;
  SnapshotSettings settings_;
  std::optional<Deployment> deployment_;  // holds certificate keys: the server's own, as in its store
  std::string control_key_pem_;  // wiped in the destructor
  std::unique_ptr<control::ControlListener> listener_;
  std::unique_ptr<ServerTunnel> tunnel_;
  net::Timer endpoint_push_;  // coalesces endpoint changes into one version
  std::map<Session*, std::unique_ptr<Session>> sessions_;
  std::map<std::string, Session*, std::less<>> by_node_;  // sessions past Hello
  std::map<std::string, SessionState, std::less<>> last_status_;  // of nodes seen this run
  // HealthEntry is one client's latest view of one site.
  struct HealthEntry {
    bool up = false;
    uint32_t rtt_micros = 0;
    absl::Time received;
  };
  // health_: client id -> site id -> its latest report, while the client's session lasts
  // (forgotten when it ends, is replaced, or the client is revoked or removed). At most
  // kMaxHealthSites and the number of live sites per client.
  std::map<std::string, std::map<std::string, HealthEntry, std::less<>>, std::less<>> health_;
  // live_sites_: the ids of deployment_'s sites, for checking health reports.
  std::set<std::string, std::less<>> live_sites_;
  net::Timer housekeeping_;
  Counters counters_;
};

}  // namespace p2proxy::server

#endif  // P2PROXY_SERVER_SERVER_H_
