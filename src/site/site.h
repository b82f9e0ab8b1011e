// site.h: the site role. A userspace WireGuard device carries the overlay into
// a userspace TCP/IP stack (lwIP) that accepts connections for the site's resource addresses;
// each accepted connection is spliced to its target on the LAN, each UDP flow relayed. The site
// listens on no host socket (I1): its WireGuard UDP socket can sit on an ephemeral port and
// only dial out to its peers.
#ifndef P2PROXY_SITE_SITE_H_
#define P2PROXY_SITE_SITE_H_

#include <map>
#include <optional>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "base/clock.h"
#include "http/access.h"
#include "http/audit.h"
#include "net/loop.h"
#include "proxy/splice.h"
#include "proxy/udp_relay.h"
#include "site/https_session.h"
#include "site/in_process.h"
#include "site/peer_limits.h"
#include "site/site_config.h"
#include "stack/netstack.h"
#include "stack/tcp_stream.h"
#include "stack/udp_endpoint.h"
#include "tunnel/uapi_server.h"
#include "tunnel/wg_transport.h"

namespace p2proxy::site {

class Site {
 public:
  struct Options {
    // The UAPI socket (`wg show NAME`) is a local unix socket; off unless asked for.
    bool uapi = false;
    std::string uapi_name = "p2p-site";
    std::string uapi_dir = "/var/run/wireguard";
    size_t max_udp_sessions_per_resource = 1024;
  };
  struct Counters {
    uint64_t tcp_accepted = 0;
    uint64_t tcp_target_failed = 0;  // the target refused or could not be reached
    uint64_t tcp_completed = 0;
    uint64_t tcp_failed = 0;         // ended with an error on either side
    uint64_t bytes_to_targets = 0;
    uint64_t bytes_from_targets = 0;
    uint64_t denied = 0;             // connections or UDP flows refused by access policy
    uint64_t over_peer_limit = 0;    // connections or UDP sessions refused: the peer was at its cap
    uint64_t revoked = 0;            // open connections closed because access was withdrawn
    uint64_t applied = 0;            // configurations applied live (Apply)
  };

  static absl::StatusOr<std::unique_ptr<Site>> Create(net::Loop& loop, base::Clock& clock,
                                                      const SiteConfig& config, const Options& options);
  ~Site();

  tunnel::WgTransport& transport() { return *transport_; }
  stack::NetStack& netstack() { return *stack_; }
  const Counters& counters() const { return counters_; }
  const PeerLimits& peer_limits() const { return *peer_limits_; }
  // audit is the site's audit log (a managed site taps it to send events to the server).
  http::AuditLog& audit() { return *audit_; }
  // in_process: the listeners of the embedding program, for resources whose target is
  // "in-process" (site/in_process.h).
  InProcessTargets& in_process() { return in_process_; }
  size_t active_connections() const { return splices_.size() + dialing_.size() + sessions_.size(); }
  size_t resource_count() const { return resources_.size(); }
  // resources: the resources served now, by name.
  std::vector<const SiteResource*> resources() const {
    std::vector<const SiteResource*> out;
    out.reserve(resources_.size());
    for (const auto& [name, st] : resources_) out.push_back(&st->config);
    return out;
  }

  // ReloadCertificates rereads every https resource's certificate and key files and swaps them
  // in: connections already made keep the certificate they were made with, new ones get the
  // new one. A resource whose files fail to load keeps its old certificate; the error names
  // the resource and file. Resources whose certificate came from memory are left alone.
  absl::Status ReloadCertificates();

  // ApplyResult counts what Apply changed.
  struct ApplyResult {
    size_t peers_added = 0;
    size_t peers_removed = 0;
    size_t peers_updated = 0;      // allowed IPs, endpoint, keepalive, user or roles changed
    size_t resources_added = 0;
    size_t resources_removed = 0;  // a resource whose address, port, kind, target or names
                                   // changed counts as removed and added
    size_t resources_updated = 0;  // access or certificate changed in place
    size_t connections_closed = 0; // open connections whose peer lost the right to them
    size_t punches = 0;            // handshakes sent to a peer's new endpoint (hole punching)
  };

  // Apply makes |next| the running configuration without a restart (SIGHUP in static mode, a
  // snapshot from the server in managed mode). What did not change is not touched: an open
  // connection keeps going unless its resource left or changed shape, or its peer left or no
  // longer passes the resource's access (a revocation: the connection is closed, RST to the
  // peer, and audited with the reason "revoked: ..."; an HTTPS session is checked again on each
  // request anyway). Certificates are swapped in: sessions already made keep theirs.
  //
  // Everything that can fail for a reason in |next| is checked before anything changes (the
  // private key and node address cannot change live; certificates must load), so a refused
  // config leaves the site as it was. Limits and the audit log destination keep their start
  // values (they need a restart).
  absl::StatusOr<ApplyResult> Apply(const SiteConfig& next);

 private:
  // ResourceState is one resource as served now: its config (access and certificate updated in
  // place by Apply) and what serves it. Its lifetime is shared between the site's table and the
  // connections in flight, which must be able to finish (audit, release their slots) after
  // Apply retired the resource: hence shared_ptr.
  struct UdpResource {
    std::unique_ptr<stack::UdpEndpoint> endpoint;
    std::unique_ptr<proxy::UdpRelay> relay;
  };
  struct ResourceState {
    SiteResource config;
    std::vector<std::unique_ptr<stack::TcpListener>> listeners;
    std::unique_ptr<HttpsResource> https;
    std::unique_ptr<UdpResource> udp;  // declared last: ending its sessions audits with config
    bool retired = false;
  };
  using ResourceRef = std::shared_ptr<ResourceState>;
  // SpliceEntry: a spliced TCP connection, with what Apply needs to revoke it.
  struct SpliceEntry {
    std::unique_ptr<proxy::Splice> splice;
    ResourceRef resource;  // null for a WebSocket after its HTTP upgrade (the session was checked)
    std::string peer_key;
  };
  // SessionHolder keeps an HTTPS session's resource alive until the session is deleted
  // (members are destroyed in reverse order: the session first).
  struct SessionHolder final : net::DeferredDeletable {
    ResourceRef resource;
    std::unique_ptr<HttpsSession> session;
  };
  struct Dialing {
    std::unique_ptr<net::Stream> overlay;
    ResourceRef resource;
    std::string peer_key;
  };

