// peer_limits.cc: PeerLimits and PeerH2Admission.
#include "site/peer_limits.h"

namespace p2proxy::site {

size_t PeerLimits::Cap(Kind kind) const {
  switch (kind) {
    case Kind::kTcp: return limits_.max_tcp_connections_per_peer;
    case Kind::kUdp: return limits_.max_udp_sessions_per_peer;
    case Kind::kHttp2Stream: return limits_.max_http2_streams_per_peer;
  }
  return 0;
}

PeerLimits::Admission PeerLimits::TryAcquire(std::string_view peer_key, Kind kind) {
  const size_t k = static_cast<size_t>(kind);
  auto it = peers_.find(std::string(peer_key));
  if (it == peers_.end()) {
    if (Cap(kind) == 0) {
      ++refused_[k];
      return {false, true};
    }
    it = peers_.emplace(std::string(peer_key), Usage{}).first;
  }
  Usage& u = it->second;
  if (u.held[k] >= Cap(kind)) {
    ++refused_[k];
    const bool first = !u.refusing[k];
    u.refusing[k] = true;
    return {false, first};
  }
  ++u.held[k];
  return {true, false};
}

void PeerLimits::Release(std::string_view peer_key, Kind kind) {
  const size_t k = static_cast<size_t>(kind);
  auto it = peers_.find(std::string(peer_key));
  if (it == peers_.end() || it->second.held[k] == 0) return;
  Usage& u = it->second;
  --u.held[k];
  u.refusing[k] = false;  // below the cap again: the next refusal starts a new streak
  for (size_t held : u.held) {
    if (held != 0) return;
  }
  peers_.erase(it);
}

size_t PeerLimits::InUse(std::string_view peer_key, Kind kind) const {
  auto it = peers_.find(std::string(peer_key));
  return it == peers_.end() ? 0 : it->second.held[static_cast<size_t>(kind)];
}

bool PeerLimits::TryReserveWindow(size_t bytes) {
  if (bytes > limits_.http2_window_budget_bytes - window_in_use_) return false;
  window_in_use_ += bytes;
  return true;
}

void PeerLimits::ReleaseWindow(size_t bytes) { window_in_use_ -= std::min(bytes, window_in_use_); }

bool PeerH2Admission::TryOpenStream() {
  const PeerLimits::Admission a = limits_.TryAcquire(peer_key_, PeerLimits::Kind::kHttp2Stream);
  if (!a.ok && a.first_refusal && on_first_refusal_) on_first_refusal_();
  return a.ok;
}

}  // namespace p2proxy::site
