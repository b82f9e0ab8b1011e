// peer.h: everything the device keeps about one peer: its keys, handshake, keypairs, endpoint,
// staged packets, counters and timer deadlines. The device owns peers and runs their logic.
#ifndef P2PROXY_WG_PEER_H_
#define P2PROXY_WG_PEER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/time/time.h"
#include "base/address.h"
#include "base/ip_prefix.h"
#include "wg/cookie.h"
#include "wg/keypair.h"
#include "wg/noise.h"

namespace p2proxy::wg {

// PeerConfig is what an operator says about a peer (wg-quick [Peer], UAPI set, snapshots).
struct PeerConfig {
  crypto::PublicKey public_key{};
  std::optional<crypto::Key> preshared_key;
  std::optional<base::SocketAddress> endpoint;
  uint16_t persistent_keepalive = 0;  // seconds; 0 = off
  std::vector<base::IpPrefix> allowed_ips;
};

struct PeerStats {
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
  absl::Time last_handshake = absl::UnixEpoch();  // wall time; epoch = never
  uint64_t handshakes_completed = 0;
};

class Peer {
 public:
  explicit Peer(const crypto::PublicKey& key) { keys.remote_static = key; cookies.Init(key); }

  const crypto::PublicKey& public_key() const { return keys.remote_static; }
  const base::SocketAddress* endpoint() const { return endpoint_.valid() ? &endpoint_ : nullptr; }
  uint16_t persistent_keepalive() const { return persistent_keepalive_; }
  const PeerStats& stats() const { return stats_; }
  bool has_current_keypair() const { return current_ != nullptr; }
  // has_session: a handshake completed in either role (as responder, the keypair waits for the
  // initiator's first data message before it becomes current).
  bool has_session() const { return current_ != nullptr || next_ != nullptr; }
  int handshake_attempts() const { return handshake_attempts_; }
  // last_sent_initiation: monotonic time of the last handshake initiation sent to the peer
  // (-infinity: none yet).
  absl::Duration last_sent_initiation() const { return last_sent_initiation_; }
  // data_unanswered_since: monotonic time of the first data message sent to the peer since the
  // last authenticated packet received from it (InfiniteDuration: everything sent has been
  // answered). A path that stopped carrying packets shows here seconds before WireGuard's own
  // new-handshake timer (15 s) fires.
  absl::Duration data_unanswered_since() const { return data_unanswered_since_; }
  size_t staged_packets() const { return staged_.size(); }
  const crypto::Key& preshared_key() const { return keys.preshared_key; }

 private:
  friend class Device;
  static constexpr absl::Duration kOff = absl::InfiniteDuration();

  PeerKeys keys;
  Handshake handshake;
  CookieGenerator cookies;
  std::unique_ptr<Keypair> previous_, current_, next_;
  base::SocketAddress endpoint_;
  // shared_sources_: prefixes this peer may also send from although the routing table sends
  // them to another peer (Device::SetSharedSources).
  std::vector<base::IpPrefix> shared_sources_;
  uint16_t persistent_keepalive_ = 0;
  std::deque<std::vector<uint8_t>> staged_;
  PeerStats stats_;

  // Timer deadlines (monotonic); kOff when not armed. See device.cc for what each one does.
  absl::Duration retransmit_handshake_at_ = kOff;
  absl::Duration send_keepalive_at_ = kOff;
  absl::Duration new_handshake_at_ = kOff;
  absl::Duration zero_key_material_at_ = kOff;
  absl::Duration persistent_keepalive_at_ = kOff;
  bool need_another_keepalive_ = false;
  int handshake_attempts_ = 0;
  absl::Duration last_sent_initiation_ = -absl::InfiniteDuration();
  absl::Duration data_unanswered_since_ = kOff;
  bool sent_lastminute_handshake_ = false;
};

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_PEER_H_
