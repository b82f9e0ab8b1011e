// listener.cc: ControlListener: accept, peek the ClientHello, demux by ALPN, TLS for the
// control protocol, and hand each connection on.
#include "control/listener.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "net/timer.h"
#include "tls/tls_stream.h"

namespace p2proxy::control {

// Pending is one accepted connection until it is routed: first peeking (tcp set), then in the
// TLS handshake (tls set).
class ControlListener::Pending final : public net::DeferredDeletable, public net::StreamHandler {
 public:
  Pending(ControlListener& owner, std::unique_ptr<net::TcpStream> tcp)
      : owner(owner), tcp(std::move(tcp)), peek(owner.options_.max_client_hello_len), timer(owner.loop_) {}

  void OnData(base::ByteSpan data) override {
    received.insert(received.end(), data.begin(), data.end());
    switch (peek.Parse(received)) {
      case tls::ClientHelloPeek::Result::kContinue:
        return;
      case tls::ClientHelloPeek::Result::kError:
        ++owner.counters_.not_tls;
        P2P_LOG(kInfo, "control.listener.drop").Kv("peer", remote.ToString()).Kv("reason", std::string(peek.error()));
        owner.Drop(this);
        return;
      case tls::ClientHelloPeek::Result::kDone:
        tcp->PauseReading();
        owner.Route(this);
        return;
    }
  }
  void OnEnd() override {
    P2P_LOG(kDebug, "control.listener.drop").Kv("peer", remote.ToString()).Kv("reason", "closed before a ClientHello");
    owner.Drop(this);
  }
  void OnError(const absl::Status& status) override {
    P2P_LOG(kDebug, "control.listener.drop").Kv("peer", remote.ToString()).Kv("reason", status.message());
    owner.Drop(this);
  }

  ControlListener& owner;
  base::SocketAddress remote;
  std::unique_ptr<net::TcpStream> tcp;
  tls::ClientHelloPeek peek;
  std::vector<uint8_t> received;
  std::unique_ptr<tls::TlsStream> tls;
  net::Timer timer;
};

ControlListener::ControlListener(net::Loop& loop, ListenerOptions options, ConnectionCallback cb)
    : loop_(loop),
      options_(std::move(options)),
      on_connection_(std::move(cb)),
      alive_(std::make_shared<ControlListener*>(this)) {}

ControlListener::~ControlListener() { *alive_ = nullptr; }

absl::StatusOr<std::shared_ptr<const tls::ServerCertificate>> ControlListener::MakeCertificate(
    const ControlCredentials& credentials) {
  tls::ServerTlsOptions o;
  o.alpn = {std::string(kControlAlpn)};
  o.client_auth = tls::ClientAuth::kOptional;  // optional: a node enrolls without one
  o.client_ca_pem = credentials.client_ca_pem;
  o.min_version_tls13 = true;
  auto cert = tls::ServerCertificate::FromPem(credentials.certificate_chain_pem, credentials.private_key_pem, o);
  if (!cert.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("control: listener: credentials: ", cert.status().message()));
  }
  return cert;
}

absl::StatusOr<std::unique_ptr<ControlListener>> ControlListener::Listen(net::Loop& loop, ListenerOptions options,
                                                                         const ControlCredentials& credentials,
                                                                         ConnectionCallback on_connection) {
  auto cert = MakeCertificate(credentials);
  if (!cert.ok()) return cert.status();
  const base::SocketAddress address = options.address;
  std::unique_ptr<ControlListener> l(new ControlListener(loop, std::move(options), std::move(on_connection)));
  l->cert_ = *std::move(cert);
  ControlListener* raw = l.get();
  auto tcp = net::TcpListener::Listen(loop, address,
                                      [raw](std::unique_ptr<net::TcpStream> s) { raw->OnAccept(std::move(s)); });
  if (!tcp.ok()) return absl::UnavailableError(absl::StrCat("control: listener: ", tcp.status().message()));
  l->tcp_ = *std::move(tcp);
  P2P_LOG(kInfo, "control.listening").Kv("addr", l->local_address().ToString());
  return l;
}

absl::Status ControlListener::SetCredentials(const ControlCredentials& credentials) {
  auto cert = MakeCertificate(credentials);
  if (!cert.ok()) return cert.status();
  cert_ = *std::move(cert);
  return absl::OkStatus();
}

absl::Status ControlListener::RegisterAlpn(std::string alpn, AlpnHook hook) {
  if (alpn.empty() || alpn.size() > 255) {
    return absl::InvalidArgumentError("control: listener: alpn: a protocol id is 1 to 255 bytes");
  }
  if (alpn == kControlAlpn) {
    return absl::InvalidArgumentError(absl::StrCat("control: listener: alpn: ", alpn, " is the control channel's own protocol"));
  }
  if (!hook) return absl::InvalidArgumentError(absl::StrCat("control: listener: alpn: ", alpn, ": no hook"));
  if (hooks_.count(alpn)) {
    return absl::AlreadyExistsError(absl::StrCat("control: listener: alpn: ", alpn, " is registered already"));
  }
  hooks_.emplace(std::move(alpn), std::move(hook));
  return absl::OkStatus();
}

