// device.cc: the WireGuard device: handshake handling, the transport data path and timers.
//
// Timers (per peer; each is a monotonic deadline, off when infinite):
//   retransmit_handshake  REKEY_TIMEOUT + jitter after an initiation, unless a response came:
//                         send it again, up to MAX_TIMER_HANDSHAKES times, then give up and
//                         drop the staged packets.
//   send_keepalive        KEEPALIVE_TIMEOUT after data arrived, if we sent nothing back since:
//                         an empty message tells the peer its data got through.
//   new_handshake         KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter after we sent data, if
//                         nothing came back: the session may be dead, so start a new one.
//   zero_key_material     3 x REJECT_AFTER_TIME after the last session was derived: wipe keys.
//   persistent_keepalive  every N seconds of silence, as configured: keeps NAT mappings open.
#include "wg/device.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "crypto/keys.h"

namespace p2proxy::wg {
namespace {

constexpr size_t kMaxPacket = 65535;

size_t PaddedLength(size_t len, size_t mtu) {
  if (len >= mtu) return len;
  return std::min((len + 15) & ~size_t{15}, mtu);
}

}  // namespace

const char* DropName(Drop d) {
  switch (d) {
    case Drop::kInvalidMessage: return "invalid_message";
    case Drop::kBadMac1: return "bad_mac1";
    case Drop::kBadMac2: return "bad_mac2";
    case Drop::kRateLimited: return "ratelimited";
    case Drop::kRateLimitTableFull: return "ratelimit_table_full";
    case Drop::kHandshakeFailed: return "handshake_failed";
    case Drop::kUnknownPeer: return "unknown_peer";
    case Drop::kReplayedInitiation: return "replayed_initiation";
    case Drop::kInitiationFlood: return "initiation_flood";
    case Drop::kUnknownIndex: return "unknown_index";
    case Drop::kBadCookieReply: return "bad_cookie_reply";
    case Drop::kExpiredKeypair: return "expired_keypair";
    case Drop::kReplay: return "replay";
    case Drop::kDecryptFailed: return "decrypt_failed";
    case Drop::kBadInnerPacket: return "bad_inner_packet";
    case Drop::kSourceNotAllowed: return "source_not_allowed";
    case Drop::kNoRoute: return "no_route";
    case Drop::kNoEndpoint: return "no_endpoint";
    case Drop::kStagedOverflow: return "staged_overflow";
    case Drop::kPacketTooBig: return "packet_too_big";
    case Drop::kNoPrivateKey: return "no_private_key";
    case Drop::kCount: break;
  }
  return "unknown";
}

Device::Device(base::Clock& clock, DeviceOutput& output, size_t mtu)
    : clock_(clock), output_(output), mtu_(mtu) {
  tx_buffer_.resize(kTransportHeaderSize + kMaxPacket + 16 + crypto::kAeadTagSize);
  rx_buffer_.resize(kMaxPacket + 16);
}

Device::~Device() = default;

// ---- configuration -----------------------------------------------------------------------

void Device::SetPrivateKey(const crypto::Key& key) {
  if (local_.has_private_key && local_.private_key.Equals(key)) return;
  local_.Set(key);
  cookie_checker_.Init(local_.public_key);
  if (Peer* self = FindPeer(local_.public_key)) RemovePeer(self->public_key());
  for (auto& p : peers_) {
    p->keys.Precompute(local_);
    ClearSessions(p.get());
  }
}

absl::StatusOr<Peer*> Device::AddPeer(const PeerConfig& config) {
  if (local_.has_private_key && config.public_key == local_.public_key) {
    return absl::InvalidArgumentError("peer: public key is this device's own key");
  }
  Peer* peer = FindPeer(config.public_key);
  if (!peer) {
    peers_.push_back(std::make_unique<Peer>(config.public_key));
    peer = peers_.back().get();
    peers_by_key_[config.public_key] = peer;
    peer->keys.Precompute(local_);
  }
  if (config.preshared_key) SetPresharedKey(peer, *config.preshared_key);
  if (config.endpoint) SetEndpoint(peer, *config.endpoint);
  for (const auto& prefix : config.allowed_ips) allowed_ips_.Insert(prefix, peer);
  if (config.persistent_keepalive != peer->persistent_keepalive_) {
    SetPersistentKeepalive(peer, config.persistent_keepalive);
  }
  return peer;
}

Peer* Device::FindPeer(const crypto::PublicKey& key) const {
  auto it = peers_by_key_.find(key);
  return it == peers_by_key_.end() ? nullptr : it->second;
}

void Device::RemovePeer(const crypto::PublicKey& key) {
  Peer* peer = FindPeer(key);
  if (!peer) return;
  ClearSessions(peer);
  allowed_ips_.RemovePeer(peer);
  peers_by_key_.erase(key);
  peers_.erase(std::remove_if(peers_.begin(), peers_.end(),
                              [&](const std::unique_ptr<Peer>& p) { return p.get() == peer; }),
               peers_.end());
}

void Device::RemoveAllPeers() {
  std::vector<crypto::PublicKey> keys;
  for (auto& p : peers_) keys.push_back(p->public_key());
  for (const auto& k : keys) RemovePeer(k);
}

void Device::SetEndpoint(Peer* peer, const base::SocketAddress& endpoint) { peer->endpoint_ = endpoint; }

void Device::SetPresharedKey(Peer* peer, const crypto::Key& psk) { peer->keys.preshared_key = psk; }

void Device::SetPersistentKeepalive(Peer* peer, uint16_t seconds) {
  peer->persistent_keepalive_ = seconds;
  if (seconds == 0) {
    peer->persistent_keepalive_at_ = Peer::kOff;
    return;
  }
  if (peer->endpoint() && local_.has_private_key) SendKeepalive(peer);  // flushes
}

std::vector<Peer*> Device::peers() const {
  std::vector<Peer*> out;
  for (auto& p : peers_) out.push_back(p.get());
  return out;
}

// ---- indexes and keypairs ----------------------------------------------------------------

uint32_t Device::NewIndex() {
  uint32_t index;
  do {
    if (index_source_) {
      index = index_source_();
    } else {
      RAND_bytes(reinterpret_cast<uint8_t*>(&index), sizeof(index));
    }
  } while (index_.contains(index));
  return index;
}

void Device::FreeIndex(uint32_t index) { index_.erase(index); }

void Device::DropKeypair(std::unique_ptr<Keypair>& slot) {
  if (!slot) return;
  FreeIndex(slot->local_index);
  slot.reset();
}

void Device::ClearSessions(Peer* peer) {
  DropKeypair(peer->previous_);
  DropKeypair(peer->current_);
  DropKeypair(peer->next_);
  if (peer->handshake.state != HandshakeState::kZeroed) FreeIndex(peer->handshake.local_index);
  peer->handshake.Clear();
  peer->staged_.clear();
  peer->retransmit_handshake_at_ = Peer::kOff;
  peer->send_keepalive_at_ = Peer::kOff;
  peer->new_handshake_at_ = Peer::kOff;
  peer->zero_key_material_at_ = Peer::kOff;
  peer->handshake_attempts_ = 0;
}

void Device::InstallKeypair(Peer* peer, std::unique_ptr<Keypair> keypair) {
  // The handshake's index now names the keypair.
  index_[keypair->local_index] = IndexEntry{IndexKind::kKeypair, peer, keypair.get()};
  if (keypair->initiator) {
    // The initiator may use the new keypair at once. An unconfirmed next keypair (from a
    // handshake the peer started) becomes the previous one, so its late packets still decrypt.
    if (peer->next_) {
      DropKeypair(peer->previous_);
      peer->previous_ = std::move(peer->next_);
      DropKeypair(peer->current_);
    } else {
      DropKeypair(peer->previous_);
      peer->previous_ = std::move(peer->current_);
    }
    peer->current_ = std::move(keypair);
  } else {
    // The responder waits for the initiator's first data message before using it.
    DropKeypair(peer->next_);
    DropKeypair(peer->previous_);
    peer->next_ = std::move(keypair);
  }
}

bool Device::ReceivedWithKeypair(Peer* peer, Keypair* kp) {
  if (peer->next_.get() != kp) return false;
  // Confirmation: the initiator used the keypair we answered with.
  DropKeypair(peer->previous_);
  peer->previous_ = std::move(peer->current_);
  peer->current_ = std::move(peer->next_);
  return true;
}

bool Device::KeypairUsableForSending(const Keypair* kp) const {
  return kp && kp->send_counter < kRejectAfterMessages &&
         clock_.Monotonic() - kp->created < kRejectAfterTime;
}

// ---- receive -----------------------------------------------------------------------------

bool Device::UnderLoad() {
  if (force_under_load_) return true;
  return clock_.Monotonic() < under_load_until_;
}

absl::Status Device::SetHandshakeRateLimit(const RateLimitOptions& options) {
  if (absl::Status s = SourceRateLimiter::Validate(options); !s.ok()) return s;
  rate_limiter_ = SourceRateLimiter(options);
  return absl::OkStatus();
}

void Device::ReceiveDatagrams(absl::Span<const Datagram> batch) {
  for (const Datagram& d : batch) {
    if (!local_.has_private_key) {
      Count(Drop::kNoPrivateKey);
      continue;
    }
    switch (Classify(d.data)) {
      case MessageType::kInitiation: HandleInitiation(d); break;
      case MessageType::kResponse: HandleResponse(d); break;
      case MessageType::kCookieReply: HandleCookieReply(d); break;
      case MessageType::kTransport: HandleTransport(d); break;
      case MessageType::kInvalid: Count(Drop::kInvalidMessage); break;
    }
  }
  output_.Flush();
}

bool Device::CheckHandshakeMacs(const Datagram& d, size_t mac1_offset, uint32_t sender) {
  // Cheap first: mac1 proves the sender knows our public key.
  if (!cookie_checker_.CheckMac1(d.data, mac1_offset)) {
    Count(Drop::kBadMac1);
    return false;
  }
  const absl::Duration now = clock_.Monotonic();
  if (now - load_window_start_ >= absl::Seconds(1)) {
    load_window_start_ = now;
    load_window_count_ = 0;
  }
  if (++load_window_count_ > kUnderLoadHandshakesPerSecond) under_load_until_ = now + kUnderLoadAfterTime;
  if (!UnderLoad()) return true;
  if (!cookie_checker_.CheckMac2(d.data, mac1_offset, d.addr, now)) {
    CookieReply reply;
    cookie_checker_.CreateReply(d.data, mac1_offset, sender, d.addr, now, &reply);
    uint8_t buf[kCookieReplySize];
    SerializeCookieReply(reply, buf);
    output_.SendDatagram(d.addr, buf);
    ++counters_.cookie_replies_sent;
    Count(Drop::kBadMac2);
    return false;
  }
  // The cookie proves the sender receives at its address, not that it is gentle: each source
  // still gets only its share of the Diffie-Hellman work that follows.
  switch (rate_limiter_.Allow(d.addr, now)) {
    case SourceRateLimiter::Verdict::kAllowed: return true;
    case SourceRateLimiter::Verdict::kOverRate: Count(Drop::kRateLimited); return false;
    case SourceRateLimiter::Verdict::kTableFull: Count(Drop::kRateLimitTableFull); return false;
  }
  return false;
}

void Device::HandleInitiation(const Datagram& d) {
  Initiation msg;
  if (!ParseInitiation(d.data, &msg)) return Count(Drop::kInvalidMessage);
  if (!CheckHandshakeMacs(d, kInitiationMac1Offset, msg.sender)) return;
  ConsumedInitiation st;
  if (!ConsumeInitiationStatic(local_, msg, &st)) return Count(Drop::kHandshakeFailed);
  Peer* peer = FindPeer(st.remote_static);
  if (!peer) return Count(Drop::kUnknownPeer);
  if (!ConsumeInitiationFinish(peer->keys, msg, &st)) return Count(Drop::kHandshakeFailed);
  // Replay: the timestamp must move forward. Flood: not more often than the interval.
  if (!crypto::Tai64nAfter(st.timestamp, peer->handshake.latest_timestamp)) {
    return Count(Drop::kReplayedInitiation);
  }
  const absl::Duration now = clock_.Monotonic();
  if (now - peer->handshake.last_initiation_consumption < kMinInitiationInterval) {
    return Count(Drop::kInitiationFlood);
  }
  Handshake& hs = peer->handshake;
  if (hs.state != HandshakeState::kZeroed) FreeIndex(hs.local_index);
  hs.Clear();
  hs.latest_timestamp = st.timestamp;
  hs.last_initiation_consumption = now;
  hs.remote_ephemeral = st.remote_ephemeral;
  hs.chaining_key = st.chaining_key;
  hs.hash = st.hash;
  hs.remote_index = msg.sender;
  hs.state = HandshakeState::kConsumedInitiation;

  UpdateEndpoint(peer, d.addr);
  peer->stats_.rx_bytes += d.data.size();
  OnAnyAuthenticatedPacketReceived(peer);
  OnAnyAuthenticatedPacketTraversal(peer);

  // Answer at once.
  const uint32_t index = NewIndex();
  Response resp;
  if (!CreateResponse(peer->keys, index, &hs, &resp,
                      ephemeral_for_testing_ ? &*ephemeral_for_testing_ : nullptr)) {
    hs.Clear();
    return Count(Drop::kHandshakeFailed);
  }
  index_[index] = IndexEntry{IndexKind::kHandshake, peer, nullptr};
  uint8_t buf[kResponseSize];
  SerializeResponse(resp, buf);
  SendHandshakeMessage(peer, buf, kResponseMac1Offset);
  ++counters_.responses_sent;
  crypto::Key send, recv;
  const uint32_t remote = hs.remote_index;
  DeriveTransportKeys(&hs, /*initiator=*/false, &send, &recv);
  InstallKeypair(peer, std::make_unique<Keypair>(send, recv, false, index, remote, now));
  OnSessionDerived(peer);
}

void Device::HandleResponse(const Datagram& d) {
  Response msg;
  if (!ParseResponse(d.data, &msg)) return Count(Drop::kInvalidMessage);
  if (!CheckHandshakeMacs(d, kResponseMac1Offset, msg.sender)) return;
  auto it = index_.find(msg.receiver);
  if (it == index_.end() || it->second.kind != IndexKind::kHandshake) return Count(Drop::kUnknownIndex);
  Peer* peer = it->second.peer;
  if (!ConsumeResponse(local_, peer->keys, msg, &peer->handshake)) return Count(Drop::kHandshakeFailed);
  const absl::Duration now = clock_.Monotonic();
  crypto::Key send, recv;
  const uint32_t local = peer->handshake.local_index, remote = peer->handshake.remote_index;
  DeriveTransportKeys(&peer->handshake, /*initiator=*/true, &send, &recv);
  InstallKeypair(peer, std::make_unique<Keypair>(send, recv, true, local, remote, now));
  UpdateEndpoint(peer, d.addr);
  peer->stats_.rx_bytes += d.data.size();
  OnAnyAuthenticatedPacketReceived(peer);
  OnAnyAuthenticatedPacketTraversal(peer);
  OnHandshakeComplete(peer);
  OnSessionDerived(peer);
  // Confirm the session to the responder: staged data, or a keepalive if there is none.
  if (peer->staged_.empty()) {
    QueueKeepalive(peer);
  } else {
    SendStaged(peer);
  }
}

void Device::HandleCookieReply(const Datagram& d) {
  CookieReply msg;
  if (!ParseCookieReply(d.data, &msg)) return Count(Drop::kInvalidMessage);
  auto it = index_.find(msg.receiver);
  if (it == index_.end()) return Count(Drop::kUnknownIndex);
  if (!it->second.peer->cookies.ConsumeReply(msg, clock_.Monotonic())) Count(Drop::kBadCookieReply);
  // The retransmit timer sends the next initiation, now with mac2.
}

void Device::HandleTransport(const Datagram& d) {
  TransportHeader h;
  if (!ParseTransportHeader(d.data, &h)) return Count(Drop::kInvalidMessage);
  auto it = index_.find(h.receiver);
  if (it == index_.end() || it->second.kind != IndexKind::kKeypair) return Count(Drop::kUnknownIndex);
  Peer* peer = it->second.peer;
  Keypair* kp = it->second.keypair;
  const absl::Duration now = clock_.Monotonic();
  if (now - kp->created >= kRejectAfterTime) return Count(Drop::kExpiredKeypair);
  // The replay check is cheap; do it before decrypting, and commit only after.
  if (kp->replay.Check(h.counter) != ReplayWindow::Verdict::kOk) return Count(Drop::kReplay);
  const base::ByteSpan ciphertext = d.data.subspan(kTransportHeaderSize);
  const size_t plain_len = ciphertext.size() - crypto::kAeadTagSize;
  if (!kp->receiver.Open(h.counter, ciphertext, {}, rx_buffer_.data())) return Count(Drop::kDecryptFailed);
  if (kp->replay.Commit(h.counter) != ReplayWindow::Verdict::kOk) return Count(Drop::kReplay);

  if (ReceivedWithKeypair(peer, kp)) {
    OnHandshakeComplete(peer);
    SendStaged(peer);
  }
  UpdateEndpoint(peer, d.addr);
  peer->stats_.rx_bytes += d.data.size();
  OnAnyAuthenticatedPacketReceived(peer);
  OnAnyAuthenticatedPacketTraversal(peer);

  // Near the end of the initiator's session, start the next one before it must be rejected.
  if (peer->current_ && peer->current_->initiator && !peer->sent_lastminute_handshake_ &&
      now - peer->current_->created >= kRejectAfterTime - kKeepaliveTimeout - kRekeyTimeout) {
    peer->sent_lastminute_handshake_ = true;
    SendInitiation(peer, false);
  }

  if (plain_len == 0) {
    ++counters_.keepalives_received;
    return;
  }
  OnDataReceived(peer);

  // The inner packet: a well-formed IP header whose length fits, from an allowed source.
  const uint8_t* pkt = rx_buffer_.data();
  size_t len = 0;
  const uint8_t* src = nullptr;
  size_t src_len = 0;
  const int version = pkt[0] >> 4;
  if (version == 4 && plain_len >= 20) {
    len = size_t{pkt[2]} << 8 | pkt[3];
    src = pkt + 12;
    src_len = 4;
    if (len < 20) len = 0;
  } else if (version == 6 && plain_len >= 40) {
    len = (size_t{pkt[4]} << 8 | pkt[5]) + 40;
    src = pkt + 8;
    src_len = 16;
  }
  if (len == 0 || len > plain_len) return Count(Drop::kBadInnerPacket);
  if (allowed_ips_.Lookup(src, src_len) != peer && !SharedSource(*peer, src, src_len)) {
    return Count(Drop::kSourceNotAllowed);
  }
  ++counters_.data_packets_received;
  output_.DeliverPacket(*peer, base::ByteSpan(pkt, len));
}

bool Device::SharedSource(const Peer& peer, const uint8_t* src, size_t src_len) {
  if (peer.shared_sources_.empty()) return false;
  const base::IpAddress a = base::IpAddress::FromBytes(absl::MakeConstSpan(src, src_len));
  for (const base::IpPrefix& p : peer.shared_sources_) {
    if (p.Contains(a)) return true;
  }
  return false;
}

void Device::UpdateEndpoint(Peer* peer, const base::SocketAddress& from) {
  // Roaming: the peer is wherever its latest authenticated packet came from.
  if (!(peer->endpoint_ == from)) {
    peer->endpoint_ = from;
    output_.EndpointChanged(*peer);
  }
}

// ---- send --------------------------------------------------------------------------------

void Device::SendPackets(absl::Span<const base::ByteSpan> packets) {
  for (base::ByteSpan pkt : packets) {
    Peer* peer = nullptr;
    if (!pkt.empty()) {
      const int version = pkt[0] >> 4;
      if (version == 4 && pkt.size() >= 20) peer = allowed_ips_.Lookup(pkt.data() + 16, 4);
      if (version == 6 && pkt.size() >= 40) peer = allowed_ips_.Lookup(pkt.data() + 24, 16);
    }
    if (!peer) {
      Count(Drop::kNoRoute);
      continue;
    }
    QueuePackets(peer, absl::MakeConstSpan(&pkt, 1));
  }
  output_.Flush();
}

void Device::SendKeepalive(Peer* peer) {
  QueueKeepalive(peer);
  output_.Flush();
}

void Device::SendPacketsTo(Peer* peer, absl::Span<const base::ByteSpan> packets) {
  QueuePackets(peer, packets);
  output_.Flush();
}

void Device::InitiateHandshake(Peer* peer) {
  SendInitiation(peer, /*is_retry=*/false);
  output_.Flush();
}

void Device::InitiateHandshakeVia(Peer* peer, const base::SocketAddress& to) {
  SendInitiation(peer, /*is_retry=*/false, &to);
  output_.Flush();
}

void Device::QueueKeepalive(Peer* peer) {
  base::ByteSpan empty;
  QueuePackets(peer, absl::MakeConstSpan(&empty, 1));
}

void Device::QueuePackets(Peer* peer, absl::Span<const base::ByteSpan> packets) {
  if (!local_.has_private_key) {
    counters_.drops[static_cast<size_t>(Drop::kNoPrivateKey)] += packets.size();
    return;
  }
  Keypair* kp = peer->current_.get();
  if (!KeypairUsableForSending(kp) || !peer->staged_.empty()) {
    for (base::ByteSpan pkt : packets) Stage(peer, pkt);
    if (KeypairUsableForSending(kp)) {
      SendStaged(peer);
    } else {
      SendInitiation(peer, false);
    }
    return;
  }
  for (base::ByteSpan pkt : packets) EncryptAndSend(peer, kp, pkt);
  if (kp->initiator && (kp->send_counter > kRekeyAfterMessages ||
                        clock_.Monotonic() - kp->created >= kRekeyAfterTime)) {
    SendInitiation(peer, false);
  }
}

void Device::Stage(Peer* peer, base::ByteSpan packet) {
  if (packet.size() > kMaxPacket) return Count(Drop::kPacketTooBig);
  if (peer->staged_.size() >= kMaxStagedPackets) {
    peer->staged_.pop_front();
    Count(Drop::kStagedOverflow);
  }
  peer->staged_.emplace_back(packet.begin(), packet.end());
}

void Device::SendStaged(Peer* peer) {
  Keypair* kp = peer->current_.get();
  if (!KeypairUsableForSending(kp)) return;
  auto staged = std::move(peer->staged_);
  peer->staged_.clear();
  for (const auto& pkt : staged) EncryptAndSend(peer, kp, pkt);
}

void Device::EncryptAndSend(Peer* peer, Keypair* kp, base::ByteSpan packet) {
  if (packet.size() > kMaxPacket) return Count(Drop::kPacketTooBig);
  if (!peer->endpoint()) return Count(Drop::kNoEndpoint);
  const size_t padded = PaddedLength(packet.size(), mtu_);
  uint8_t* buf = tx_buffer_.data();
  TransportHeader h{kp->remote_index, kp->send_counter++};
  SerializeTransportHeader(h, absl::MakeSpan(buf, kTransportHeaderSize));
  uint8_t* body = buf + kTransportHeaderSize;
  if (!packet.empty()) std::memcpy(body, packet.data(), packet.size());
  std::memset(body + packet.size(), 0, padded - packet.size());
  kp->sender.Seal(h.counter, absl::MakeConstSpan(body, padded), {}, body);
  const size_t total = kTransportHeaderSize + padded + crypto::kAeadTagSize;
  Send(peer, base::ByteSpan(buf, total));
  if (packet.empty()) {
    ++counters_.keepalives_sent;
  } else {
    ++counters_.data_packets_sent;
    OnDataSent(peer);
  }
  OnAnyAuthenticatedPacketSent(peer);
  OnAnyAuthenticatedPacketTraversal(peer);
}

void Device::Send(Peer* peer, base::ByteSpan datagram) {
  peer->stats_.tx_bytes += datagram.size();
  output_.SendDatagram(*peer->endpoint(), datagram);
}

void Device::SendHandshakeMessage(Peer* peer, base::MutableByteSpan msg, size_t mac1_offset,
                                  const base::SocketAddress* via) {
  peer->cookies.AddMacs(msg, mac1_offset, clock_.Monotonic());
  if (via != nullptr) {
    peer->stats_.tx_bytes += msg.size();
    output_.SendDatagram(*via, msg);
    return;
  }
  if (!peer->endpoint()) return Count(Drop::kNoEndpoint);
  Send(peer, msg);
}

void Device::SendInitiation(Peer* peer, bool is_retry, const base::SocketAddress* via) {
  if (!is_retry) peer->handshake_attempts_ = 0;
  const absl::Duration now = clock_.Monotonic();
  // At most one initiation per REKEY_TIMEOUT, whatever asks for it (a new path excepted).
  if (via == nullptr && now - peer->last_sent_initiation_ < kRekeyTimeout) return;
  if (!local_.has_private_key) return Count(Drop::kNoPrivateKey);
  if (peer->handshake.state != HandshakeState::kZeroed) FreeIndex(peer->handshake.local_index);
  const uint32_t index = NewIndex();
  Initiation msg;
  if (!CreateInitiation(local_, peer->keys, index, clock_.Wall(), &peer->handshake, &msg,
                        ephemeral_for_testing_ ? &*ephemeral_for_testing_ : nullptr)) {
    peer->handshake.Clear();
    return Count(Drop::kHandshakeFailed);
  }
  index_[index] = IndexEntry{IndexKind::kHandshake, peer, nullptr};
  uint8_t buf[kInitiationSize];
  SerializeInitiation(msg, buf);
  peer->last_sent_initiation_ = now;
  SendHandshakeMessage(peer, buf, kInitiationMac1Offset, via);
  ++counters_.initiations_sent;
  OnAnyAuthenticatedPacketTraversal(peer);
  OnAnyAuthenticatedPacketSent(peer);
  OnHandshakeInitiated(peer);
}

// ---- timers ------------------------------------------------------------------------------

absl::Duration Device::Jitter() const {
  uint32_t r;
  RAND_bytes(reinterpret_cast<uint8_t*>(&r), sizeof(r));
  return absl::Milliseconds(r % (absl::ToInt64Milliseconds(kRekeyTimeoutJitterMax) + 1));
}

void Device::OnDataSent(Peer* p) {
  if (p->data_unanswered_since_ == Peer::kOff) p->data_unanswered_since_ = clock_.Monotonic();
  if (p->new_handshake_at_ == Peer::kOff) {
    p->new_handshake_at_ = clock_.Monotonic() + kKeepaliveTimeout + kRekeyTimeout + Jitter();
  }
}

void Device::OnDataReceived(Peer* p) {
  if (p->send_keepalive_at_ == Peer::kOff) {
    p->send_keepalive_at_ = clock_.Monotonic() + kKeepaliveTimeout;
  } else {
    p->need_another_keepalive_ = true;
  }
}

void Device::OnAnyAuthenticatedPacketSent(Peer* p) { p->send_keepalive_at_ = Peer::kOff; }

void Device::OnAnyAuthenticatedPacketReceived(Peer* p) {
  p->new_handshake_at_ = Peer::kOff;
  p->data_unanswered_since_ = Peer::kOff;
}

void Device::OnAnyAuthenticatedPacketTraversal(Peer* p) {
  if (p->persistent_keepalive_ > 0) {
    p->persistent_keepalive_at_ = clock_.Monotonic() + absl::Seconds(p->persistent_keepalive_);
  }
}

void Device::OnHandshakeInitiated(Peer* p) {
  p->retransmit_handshake_at_ = clock_.Monotonic() + kRekeyTimeout + Jitter();
}

void Device::OnHandshakeComplete(Peer* p) {
  p->retransmit_handshake_at_ = Peer::kOff;
  p->handshake_attempts_ = 0;
  p->sent_lastminute_handshake_ = false;
  p->stats_.last_handshake = clock_.Wall();
  ++p->stats_.handshakes_completed;
  ++counters_.handshakes_completed;
}

void Device::OnSessionDerived(Peer* p) {
  p->zero_key_material_at_ = clock_.Monotonic() + 3 * kRejectAfterTime;
}

absl::Duration Device::NextDeadline() const {
  absl::Duration next = absl::InfiniteDuration();
  for (const auto& p : peers_) {
    next = std::min({next, p->retransmit_handshake_at_, p->send_keepalive_at_, p->new_handshake_at_,
                     p->zero_key_material_at_, p->persistent_keepalive_at_});
  }
  return next;
}

void Device::RunTimers() {
  const absl::Duration now = clock_.Monotonic();
  // Peers may be added or removed by nothing here, so a plain loop is safe.
  for (auto& owned : peers_) {
    Peer* p = owned.get();
    if (p->retransmit_handshake_at_ <= now) {
      p->retransmit_handshake_at_ = Peer::kOff;
      if (p->handshake_attempts_ >= kMaxTimerHandshakes) {
        // REKEY_ATTEMPT_TIME is up: give up until new traffic asks again.
        P2P_LOG(kInfo, "wg.handshake_gave_up")
            .Kv("peer", crypto::KeyToBase64(p->public_key()))
            .Kv("attempts", p->handshake_attempts_ + 1);
        p->send_keepalive_at_ = Peer::kOff;
        p->staged_.clear();
        if (p->zero_key_material_at_ == Peer::kOff) p->zero_key_material_at_ = now + 3 * kRejectAfterTime;
      } else {
        ++p->handshake_attempts_;
        SendInitiation(p, /*is_retry=*/true);
      }
    }
    if (p->send_keepalive_at_ <= now) {
      p->send_keepalive_at_ = Peer::kOff;
      QueueKeepalive(p);
      if (p->need_another_keepalive_) {
        p->need_another_keepalive_ = false;
        p->send_keepalive_at_ = now + kKeepaliveTimeout;
      }
    }
    if (p->new_handshake_at_ <= now) {
      p->new_handshake_at_ = Peer::kOff;
      SendInitiation(p, /*is_retry=*/false);
    }
    if (p->zero_key_material_at_ <= now) {
      p->zero_key_material_at_ = Peer::kOff;
      DropKeypair(p->previous_);
      DropKeypair(p->current_);
      DropKeypair(p->next_);
      if (p->handshake.state != HandshakeState::kZeroed) FreeIndex(p->handshake.local_index);
      p->handshake.Clear();
    }
    if (p->persistent_keepalive_at_ <= now) {
      p->persistent_keepalive_at_ = Peer::kOff;
      if (p->persistent_keepalive_ > 0) QueueKeepalive(p);
    }
  }
  output_.Flush();
}

}  // namespace p2proxy::wg
