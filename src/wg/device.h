// device.h: a WireGuard device without I/O. It owns the peers, the index table and the
// cryptokey routing table; it turns batches of received datagrams into decrypted IP packets and
// batches of outbound IP packets into encrypted datagrams, and hands both to a DeviceOutput.
// Time comes from an injected Clock; the owner arms one timer for NextDeadline() and calls
// RunTimers() when it fires. The same device runs behind a kernel TUN (the client) and behind
// lwIP (the site), and two devices can talk to each other in a unit test.
#ifndef P2PROXY_WG_DEVICE_H_
#define P2PROXY_WG_DEVICE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/address.h"
#include "base/bytes.h"
#include "base/clock.h"
#include "wg/allowed_ips.h"
#include "wg/constants.h"
#include "wg/cookie.h"
#include "wg/peer.h"
#include "wg/ratelimiter.h"

namespace p2proxy::wg {

// Drop names every reason a packet is discarded. Each is counted (DeviceCounters::drops).
enum class Drop : uint8_t {
  kInvalidMessage,      // unknown type or wrong length
  kBadMac1,             // handshake message not addressed to us
  kBadMac2,             // under load, without a valid cookie: a cookie reply was sent instead
  kRateLimited,         // under load, with a valid cookie, but its source is over its rate
  kRateLimitTableFull,  // under load, with a valid cookie, from a new source: the table is full
  kHandshakeFailed,     // decryption or Diffie-Hellman failed
  kUnknownPeer,         // initiation from a static key we do not know
  kReplayedInitiation,  // timestamp not newer than the last one from that peer
  kInitiationFlood,     // initiations from one peer faster than kMinInitiationInterval
  kUnknownIndex,        // receiver index not in our table (or of the wrong kind)
  kBadCookieReply,      // cookie reply that does not authenticate
  kExpiredKeypair,      // keypair older than REJECT_AFTER_TIME or out of counters
  kReplay,              // transport counter already seen or older than the window
  kDecryptFailed,       // transport message does not authenticate
  kBadInnerPacket,      // decrypted payload is not a well-formed IPv4/IPv6 packet
  kSourceNotAllowed,    // inner source address outside the peer's allowed IPs
  kNoRoute,             // outbound packet whose destination no peer's allowed IPs cover
  kNoEndpoint,          // the peer has no known endpoint yet
  kStagedOverflow,      // too many packets waiting for a handshake: the oldest was dropped
  kPacketTooBig,        // outbound packet larger than the device can frame
  kNoPrivateKey,        // the device has no private key
  kCount,
};
const char* DropName(Drop d);

struct DeviceCounters {
  std::array<uint64_t, static_cast<size_t>(Drop::kCount)> drops{};
  uint64_t initiations_sent = 0;
  uint64_t responses_sent = 0;
  uint64_t cookie_replies_sent = 0;
  uint64_t handshakes_completed = 0;
  uint64_t keepalives_sent = 0;
  uint64_t keepalives_received = 0;
  uint64_t data_packets_sent = 0;
  uint64_t data_packets_received = 0;
  uint64_t drop(Drop d) const { return drops[static_cast<size_t>(d)]; }
};

// Datagram is one received UDP payload and where it came from (addr).
using Datagram = base::Datagram;

// DeviceOutput receives what the device produces. Spans are valid only during the call.
class DeviceOutput {
 public:
  virtual ~DeviceOutput() = default;
  virtual void SendDatagram(const base::SocketAddress& to, base::ByteSpan datagram) = 0;
  virtual void DeliverPacket(Peer& from, base::ByteSpan ip_packet) = 0;
  // Flush ends a batch: whatever the output buffered can go out now.
  virtual void Flush() {}
  // EndpointChanged: an authenticated packet from |peer| came from a new address (roaming, or
  // the first packet); peer.endpoint() is the new one. The server learns nodes' public
  // endpoints this way.
  virtual void EndpointChanged(Peer& peer) {}
};

class Device {
 public:
  Device(base::Clock& clock, DeviceOutput& output, size_t mtu = kDefaultMtu);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // SetPrivateKey installs our static key. Sessions made under another key are dropped and
  // every peer's precomputation is redone. A peer with our own public key is removed.
  void SetPrivateKey(const crypto::Key& key);
  const LocalIdentity& identity() const { return local_; }