  explicit Site(net::Loop& loop, base::Clock& clock)
      : loop_(loop), clock_(clock), alive_(std::make_shared<bool>(true)), in_arena_(kInSlots * kInSlotSize),
        in_batch_(kInSlots) {}
  void QueueInput(base::ByteSpan pkt);
  void InputPending();
  // AddResource starts serving |config| (listeners, certificate, UDP relay).
  absl::Status AddResource(const SiteResource& config);
  // RetireResource stops serving |name|: listeners and UDP go now, its open connections are
  // closed with |reason|; counts closed connections into |closed|.
  void RetireResource(const std::string& name, std::string_view reason, size_t* closed);
  // ApplyPeers makes the device's peers and identities those of |peers|.
  absl::Status ApplyPeers(const std::vector<SitePeer>& peers, ApplyResult* result);
  // CloseIf closes each open connection (dialing, spliced, HTTPS session) for which |verdict|
  // gives a reason, auditing it with that reason; returns how many.
  size_t CloseIf(
      absl::FunctionRef<std::optional<std::string>(const ResourceState*, const std::string& peer_key)> verdict);
  // Recheck closes every open connection whose peer no longer passes its resource's access.
  void Recheck(ApplyResult* result);
  void OnAccept(const ResourceRef& r, std::unique_ptr<net::Stream> conn, const base::IpAddress& peer,
                uint16_t peer_port);
  void OnAcceptHttps(const ResourceRef& r, HttpsSession::Mode mode, std::unique_ptr<net::Stream> conn,
                     const base::IpAddress& peer, uint16_t peer_port);
  // Admit checks the peer against the resource's grant; a refusal is audited and the
  // connection reset on the next turn.
  bool Admit(const SiteResource& r, std::unique_ptr<net::Stream>& conn, const PeerContext& peer);
  // AdmitTcp takes one of the peer's connection slots (PeerLimits); a peer at its cap is
  // refused like Admit refuses (reset next turn), audited once per streak, counted always.
  bool AdmitTcp(const SiteResource& r, std::unique_ptr<net::Stream>& conn, const PeerContext& peer);
  void ResetLater(std::unique_ptr<net::Stream>& conn);
  // IdentityOf: who sent packets from |addr| (null: no peer, or a peer without an entry).
  // Allocates nothing: the UDP path asks it per datagram.
  const http::Identity* IdentityOf(const base::IpAddress& addr) const;
  PeerContext PeerOf(const base::IpAddress& addr, uint16_t port) const;
  // StartSplice joins |a| and |b|, owns the splice until it ends, then runs |done| (optional).
  void StartSplice(std::unique_ptr<net::Stream> a, std::unique_ptr<net::Stream> b, ResourceRef resource,
                   std::string peer_key, proxy::Splice::DoneFn done);
  absl::Status LoadCertificate(HttpsResource& resource);
  void SpliceUpgraded(std::unique_ptr<net::Stream> client, std::vector<uint8_t> client_pending,
                      std::unique_ptr<net::Stream> upstream, std::vector<uint8_t> upstream_pending);
  void AuditConnection(const SiteResource& r, const PeerContext& peer, absl::Time started, uint64_t in,
                       uint64_t out, bool allowed, std::string reason);

  net::Loop& loop_;
  base::Clock& clock_;
  std::shared_ptr<bool> alive_;  // lets callbacks that outlive the site notice
  std::unique_ptr<http::AuditLog> audit_;  // destroyed last: everything below may audit
  InProcessTargets in_process_;
  std::map<const wg::Peer*, http::Identity> identities_;
  std::vector<SitePeer> peers_;  // as configured now
  base::IpAddress node_address_;
  crypto::PublicKey public_key_{};
  size_t max_udp_sessions_per_resource_ = 1024;
  SiteLimits limits_;
  std::unique_ptr<tunnel::WgTransport> transport_;
  std::unique_ptr<stack::NetStack> stack_;
  std::unique_ptr<tunnel::UapiServer> uapi_;
  std::map<std::string, ResourceRef> resources_;  // by name
  std::map<HttpsSession*, std::unique_ptr<SessionHolder>> sessions_;
  // Refused UDP flows (address << 16 | port) whose refusal was audited recently: bounded, the
  // oldest forgotten first.
  static constexpr size_t kUdpDeniedRemembered = 4096;
  RecentSet<uint64_t> udp_denied_seen_{kUdpDeniedRemembered};
  std::unique_ptr<PeerLimits> peer_limits_;
  std::map<proxy::Splice*, SpliceEntry> splices_;
  std::map<uint64_t, Dialing> dialing_;  // accepted, target not yet connected
  uint64_t next_dial_id_ = 0;
  Counters counters_;
  // Packets the device decrypted in the current batch, waiting for InputPending.
  static constexpr size_t kInSlots = 64;
  static constexpr size_t kInSlotSize = 1536;
  std::vector<uint8_t> in_arena_;
  std::vector<base::ByteSpan> in_batch_;
  size_t in_count_ = 0;
};

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_SITE_H_
