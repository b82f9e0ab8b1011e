// https_session.cc: HttpsSession.
#include "site/https_session.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"

namespace p2proxy::site {
namespace {

// TLS alert 112, unrecognized_name (RFC 6066 §3).
constexpr uint8_t kUnrecognizedName = 112;

}  // namespace

HttpsSession::HttpsSession(net::Loop& loop, HttpsResource& resource, http::AuditLog& audit, Mode mode,
                           std::unique_ptr<net::Stream> conn, PeerContext peer, DoneFn done)
    : loop_(loop), resource_(resource), audit_(audit), mode_(mode), peer_(std::move(peer)),
      done_(std::move(done)), alive_(std::make_shared<bool>(true)), conn_(std::move(conn)),
      handshake_timer_(loop), started_(absl::Now()) {
  wire_ = conn_.get();
  peer_text_ = absl::StrCat(peer_.address, ":", peer_.port);
  SetIdentityHeaders();
  context_.authorize = [this](const http::RequestHead& head) {
    ++resource_.counters.requests;
    http::AccessDecision d = http::CheckRequest(resource_.config->access, peer_.identity, head.method, head.path);
    http::Authorization auth;
    if (d.allowed) {
      auth.target = std::move(d.target);  // the upstream gets the path that was checked
      return auth;
    }
    ++resource_.counters.requests_denied;
    auth.status = d.bad_request ? 400 : 403;
    auth.reason = std::move(d.reason);
    return auth;
  };
  context_.on_request_done = [this](const http::RequestRecord& record) { AuditRequest(record); };
}

HttpsSession::~HttpsSession() { *alive_ = false; }

void HttpsSession::SetIdentityHeaders() {
  roles_text_ = absl::StrJoin(peer_.identity.roles, ",");
  context_.identity_headers.clear();
  if (!peer_.identity.user.empty()) {
    context_.identity_headers.push_back({"x-p2proxy-user", peer_.identity.user});
    context_.identity_headers.push_back({"x-p2proxy-roles", roles_text_});
  }
}

void HttpsSession::UpdateIdentity(const http::Identity& identity) {
  if (identity == peer_.identity) return;
  peer_.identity = identity;
  SetIdentityHeaders();
}

void HttpsSession::Revoke(std::string_view reason) {
  if (finished_) return;
  end_audited_ = true;
  AuditConnectionEvent(reason, false);
  // The peer gets a reset now, not when the session is deleted (its WireGuard peer may be
  // removed by then, and a FIN would never reach it).
  if (wire_ != nullptr) wire_->Reset();
  Finish("revoked");
}

void HttpsSession::Start() {
  ++resource_.counters.sessions;
  if (mode_ == Mode::kRedirect) {
    http::ConnectionInfo info;
    info.peer_address = peer_.address;
    info.peer_port = peer_.port;
    StartHttp(std::move(conn_), std::move(info), false);
    return;
  }
  // One deadline covers the ClientHello and the whole handshake after it: a peer that stalls
  // anywhere before the handshake finished is closed and audited.
  handshake_timer_.Start(resource_.handshake_timeout, [this] {
    const bool hello = tls_ != nullptr;
    ++(hello ? resource_.counters.handshake_timeouts : resource_.counters.hello_timeouts);
    P2P_LOG(kInfo, "site.https.handshake_timeout")
        .Kv("resource", resource_.config->name)
        .Kv("peer", peer_text_)
        .Kv("stage", hello ? "handshake" : "client_hello");
    AuditEnd(hello ? "tls: handshake not finished in time" : "tls: no ClientHello in time");
    Finish(hello ? "TLS handshake timeout" : "no ClientHello in time");
  });
  conn_->SetHandler(this);
}

void HttpsSession::OnData(base::ByteSpan data) {
  if (finished_ || !conn_) return;
  hello_.insert(hello_.end(), data.begin(), data.end());
  switch (peek_.Parse(hello_)) {
    case tls::ClientHelloPeek::Result::kContinue:
      return;
    case tls::ClientHelloPeek::Result::kError:
      ++resource_.counters.not_tls;
      P2P_LOG(kInfo, "site.https.not_tls")
          .Kv("resource", resource_.config->name)
          .Kv("peer", peer_text_)
          .Kv("error", std::string(peek_.error()));
      AuditEnd("tls: not a ClientHello");
      Finish("not a TLS ClientHello");
      return;
    case tls::ClientHelloPeek::Result::kDone:
      OnHello();
      return;
  }
}

void HttpsSession::OnEnd() { Finish("closed before its ClientHello"); }

void HttpsSession::OnError(const absl::Status&) { Finish("failed before its ClientHello"); }

void HttpsSession::OnHello() {
  sni_ = peek_.info().sni;
  std::shared_ptr<const tls::ServerCertificate> cert = resource_.certs.Find(sni_);
  if (!cert) {
    ++resource_.counters.unknown_sni;
    P2P_LOG(kInfo, "site.https.unknown_sni")
        .Kv("resource", resource_.config->name)
        .Kv("peer", peer_text_)
        .Kv("sni", sni_.empty() ? std::string("(none)") : sni_);
    AuditEnd("tls: no certificate for the server name");
    conn_->SetHandler(nullptr);
    // The session ends once the alert has left the queue (closing sends what lwIP holds).
    std::weak_ptr<bool> alive = alive_;
    conn_->Write(tls::AlertRecord(kUnrecognizedName), [this, alive](const absl::Status&) {
      if (!alive.expired()) Finish("unknown server name");
    });
    conn_->Shutdown();
    return;
  }
  conn_->SetHandler(nullptr);
  tls_ = tls::TlsStream::Server(loop_, std::move(conn_), std::move(cert), std::move(hello_));
  hello_.clear();
  std::weak_ptr<bool> alive = alive_;
  tls_->Handshake([this, alive](const absl::Status& status) {
    if (alive.expired() || finished_) return;
    handshake_timer_.Stop();
    if (!status.ok()) {
      ++resource_.counters.handshake_failed;
      P2P_LOG(kInfo, "site.https.handshake_failed")
          .Kv("resource", resource_.config->name)
          .Kv("peer", peer_text_)
          .Kv("error", status.message());
      AuditEnd("tls: handshake failed");
      Finish("TLS handshake failed");
      return;
    }
    ++resource_.counters.handshakes;
    http::ConnectionInfo info;
    info.peer_address = peer_.address;
    info.peer_port = peer_.port;
    info.tls = true;
    info.sni = sni_;
    info.alpn = std::string(tls_->alpn());
    const bool h2 = info.alpn == "h2";
    StartHttp(std::move(tls_), std::move(info), h2);
  });
}

void HttpsSession::StartHttp(std::unique_ptr<net::Stream> stream, http::ConnectionInfo info, bool h2) {
  std::weak_ptr<bool> alive = alive_;
  auto closed = [this, alive] {
    if (alive.expired()) return;
    Finish("closed");
  };
  http::Router& router = mode_ == Mode::kRedirect ? static_cast<http::Router&>(resource_.redirect)
                                                  : static_cast<http::Router&>(*this);
  if (h2) {
    if (resource_.peer_limits != nullptr && !peer_.identity.peer_key.empty()) {
      h2_admission_ = std::make_unique<PeerH2Admission>(*resource_.peer_limits, peer_.identity.peer_key, [this] {
        P2P_LOG(kInfo, "site.peer_limit")
            .Kv("resource", resource_.config->name)
            .Kv("peer", peer_text_)
            .Kv("limit", "max_http2_streams_per_peer");
        AuditConnectionEvent("limit: peer at max_http2_streams_per_peer (stream refused)");
      });
    }
    h2_ = std::make_unique<http::H2ServerConnection>(loop_, std::move(stream), std::move(info), router,
                                                     resource_.limits, std::move(closed), nullptr,
                                                     h2_admission_.get());
    h2_->Start();
  } else {
    h1_ = std::make_unique<http::H1ServerConnection>(loop_, std::move(stream), std::move(info), router,
                                                     resource_.limits, std::move(closed));
    h1_->Start();
  }
}

std::unique_ptr<http::ExchangeHandler> HttpsSession::OnRequest(http::Exchange& exchange) {
  return resource_.proxy->Handle(exchange, context_);
}

void HttpsSession::AuditRequest(const http::RequestRecord& record) {
  http::AuditEvent e;
  e.time = absl::FromUnixMillis(record.start_unix_ms);
  e.kind = "https";
  e.resource = resource_.config->name;
  e.peer_key = peer_.identity.peer_key;
  e.peer = peer_text_;
  e.user = peer_.identity.user;
  e.roles = roles_text_;
  e.method = record.method;
  e.host = record.authority;
  e.path = record.path;
  e.status = record.status;
  e.bytes_in = record.bytes_from_client;
  e.bytes_out = record.bytes_to_client;
  e.duration_ms = static_cast<int64_t>(record.duration_ms);
  e.allowed = record.allowed;
  e.reason = record.error;  // a refusal's reason, or what went wrong upstream
  audit_.Write(e);
}

void HttpsSession::AuditEnd(std::string_view reason) {
  if (end_audited_) return;
  end_audited_ = true;
  AuditConnectionEvent(reason);
}

void HttpsSession::AuditConnectionEvent(std::string_view reason, bool allowed) {
  http::AuditEvent e;
  e.time = started_;
  e.kind = mode_ == Mode::kRedirect ? "http" : "https";
  e.resource = resource_.config->name;
  e.peer_key = peer_.identity.peer_key;
  e.peer = peer_text_;
  e.user = peer_.identity.user;
  e.roles = roles_text_;
  e.host = sni_;
  e.duration_ms = absl::ToInt64Milliseconds(absl::Now() - started_);
  e.allowed = allowed;  // true: the connection was allowed; |reason| says how it ended
  e.reason = reason;
  audit_.Write(e);
}

void HttpsSession::Finish(const char* why) {
  if (finished_) return;
  finished_ = true;
  handshake_timer_.Stop();
  P2P_LOG(kDebug, "site.https.session_end")
      .Kv("resource", resource_.config->name)
      .Kv("peer", peer_text_)
      .Kv("why", why);
  if (conn_) conn_->SetHandler(nullptr);
  std::weak_ptr<bool> alive = alive_;
  loop_.Post([this, alive] {
    if (alive.expired()) return;
    if (done_) done_(this);
  });
}

}  // namespace p2proxy::site
