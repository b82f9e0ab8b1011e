// wg_over_tls.cc: WgOverTls.
#include "server/wg_over_tls.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "nat/stream_frame.h"

namespace p2proxy::server {

WgOverTls::~WgOverTls() {
  *alive_ = nullptr;
  for (auto& [key, p] : pending_) {
    p.timer->Stop();
    p.tls->Close();
    loop_.DeferDelete(std::move(p.tls));
  }
}

void WgOverTls::Accept(std::unique_ptr<net::TcpStream> tcp, std::vector<uint8_t> peeked) {
  ++counters_.accepted;
  const base::SocketAddress remote = tcp->peer_address();
  if (cert_ == nullptr || pending_.size() >= kMaxPending || streams_.size() >= kMaxStreams) {
    ++counters_.refused_busy;
    static base::LogRateLimiter limiter;
    P2P_LOG_RATELIMITED(limiter, kWarn, "server.wg_tls.refused")
        .Kv("peer", remote.ToString())
        .Kv("reason", cert_ == nullptr ? "no certificate" : "too many connections");
    tcp->Abort();
    return;
  }
  const uint64_t key = next_pending_++;
  Pending& p = pending_[key];
  p.remote = remote;
  tcp->ResumeReading();  // TLS takes over the handler before the loop reads again
  p.tls = tls::TlsStream::Server(loop_, std::move(tcp), cert_, std::move(peeked));
  p.timer = std::make_unique<net::Timer>(loop_);
  p.timer->Start(handshake_timeout, [this, key] {
    ++counters_.handshake_failures;
    P2P_LOG(kInfo, "server.wg_tls.drop").Kv("reason", "no handshake in time");
    DropPending(key);
  });
  p.tls->Handshake([alive = alive_, key](const absl::Status& status) {
    if (WgOverTls* self = *alive) self->OnHandshake(key, status);
  });
}

void WgOverTls::DropPending(uint64_t key) {
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  p.timer->Stop();
  if (p.tls) {
    p.tls->Close();
    loop_.DeferDelete(std::move(p.tls));
  }
  // The timer may be the one running this: it goes on a later turn.
  loop_.Post([timer = std::move(p.timer)]() mutable { timer.reset(); });
}

void WgOverTls::OnHandshake(uint64_t key, const absl::Status& status) {
  auto it = pending_.find(key);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  const base::SocketAddress remote = p.remote;
  if (!status.ok() || p.tls->PeerCertificateDer().empty() || p.tls->PeerCommonName().empty()) {
    // kRequired makes BoringSSL refuse a missing certificate; checked again all the same.
    ++counters_.handshake_failures;
    P2P_LOG(kInfo, "server.wg_tls.drop")
        .Kv("peer", remote.ToString())
        .Kv("reason", status.ok() ? std::string("no node certificate") : std::string(status.message()));
    DropPending(key);
    return;
  }
  std::unique_ptr<tls::TlsStream> tls = std::move(p.tls);
  const std::string node_id = tls->PeerCommonName();
  DropPending(key);
  uint32_t id = next_id_;
  while (id == 0 || streams_.count(id) != 0) ++id;  // at most kMaxStreams taken: ends
  next_id_ = id + 1;
  const base::SocketAddress from = nat::StreamEndpoint(id);
  Open& o = streams_[id];
  o.remote = remote;
  o.node_id = node_id;
  o.stream = std::make_unique<control::WgStream>(
      loop_, std::move(tls),
      [this, from](absl::Span<const base::ByteSpan> messages) {
        counters_.messages_in += messages.size();
        rx_.clear();
        for (base::ByteSpan m : messages) rx_.push_back(base::Datagram{m, from});
        inject_(rx_);
      },
      [this, id](const absl::Status& why) { OnClosed(id, why); });
  ++counters_.opened;
  P2P_LOG(kInfo, "server.wg_tls.open").Kv("peer", remote.ToString()).Kv("node", node_id).Kv("stream", id);
}

void WgOverTls::OnClosed(uint32_t id, const absl::Status& why) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  ++counters_.closed;
  if (why.code() == absl::StatusCode::kInvalidArgument) ++counters_.bad_frames;
  P2P_LOG(kInfo, "server.wg_tls.closed")
      .Kv("peer", it->second.remote.ToString())
      .Kv("node", it->second.node_id)
      .Kv("stream", id)
      .Kv("reason", why.message());
  // Inside the stream's own callback: it is destroyed on a later turn.
  loop_.Post([stream = std::move(it->second.stream)]() mutable { stream.reset(); });
  streams_.erase(it);
}

bool WgOverTls::Send(const base::SocketAddress& to, base::ByteSpan datagram) {
  uint32_t id = 0;
  auto it = nat::StreamIdOf(to, &id) ? streams_.find(id) : streams_.end();
  if (it == streams_.end() || !it->second.stream->Send(datagram)) {
    ++counters_.dropped;
    return false;
  }
  ++counters_.messages_out;
  return true;
}

base::SocketAddress WgOverTls::RemoteOf(const base::SocketAddress& endpoint) const {
  uint32_t id = 0;
  if (!nat::StreamIdOf(endpoint, &id)) return {};
  auto it = streams_.find(id);
  return it == streams_.end() ? base::SocketAddress() : it->second.remote;
}

}  // namespace p2proxy::server
