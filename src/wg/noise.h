// noise.h: the Noise_IKpsk2 handshake exactly as WireGuard runs it (paper §5.4.2-§5.4.3). Pure
// functions over explicit state: no I/O, time passed in. Each step is labelled with the Noise
// token it performs (e, es, s, ss, {t}, ee, se, psk).
#ifndef P2PROXY_WG_NOISE_H_
#define P2PROXY_WG_NOISE_H_

#include <array>
#include <cstdint>

#include "absl/time/time.h"
#include "crypto/secret.h"
#include "crypto/tai64n.h"
#include "wg/messages.h"

namespace p2proxy::wg {

using HashValue = std::array<uint8_t, 32>;

// LocalIdentity is this device's static key pair.
struct LocalIdentity {
  crypto::Key private_key;
  crypto::PublicKey public_key{};
  bool has_private_key = false;
  void Set(const crypto::Key& private_key);
};

// PeerKeys are the per-peer constants of the handshake.
struct PeerKeys {
  crypto::PublicKey remote_static{};
  crypto::Key preshared_key;           // zeros when none is configured
  crypto::Key precomputed_static_static;  // DH(our static, their static), computed once
  bool static_static_ok = false;       // false if that DH gave zero (a low-order key)
  void Precompute(const LocalIdentity& local);
};

enum class HandshakeState : uint8_t {
  kZeroed,
  kCreatedInitiation,
  kConsumedInitiation,
  kCreatedResponse,
  kConsumedResponse,
};

// Handshake is one peer's in-progress handshake.
struct Handshake {
  HandshakeState state = HandshakeState::kZeroed;
  crypto::Key ephemeral_private;
  crypto::PublicKey remote_ephemeral{};
  crypto::Key chaining_key;
  HashValue hash{};
  uint32_t local_index = 0;
  uint32_t remote_index = 0;
  // Replay and flood protection for initiations received from this peer.
  crypto::Tai64n latest_timestamp{};
  absl::Duration last_initiation_consumption = -absl::InfiniteDuration();
  // Clear wipes the keys and returns to kZeroed; the replay state is kept.
  void Clear();
};

// CreateInitiation fills |out| (all but mac1/mac2) as initiator, using |local_index| as our
// sender index and |wall_now| for the timestamp. False if a Diffie-Hellman result is zero.
// |ephemeral_for_testing|, when not null, is used as the ephemeral private key instead of a
// fresh random one: only for known-answer tests, which need reproducible wire bytes.
bool CreateInitiation(const LocalIdentity& local, const PeerKeys& peer, uint32_t local_index,
                      absl::Time wall_now, Handshake* hs, Initiation* out,
                      const crypto::Key* ephemeral_for_testing = nullptr);

// InitiationResult is what the responder learns from an initiation before it knows the peer.
struct ConsumedInitiation {
  crypto::PublicKey remote_static{};
  crypto::PublicKey remote_ephemeral{};
  crypto::Key chaining_key;
  HashValue hash{};
  crypto::Tai64n timestamp{};
};

// ConsumeInitiationStatic runs the responder's side up to decrypting the initiator's static
// key (e, es, s). The caller then finds the peer by |out->remote_static|.
bool ConsumeInitiationStatic(const LocalIdentity& local, const Initiation& msg,
                             ConsumedInitiation* out);
// ConsumeInitiationFinish completes it for the peer found (ss, {t}).
bool ConsumeInitiationFinish(const PeerKeys& peer, const Initiation& msg, ConsumedInitiation* st);

// CreateResponse answers a consumed initiation stored in |hs| (kConsumedInitiation).
// |ephemeral_for_testing| as for CreateInitiation.
bool CreateResponse(const PeerKeys& peer, uint32_t local_index, Handshake* hs, Response* out,
                    const crypto::Key* ephemeral_for_testing = nullptr);
// ConsumeResponse completes the initiator's side (hs in kCreatedInitiation).
bool ConsumeResponse(const LocalIdentity& local, const PeerKeys& peer, const Response& msg,
                     Handshake* hs);

// DeriveTransportKeys turns a finished handshake into the two transport keys and wipes the
// handshake's secrets. The initiator sends with the first KDF output.
void DeriveTransportKeys(Handshake* hs, bool initiator, crypto::Key* send, crypto::Key* recv);

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_NOISE_H_
