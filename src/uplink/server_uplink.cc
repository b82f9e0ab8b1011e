// server_uplink.cc: ServerUplink.
#include "uplink/server_uplink.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "nat/stream_frame.h"

namespace p2proxy::uplink {

ServerUplink::ServerUplink(net::Loop& loop, tunnel::WgTransport& transport, DialFn dial, ChangedFn changed,
                           Options options)
    : loop_(loop), transport_(transport), dial_(std::move(dial)), changed_(std::move(changed)), options_(options) {
  transport_.SetStreamSend([this](const base::SocketAddress& to, base::ByteSpan datagram) {
    if (stream_ != nullptr && to == nat::StreamEndpoint(0)) stream_->Send(datagram);
  });
}

ServerUplink::~ServerUplink() {
  *alive_ = nullptr;
  transport_.SetStreamSend(nullptr);
}

void ServerUplink::SetServer(const crypto::PublicKey& key, const base::SocketAddress& udp, const base::IpAddress& self) {
  server_key_ = key;
  udp_ = udp;
  self_ = self;
  ApplyRelay();
}

void ServerUplink::ApplyRelay() {
  if (!server_key_) return;
  tunnel::WgTransport::Relay relay;
  relay.self = self_;
  if (stream_ != nullptr) {
    relay.server = nat::StreamEndpoint(0);
    relay.also_from = udp_;
  } else {
    relay.server = udp_;
    // A server on several addresses (listening on 0.0.0.0) may answer from another one than
    // the endpoint it gave us: WireGuard roams the server peer there, and the relay's frames
    // come from there too.
    wg::Peer* peer = transport_.device().FindPeer(*server_key_);
    const base::SocketAddress* ep = peer != nullptr ? peer->endpoint() : nullptr;
    if (ep != nullptr && !nat::IsPseudoEndpoint(*ep) && !(*ep == udp_)) relay.also_from = *ep;
  }
  const auto& current = transport_.relay();
  if (current && current->server == relay.server && current->self == relay.self && current->also_from == relay.also_from) return;
  transport_.SetRelay(relay);
}

void ServerUplink::Tick() {
  if (!server_key_) return;
  wg::Device& dev = transport_.device();
  wg::Peer* peer = dev.FindPeer(*server_key_);
  if (peer == nullptr) return;
  const absl::Time now = absl::Now();
  if (stream_ == nullptr) {
    ApplyRelay();  // follows the server peer's endpoint (also_from)
    if (dialing_ != nullptr || now < next_dial_) return;
    // A handshake went to the server over UDP and no session came of it.
    const absl::Duration since = base::RealClock::Get().Monotonic() - peer->last_sent_initiation();
    if (peer->has_session() || since < options_.udp_silence || since > absl::Seconds(30)) return;
    P2P_LOG(kInfo, "uplink.udp_silent")
        .Kv("server", udp_.ToString())
        .Kv("why", absl::StrCat("no handshake answer over UDP in ", absl::FormatDuration(since)))
        .Kv("next", "WireGuard over TLS");
    Dial();
    return;
  }
  // On TLS: back to UDP once the server answered a probe there (roaming moved the peer).
  const base::SocketAddress* ep = peer->endpoint();
  // Roaming moved the server peer off the stream: the server answered a probe over UDP (from
  // the address it was sent to, or another of a multi-homed server's).
  const bool udp_heard = transport_.relay_counters().udp_while_streamed > udp_heard_mark_;
  if (udp_heard && ep != nullptr && !nat::IsPseudoEndpoint(*ep) && peer->has_session()) {
    ToUdp("the server answered over UDP");
    return;
  }
  if (ep != nullptr && !(*ep == nat::StreamEndpoint(0))) {
    dev.SetEndpoint(peer, nat::StreamEndpoint(0));  // stay on TLS until UDP has answered
  }
  udp_heard_mark_ = transport_.relay_counters().udp_while_streamed;
  if (now >= next_probe_) {
    next_probe_ = now + options_.probe_interval;
    ++counters_.probes;
    dev.InitiateHandshakeVia(peer, udp_);
    transport_.Kick();
  }
}

void ServerUplink::Dial() {
  ++counters_.dials;
  dialing_ = dial_([alive = alive_](absl::StatusOr<std::unique_ptr<tls::TlsStream>> tls) {
    if (ServerUplink* self = *alive) self->OnDialed(std::move(tls));
  });
}

void ServerUplink::OnDialed(absl::StatusOr<std::unique_ptr<tls::TlsStream>> tls) {
  std::unique_ptr<control::DialAttempt> attempt = std::move(dialing_);
  loop_.Post([attempt = std::move(attempt)]() mutable { attempt.reset(); });  // we are inside it
  if (!tls.ok()) {
    ++counters_.dial_failures;
    redial_delay_ = std::clamp(redial_delay_ * 2, options_.redial_min, options_.redial_max);
    next_dial_ = absl::Now() + redial_delay_;
    P2P_LOG(kWarn, "uplink.tls_failed").Kv("error", tls.status().message()).Kv("retry_in", absl::FormatDuration(redial_delay_));
    return;
  }
  redial_delay_ = absl::ZeroDuration();
  ready_ = false;
  const base::SocketAddress from = nat::StreamEndpoint(0);
  stream_ = std::make_unique<control::WgStream>(
      loop_, *std::move(tls),
      [this, from](absl::Span<const base::ByteSpan> messages) {
        rx_.clear();
        for (base::ByteSpan m : messages) rx_.push_back(base::Datagram{m, from});
        transport_.Inject(rx_);
        if (!ready_) CheckReady();
      },
      [this](const absl::Status& why) {
        P2P_LOG(kWarn, "uplink.tls_closed").Kv("reason", why.message());
        // Inside the stream's callback: it goes on a later turn.
        loop_.Post([stream = std::move(stream_)]() mutable { stream.reset(); });
        ToUdp("the TLS connection closed");
        next_dial_ = absl::Now() + options_.redial_min;
      });
  ++counters_.to_tls;
  udp_heard_mark_ = transport_.relay_counters().udp_while_streamed;
  next_probe_ = absl::Now() + options_.probe_interval;
  ApplyRelay();
  wg::Device& dev = transport_.device();
  if (wg::Peer* peer = server_key_ ? dev.FindPeer(*server_key_) : nullptr) {
    dev.SetEndpoint(peer, from);
    dev.InitiateHandshakeVia(peer, from);
  }
  transport_.Kick();
  P2P_LOG(kInfo, "uplink.path").Kv("transport", "tls").Kv("server", udp_.ToString());
}

void ServerUplink::CheckReady() {
  // Ready when the server's WireGuard has a session with us over the stream: only then does
  // the relay know this node at the stream, and relayed handshakes get through.
  wg::Device& dev = transport_.device();
  wg::Peer* peer = server_key_ ? dev.FindPeer(*server_key_) : nullptr;
  if (peer == nullptr || !peer->has_current_keypair() || peer->endpoint() == nullptr ||
      !(*peer->endpoint() == nat::StreamEndpoint(0))) {
    return;
  }
  ready_ = true;
  P2P_LOG(kInfo, "uplink.tls_ready").Kv("server", udp_.ToString());
  if (changed_) changed_(true);
}

void ServerUplink::ToUdp(const char* why) {
  if (stream_ != nullptr) loop_.Post([stream = std::move(stream_)]() mutable { stream.reset(); });
  stream_.reset();
  ++counters_.to_udp;
  ready_ = false;
  next_probe_ = absl::InfiniteFuture();
  ApplyRelay();
  wg::Device& dev = transport_.device();
  if (wg::Peer* peer = server_key_ ? dev.FindPeer(*server_key_) : nullptr) {
    if (peer->endpoint() == nullptr || nat::IsPseudoEndpoint(*peer->endpoint())) dev.SetEndpoint(peer, udp_);
  }
  transport_.Kick();
  P2P_LOG(kInfo, "uplink.path").Kv("transport", "udp").Kv("server", udp_.ToString()).Kv("why", why);
  if (changed_) changed_(false);
}

}  // namespace p2proxy::uplink