  // AddPeer adds a peer, or updates it if it exists (allowed IPs are added to, as `wg set`
  // does without replace_allowed_ips). Error if the key is our own.
  absl::StatusOr<Peer*> AddPeer(const PeerConfig& config);
  Peer* FindPeer(const crypto::PublicKey& key) const;
  void RemovePeer(const crypto::PublicKey& key);
  void RemoveAllPeers();
  void SetEndpoint(Peer* peer, const base::SocketAddress& endpoint);
  void SetPresharedKey(Peer* peer, const crypto::Key& psk);
  // SetPersistentKeepalive turns it on (sending a keepalive now, as wg does) or off (0).
  void SetPersistentKeepalive(Peer* peer, uint16_t seconds);
  void AddAllowedIp(Peer* peer, const base::IpPrefix& prefix) { allowed_ips_.Insert(prefix, peer); }
  void ClearAllowedIps(Peer* peer) { allowed_ips_.RemovePeer(peer); }
  // SetSharedSources: |peer| may also send from these prefixes, which routing sends to another
  // peer (or to this one): a resource served by several sites, where a flow table picks the
  // site per flow with SendPacketsTo and each site answers from the resource's address. Only
  // the inbound source check consults them, and only when the routing table names another
  // peer. Replaces the peer's previous list.
  void SetSharedSources(Peer* peer, std::vector<base::IpPrefix> prefixes) { peer->shared_sources_ = std::move(prefixes); }
  const AllowedIps& allowed_ips() const { return allowed_ips_; }
  std::vector<Peer*> peers() const;

  // ReceiveDatagrams handles a batch from the UDP socket.
  void ReceiveDatagrams(absl::Span<const Datagram> batch);
  // SendPackets routes each IP packet by destination through the allowed IPs and sends it.
  void SendPackets(absl::Span<const base::ByteSpan> packets);
  // SendPacketsTo sends to one peer, bypassing routing (a flow table chose the peer).
  void SendPacketsTo(Peer* peer, absl::Span<const base::ByteSpan> packets);
  // SendKeepalive sends an empty transport message (starting a handshake if needed).
  void SendKeepalive(Peer* peer);
  // InitiateHandshake starts a handshake now unless one went out less than REKEY_TIMEOUT ago.
  void InitiateHandshake(Peer* peer);
  // InitiateHandshakeVia sends one initiation to |to| now (a new path: the relay, or a probe of
  // the direct one while relayed), whatever went out before, leaving the peer's endpoint as it
  // is. An authenticated answer from |to| moves the peer there (roaming).
  void InitiateHandshakeVia(Peer* peer, const base::SocketAddress& to);
  // Every public call that can produce output ends with DeviceOutput::Flush().

  // NextDeadline is the monotonic time of the earliest armed timer (InfiniteDuration if none).
  absl::Duration NextDeadline() const;
  // RunTimers fires every timer whose deadline has passed.
  void RunTimers();

  const DeviceCounters& counters() const { return counters_; }
  size_t mtu() const { return mtu_; }
  // ForceUnderLoad makes the device demand cookies (mac2) from every handshake, as it does
  // when flooded; for tests and for operators under attack.
  void ForceUnderLoad(bool on) { force_under_load_ = on; }
  bool UnderLoad();
  // SetHandshakeRateLimit replaces the per-source limiter that applies under load to handshake
  // messages carrying a valid mac2 (see ratelimiter.h); its state starts empty. Error if the
  // options are out of range (the limiter in use is kept).
  absl::Status SetHandshakeRateLimit(const RateLimitOptions& options);
  const SourceRateLimiter& handshake_rate_limiter() const { return rate_limiter_; }
  // SetIndexSourceForTesting replaces the random receiver indexes with |next| (fuzzers and
  // tests that need reproducible wire bytes). Indexes it returns that are in use are skipped.
  void SetIndexSourceForTesting(std::function<uint32_t()> next) { index_source_ = std::move(next); }
  // SetEphemeralForTesting makes every handshake this device creates use |key| as its ephemeral
  // private key instead of a fresh random one (known-answer tests and recording tools only: a
  // reused ephemeral breaks forward secrecy). nullopt restores random ephemerals.
  void SetEphemeralForTesting(const std::optional<crypto::Key>& key) { ephemeral_for_testing_ = key; }

