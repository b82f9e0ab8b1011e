// https_session.h: one peer connection to an https resource at the site (DESIGN.md §2 path 1):
// the ClientHello is peeked (its SNI picks the certificate; an unknown name gets an
// unrecognized_name alert), TLS ends here, ALPN picks HTTP/2 or HTTP/1.1, and every request is
// checked against the resource's policy, proxied to the target with the peer's identity
// stamped on it, and audited. The same class serves the resource's plain-HTTP redirect port.
#ifndef P2PROXY_SITE_HTTPS_SESSION_H_
#define P2PROXY_SITE_HTTPS_SESSION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "http/access.h"
#include "http/audit.h"
#include "http/exchange.h"
#include "http/h1_server.h"
#include "http/h2_server.h"
#include "http/redirect.h"
#include "http/reverse_proxy.h"
#include "net/loop.h"
#include "net/stream.h"
#include "net/timer.h"
#include "site/peer_limits.h"
#include "site/site_config.h"
#include "tls/cert_store.h"
#include "tls/client_hello.h"
#include "tls/tls_stream.h"

namespace p2proxy::site {

// HttpsResource is what the sessions of one https resource share.
struct HttpsResource {
  const SiteResource* config = nullptr;
  tls::CertStore certs;
  std::unique_ptr<http::ReverseProxy> proxy;
  http::RedirectRouter redirect;
  http::ServerLimits limits;
  // handshake_timeout bounds the time from accept to a finished TLS handshake.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // peer_limits (not owned; may be null) counts each peer's HTTP/2 streams and window budget.
  PeerLimits* peer_limits = nullptr;
  struct Counters {
    uint64_t sessions = 0;
    uint64_t unknown_sni = 0;   // no certificate for the name: unrecognized_name alert
    uint64_t not_tls = 0;       // the first bytes were not a ClientHello
    uint64_t hello_timeouts = 0;     // no complete ClientHello within handshake_timeout
    uint64_t handshake_timeouts = 0; // ClientHello in, handshake not finished in time
    uint64_t handshakes = 0;         // TLS handshakes finished
    uint64_t handshake_failed = 0;
    uint64_t requests = 0;
    uint64_t requests_denied = 0;
  } counters;
};

// PeerContext is who is on the other end of a session.
struct PeerContext {
  http::Identity identity;
  std::string address;  // overlay address, "100.96.0.5"
  uint16_t port = 0;
};

class HttpsSession final : public net::DeferredDeletable, public net::StreamHandler, public http::Router {
 public:
  enum class Mode { kHttps, kRedirect };
  using DoneFn = absl::AnyInvocable<void(HttpsSession* session)>;

  // HttpsSession takes |conn| (accepted in the overlay, already allowed by CheckConnection).
  // |audit| and |resource| must outlive it. |done| runs once, on a later loop turn, when the
  // session is over; the owner then destroys the session (through Loop::DeferDelete).
  HttpsSession(net::Loop& loop, HttpsResource& resource, http::AuditLog& audit, Mode mode,
               std::unique_ptr<net::Stream> conn, PeerContext peer, DoneFn done);
  ~HttpsSession() override;

  void Start();

  // Revoke ends the session because its peer lost access (Site::Apply): one audit event with
  // |reason|, then the session finishes like any other (done runs on a later turn).
  void Revoke(std::string_view reason);
  // UpdateIdentity replaces who the peer is (its user's roles changed): later requests are
  // checked against, and forward, the new identity.
  void UpdateIdentity(const http::Identity& identity);
  const PeerContext& peer() const { return peer_; }
  bool finished() const { return finished_; }

  // net::StreamHandler, used while the ClientHello is being read.
  void OnData(base::ByteSpan data) override;
  void OnEnd() override;
  void OnError(const absl::Status& status) override;

  // http::Router: each request of the session.
  std::unique_ptr<http::ExchangeHandler> OnRequest(http::Exchange& exchange) override;

 private:
  void OnHello();
  void StartHttp(std::unique_ptr<net::Stream> stream, http::ConnectionInfo info, bool h2);
  void Finish(const char* why);
  void AuditRequest(const http::RequestRecord& record);
  // AuditEnd writes one connection-level event for a session that ended before HTTP.
  void AuditEnd(std::string_view reason);
  // AuditConnectionEvent writes one connection-level event (time: the session's start).
  void AuditConnectionEvent(std::string_view reason, bool allowed = true);
  void SetIdentityHeaders();

  net::Loop& loop_;
  HttpsResource& resource_;
  http::AuditLog& audit_;
  Mode mode_;
  PeerContext peer_;
  std::string peer_text_;   // "100.96.0.5:41000", for logs and audit
  std::string roles_text_;  // the peer's roles, comma-separated
  DoneFn done_;
  std::shared_ptr<bool> alive_;
  std::unique_ptr<net::Stream> conn_;  // until TLS takes it
  // wire_ is the accepted connection itself, whoever owns it by now (conn_, then the TLS
  // stream): Revoke resets it so the peer learns at once.
  net::Stream* wire_ = nullptr;
  std::vector<uint8_t> hello_;         // bytes read while peeking; TLS reads them first
  tls::ClientHelloPeek peek_;
  net::Timer handshake_timer_;  // from Start until the TLS handshake finished
  absl::Time started_;
  std::unique_ptr<tls::TlsStream> tls_;  // while handshaking
  std::string sni_;
  // Declared before h2_, which uses it until its streams are gone.
  std::unique_ptr<PeerH2Admission> h2_admission_;
  std::unique_ptr<http::H1ServerConnection> h1_;
  std::unique_ptr<http::H2ServerConnection> h2_;
  http::ProxyContext context_;
  bool finished_ = false;
  bool end_audited_ = false;  // AuditEnd wrote its one event
};

}  // namespace p2proxy::site

#endif  // P2PROXY_SITE_HTTPS_SESSION_H_
