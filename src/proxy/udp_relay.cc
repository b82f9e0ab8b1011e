// udp_relay.cc: UdpRelay.
#include "proxy/udp_relay.h"

#include "base/log.h"

namespace p2proxy::proxy {

UdpRelay::UdpRelay(net::Loop& loop, const base::SocketAddress& target, absl::Duration idle_timeout,
                   size_t max_sessions, ReplyFn reply)
    : loop_(loop), target_(target), idle_timeout_(idle_timeout), max_sessions_(max_sessions),
      reply_(std::move(reply)), sweep_timer_(loop) {}

UdpRelay::~UdpRelay() {
  for (const auto& [key, session] : sessions_) ReportEnd(key, *session);
}

void UdpRelay::ReportEnd(const Key& key, const Session& session) {
  if (!session_end_) return;
  SessionStats st;
  st.client = session.client;
  st.client_port = key.second;
  st.bytes_in = session.bytes_in;
  st.bytes_out = session.bytes_out;
  st.started_ms = session.started_ms;
  st.duration_ms = session.last_active_ms - session.started_ms;
  session_end_(st);
}

void UdpRelay::FromClient(base::ByteSpan data, const base::IpAddress& client, uint16_t client_port) {
  const Key key{client.v4(), client_port};
  auto it = sessions_.find(key);
  if (it == sessions_.end()) {
    if (sessions_.size() >= max_sessions_) {
      ++counters_.sessions_refused;
      return;
    }
    if (admit_ && !admit_(client, client_port)) {
      ++counters_.sessions_not_admitted;
      return;
    }
    net::UdpSocket::Options opts;
    opts.batch = 1;
    opts.max_datagram = 16 * 1024;
    opts.rcvbuf = 0;
    opts.sndbuf = 0;
    auto bind_addr = base::SocketAddress::FromIp(target_.family() == AF_INET6 ? "::" : "0.0.0.0", 0);
    auto sock = net::UdpSocket::Bind(
        loop_, *bind_addr,
        [this, key, client](absl::Span<const base::Datagram> batch) {
          auto s = sessions_.find(key);
          for (const auto& d : batch) {
            if (!(d.addr == target_)) {
              ++counters_.foreign_dropped;
              continue;
            }
            if (s != sessions_.end()) {
              s->second->last_active_ms = loop_.NowMs();
              s->second->bytes_out += d.data.size();
            }
            ++counters_.to_client;
            reply_(d.data, client, key.second);
          }
        },
        opts);
    auto session = std::make_unique<Session>();
    session->started_ms = loop_.NowMs();
    session->last_active_ms = session->started_ms;
    session->client = client;
    if (!sock.ok()) {
      P2P_LOG(kWarn, "udp_relay.socket_failed").Kv("error", sock.status().message());
      ReportEnd(key, *session);  // an admitted session ends at once (gives its unit back)
      return;
    }
    session->socket = std::move(*sock);
    it = sessions_.emplace(key, std::move(session)).first;
    ++counters_.sessions_opened;
    if (!sweep_timer_.active()) {
      sweep_timer_.StartRepeating(std::max(idle_timeout_ / 4, absl::Milliseconds(100)), [this] { Sweep(); });
    }
  }
  it->second->last_active_ms = loop_.NowMs();
  it->second->bytes_in += data.size();
  ++counters_.to_target;
  it->second->socket->Send(target_, data);
}

void UdpRelay::Sweep() {
  const uint64_t now = loop_.NowMs();
  const uint64_t idle = static_cast<uint64_t>(absl::ToInt64Milliseconds(idle_timeout_));
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second->last_active_ms >= idle) {
      // The socket's own callback is not running now (we are in a timer), so it can go.
      ReportEnd(it->first, *it->second);
      it = sessions_.erase(it);
      ++counters_.sessions_expired;
    } else {
      ++it;
    }
  }
  if (sessions_.empty()) sweep_timer_.Stop();
}

}  // namespace p2proxy::proxy