void ControlListener::OnAccept(std::unique_ptr<net::TcpStream> tcp) {
  ++counters_.accepted;
  const base::SocketAddress remote = tcp->peer_address();
  if (pending_.size() >= options_.max_pending) {
    // Under a flood of half-open handshakes new ones wait for the old to finish or time out.
    ++counters_.refused_busy;
    static base::LogRateLimiter limiter;
    P2P_LOG_RATELIMITED(limiter, kWarn, "control.listener.busy")
        .Kv("peer", remote.ToString())
        .Kv("pending", pending_.size());
    tcp->Abort();
    return;
  }
  auto p = std::make_unique<Pending>(*this, std::move(tcp));
  Pending* raw = p.get();
  raw->remote = remote;
  pending_.emplace(raw, std::move(p));
  raw->timer.Start(options_.handshake_timeout, [this, raw] {
    ++counters_.handshake_timeouts;
    P2P_LOG(kInfo, "control.listener.drop")
        .Kv("peer", raw->remote.ToString())
        .Kv("reason", absl::StrCat("no handshake within ", absl::FormatDuration(options_.handshake_timeout)));
    Drop(raw);
  });
  raw->tcp->SetHandler(raw);
}

void ControlListener::Drop(Pending* p) {
  auto it = pending_.find(p);
  if (it == pending_.end()) return;
  std::unique_ptr<Pending> owned = std::move(it->second);
  pending_.erase(it);
  owned->timer.Stop();
  if (owned->tcp) owned->tcp->Close();
  if (owned->tls) owned->tls->Close();
  // We may be inside a callback of its stream or timer.
  loop_.DeferDelete(std::move(owned));
}

void ControlListener::Route(Pending* p) {
  const tls::ClientHelloInfo& hello = p->peek.info();
  // The client's order decides between protocols we both speak.
  for (const std::string& offered : hello.alpn) {
    if (offered == kControlAlpn) {
      p->tcp->ResumeReading();  // TLS takes over the handler before the loop reads again
      p->tls = tls::TlsStream::Server(loop_, std::move(p->tcp), cert_, std::move(p->received));
      // A failed handshake reports on a later turn, possibly after the listener is gone.
      p->tls->Handshake([alive = alive_, p](const absl::Status& status) {
        if (ControlListener* self = *alive) self->OnHandshake(p, status);
      });
      return;
    }
    auto hook = hooks_.find(offered);
    if (hook != hooks_.end()) {
      ++counters_.to_hooks;
      std::unique_ptr<net::TcpStream> tcp = std::move(p->tcp);
      tcp->SetHandler(nullptr);
      std::vector<uint8_t> peeked = std::move(p->received);
      const tls::ClientHelloInfo info = hello;
      Drop(p);
      hook->second(std::move(tcp), std::move(peeked), info);
      return;
    }
  }
  ++counters_.no_protocol;
  P2P_LOG(kInfo, "control.listener.drop").Kv("peer", p->remote.ToString()).Kv("reason", "no known ALPN offered");
  p->tcp->Write(tls::AlertRecord(tls::kAlertNoApplicationProtocol));
  p->tcp->Shutdown();
  // The alert leaves before the close: the stream is deleted on a later turn, and a TcpStream
  // hands its first write of a turn to the kernel at once.
  Drop(p);
}

void ControlListener::OnHandshake(Pending* p, const absl::Status& status) {
  if (!pending_.count(p)) return;
  if (!status.ok()) {
    ++counters_.handshake_failures;
    P2P_LOG(kInfo, "control.listener.drop").Kv("peer", p->remote.ToString()).Kv("reason", status.message());
    Drop(p);
    return;
  }
  PeerInfo info;
  info.remote = p->remote;
  info.has_client_cert = !p->tls->PeerCertificateDer().empty();
  if (info.has_client_cert) {
    info.node_id = p->tls->PeerCommonName();
    info.cert_serial_hex = p->tls->PeerSerialHex();
    if (info.node_id.empty()) {
      // Hello's node_id is checked against the CN: without one there is nothing to check.
      ++counters_.handshake_failures;
      P2P_LOG(kWarn, "control.listener.drop").Kv("peer", p->remote.ToString()).Kv("reason", "node certificate without a CN");
      Drop(p);
      return;
    }
  }
  ConnectionOptions o = options_.connection;
  o.role = Role::kServer;
  o.peer = info.remote.ToString();
  o.node_has_certificate = info.has_client_cert;
  o.node_id = info.node_id;
  if (!o.counters) o.counters = &channel_counters_;
  auto conn = std::make_unique<Connection>(loop_, std::move(p->tls), std::move(o));
  Drop(p);
  ++counters_.control_connections;
  P2P_LOG(kInfo, "control.accepted")
      .Kv("peer", info.remote.ToString())
      .Kv("node_id", info.has_client_cert ? info.node_id : "-")
      .Kv("serial", info.has_client_cert ? info.cert_serial_hex : "-");
  on_connection_(std::move(conn), std::move(info));
}

}  // namespace p2proxy::control
