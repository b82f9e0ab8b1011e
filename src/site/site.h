// site.h: the site role in static mode. A userspace WireGuard device carries the overlay into
// a userspace TCP/IP stack (lwIP) that accepts connections for the site's resource addresses;
// each accepted connection is spliced to its target on the LAN, each UDP flow relayed. The site
// listens on no host socket (I1): its WireGuard UDP socket can sit on an ephemeral port and
// only dial out to its peers.
#ifndef P2PROXY_SITE_SITE_H_
#define P2PROXY_SITE_SITE_H_

#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "http/access.h"
#include "http/audit.h"
#include "net/loop.h"
#include "proxy/splice.h"
#include "proxy/udp_relay.h"
#include "site/https_session.h"
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
  };

  static absl::StatusOr<std::unique_ptr<Site>> Create(net::Loop& loop, base::Clock& clock,
                                                      const SiteConfig& config, const Options& options);
  ~Site();

  tunnel::WgTransport& transport() { return *transport_; }
  stack::NetStack& netstack() { return *stack_; }
  const Counters& counters() const { return counters_; }
  const PeerLimits& peer_limits() const { return *peer_limits_; }
  size_t active_connections() const { return splices_.size() + dialing_.size() + sessions_.size(); }

  // ReloadCertificates rereads every https resource's certificate and key files and swaps them
  // in: connections already made keep the certificate they were made with, new ones get the
  // new one. A resource whose files fail to load keeps its old certificate; the error names
  // the resource and file.
  absl::Status ReloadCertificates();

 private:
  explicit Site(net::Loop& loop)
      : loop_(loop), alive_(std::make_shared<bool>(true)), in_arena_(kInSlots * kInSlotSize),
        in_batch_(kInSlots) {}
  void QueueInput(base::ByteSpan pkt);
  void InputPending();
  void OnAccept(const SiteResource& r, std::unique_ptr<net::Stream> conn, const base::IpAddress& peer,
                uint16_t peer_port);
  void OnAcceptHttps(size_t index, HttpsSession::Mode mode, std::unique_ptr<net::Stream> conn,
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
  void StartSplice(std::unique_ptr<net::Stream> a, std::unique_ptr<net::Stream> b, proxy::Splice::DoneFn done);
  absl::Status LoadCertificate(HttpsResource& resource);
  void SpliceUpgraded(std::unique_ptr<net::Stream> client, std::vector<uint8_t> client_pending,
                      std::unique_ptr<net::Stream> upstream, std::vector<uint8_t> upstream_pending);
  void AuditConnection(const SiteResource& r, const PeerContext& peer, absl::Time started, uint64_t in,
                       uint64_t out, bool allowed, std::string reason);

  net::Loop& loop_;
  std::shared_ptr<bool> alive_;  // lets callbacks that outlive the site notice
  std::unique_ptr<http::AuditLog> audit_;  // destroyed last: everything below may audit
  std::map<const wg::Peer*, http::Identity> identities_;
  std::unique_ptr<tunnel::WgTransport> transport_;
  std::unique_ptr<stack::NetStack> stack_;
  std::unique_ptr<tunnel::UapiServer> uapi_;
  std::vector<SiteResource> resources_;
  std::vector<std::unique_ptr<stack::TcpListener>> tcp_listeners_;
  struct UdpResource {
    std::unique_ptr<stack::UdpEndpoint> endpoint;
    std::unique_ptr<proxy::UdpRelay> relay;
  };
  std::vector<std::unique_ptr<UdpResource>> udp_;
  std::vector<std::unique_ptr<HttpsResource>> https_;  // one per https resource
  std::map<HttpsSession*, std::unique_ptr<HttpsSession>> sessions_;
  // Refused UDP flows (address << 16 | port) whose refusal was audited recently: bounded, the
  // oldest forgotten first.
  static constexpr size_t kUdpDeniedRemembered = 4096;
  RecentSet<uint64_t> udp_denied_seen_{kUdpDeniedRemembered};
  std::unique_ptr<PeerLimits> peer_limits_;
  std::map<proxy::Splice*, std::unique_ptr<proxy::Splice>> splices_;
  std::map<uint64_t, std::unique_ptr<net::Stream>> dialing_;  // accepted, target not yet connected
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