 private:
  enum class IndexKind : uint8_t { kHandshake, kKeypair };
  struct IndexEntry {
    IndexKind kind;
    Peer* peer;
    Keypair* keypair;  // for kKeypair
  };

  void Count(Drop d) { ++counters_.drops[static_cast<size_t>(d)]; }
  uint32_t NewIndex();
  void FreeIndex(uint32_t index);
  void DropKeypair(std::unique_ptr<Keypair>& slot);
  void ClearSessions(Peer* peer);

  void HandleInitiation(const Datagram& d);
  void HandleResponse(const Datagram& d);
  void HandleCookieReply(const Datagram& d);
  void HandleTransport(const Datagram& d);
  bool CheckHandshakeMacs(const Datagram& d, size_t mac1_offset, uint32_t sender);

  void SendInitiation(Peer* peer, bool is_retry, const base::SocketAddress* via = nullptr);
  // Queue* are the unflushed forms of the public send calls, for use inside a batch.
  void QueuePackets(Peer* peer, absl::Span<const base::ByteSpan> packets);
  void QueueKeepalive(Peer* peer);
  void SendHandshakeMessage(Peer* peer, base::MutableByteSpan msg, size_t mac1_offset,
                            const base::SocketAddress* via = nullptr);
  void InstallKeypair(Peer* peer, std::unique_ptr<Keypair> keypair);
  bool ReceivedWithKeypair(Peer* peer, Keypair* keypair);
  bool KeypairUsableForSending(const Keypair* kp) const;
  void SendStaged(Peer* peer);
  void Stage(Peer* peer, base::ByteSpan packet);
  void EncryptAndSend(Peer* peer, Keypair* kp, base::ByteSpan packet);
  void Send(Peer* peer, base::ByteSpan datagram);
  void UpdateEndpoint(Peer* peer, const base::SocketAddress& from);
  static bool SharedSource(const Peer& peer, const uint8_t* src, size_t src_len);

  // Timer events, named as the events that cause them.
  void OnDataSent(Peer* p);
  void OnDataReceived(Peer* p);
  void OnAnyAuthenticatedPacketSent(Peer* p);
  void OnAnyAuthenticatedPacketReceived(Peer* p);
  void OnAnyAuthenticatedPacketTraversal(Peer* p);
  void OnHandshakeInitiated(Peer* p);
  void OnHandshakeComplete(Peer* p);
  void OnSessionDerived(Peer* p);
  absl::Duration Jitter() const;

  base::Clock& clock_;
  DeviceOutput& output_;
  const size_t mtu_;
  LocalIdentity local_;
  CookieChecker cookie_checker_;
  AllowedIps allowed_ips_;
  std::vector<std::unique_ptr<Peer>> peers_;
  absl::flat_hash_map<crypto::PublicKey, Peer*> peers_by_key_;
  absl::flat_hash_map<uint32_t, IndexEntry> index_;
  DeviceCounters counters_;
  std::vector<uint8_t> tx_buffer_;
  std::vector<uint8_t> rx_buffer_;
  // Under-load detection: handshake messages seen in the current one-second window.
  absl::Duration load_window_start_ = -absl::InfiniteDuration();
  int load_window_count_ = 0;
  absl::Duration under_load_until_ = -absl::InfiniteDuration();
  bool force_under_load_ = false;
  SourceRateLimiter rate_limiter_;
  std::function<uint32_t()> index_source_;
  std::optional<crypto::Key> ephemeral_for_testing_;
};

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_DEVICE_H_
