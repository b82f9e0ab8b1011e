// noise.cc: Noise_IKpsk2 for WireGuard.
#include "wg/noise.h"

#include <openssl/mem.h>

#include <cstring>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "crypto/x25519.h"
#include "wg/constants.h"

namespace p2proxy::wg {
namespace {

absl::Span<const uint8_t> Str(const char* s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s), std::strlen(s));
}

// The initial chaining key and hash depend only on the constants and the responder's static
// key: Ci = HASH(CONSTRUCTION); Hi = HASH(HASH(Ci || IDENTIFIER) || Sr_pub).
void InitialState(const crypto::PublicKey& responder_static, crypto::Key* ck, HashValue* h) {
  static const auto initial = [] {
    struct Init {
      uint8_t ck[32];
      uint8_t h[32];
    } v;
    crypto::Hash256(v.ck, Str(kConstruction));
    crypto::Hash256(v.h, v.ck, Str(kIdentifier));
    return v;
  }();
  std::memcpy(ck->data(), initial.ck, 32);
  crypto::Hash256(h->data(), initial.h, responder_static);
}

void MixHash(HashValue* h, absl::Span<const uint8_t> data) { crypto::Hash256(h->data(), *h, data); }

// MixDh: ck = KDF1(ck, DH(priv, pub)); optionally also derives a key: (ck, k) = KDF2(...).
bool MixDh(crypto::Key* ck, const crypto::Key& priv, const crypto::PublicKey& pub,
           crypto::Key* key = nullptr) {
  crypto::Key dh;
  if (!crypto::SharedSecret(priv, pub, &dh)) return false;
  crypto::Kdf(*ck, dh.span(), ck, key);
  return true;
}

bool Seal(const crypto::Key& key, absl::Span<const uint8_t> pt, const HashValue& h, uint8_t* out) {
  crypto::ChaChaPoly aead(key);
  return aead.Seal(0, pt, h, out);
}

bool Open(const crypto::Key& key, absl::Span<const uint8_t> ct, const HashValue& h, uint8_t* out) {
  crypto::ChaChaPoly aead(key);
  return aead.Open(0, ct, h, out);
}

void NewEphemeral(const crypto::Key* fixed, crypto::Key* out) {
  if (fixed) {
    *out = *fixed;
  } else {
    crypto::GeneratePrivateKey(out);
  }
}

}  // namespace

void LocalIdentity::Set(const crypto::Key& key) {
  private_key = key;
  public_key = crypto::PublicFromPrivate(key);
  has_private_key = !key.IsZero();
}

void PeerKeys::Precompute(const LocalIdentity& local) {
  static_static_ok = local.has_private_key &&
                     crypto::SharedSecret(local.private_key, remote_static, &precomputed_static_static);
  if (!static_static_ok) precomputed_static_static.Clear();
}

void Handshake::Clear() {
  state = HandshakeState::kZeroed;
  ephemeral_private.Clear();
  remote_ephemeral.fill(0);
  chaining_key.Clear();
  hash.fill(0);
  local_index = 0;
  remote_index = 0;
}

bool CreateInitiation(const LocalIdentity& local, const PeerKeys& peer, uint32_t local_index,
                      absl::Time wall_now, Handshake* hs, Initiation* out,
                      const crypto::Key* ephemeral_for_testing) {
  if (!local.has_private_key || !peer.static_static_ok) return false;
  hs->Clear();
  InitialState(peer.remote_static, &hs->chaining_key, &hs->hash);
  // e
  NewEphemeral(ephemeral_for_testing, &hs->ephemeral_private);
  crypto::PublicKey e_pub = crypto::PublicFromPrivate(hs->ephemeral_private);
  out->ephemeral = e_pub;
  crypto::Kdf(hs->chaining_key, e_pub, &hs->chaining_key);
  MixHash(&hs->hash, e_pub);
  // es
  crypto::Key key;
  if (!MixDh(&hs->chaining_key, hs->ephemeral_private, peer.remote_static, &key)) return false;
  // s
  if (!Seal(key, local.public_key, hs->hash, out->encrypted_static.data())) return false;
  MixHash(&hs->hash, out->encrypted_static);
  // ss
  crypto::Kdf(hs->chaining_key, peer.precomputed_static_static.span(), &hs->chaining_key, &key);
  // {t}
  const crypto::Tai64n ts = crypto::ToTai64n(wall_now);
  if (!Seal(key, ts, hs->hash, out->encrypted_timestamp.data())) return false;
  MixHash(&hs->hash, out->encrypted_timestamp);
  out->sender = local_index;
  hs->local_index = local_index;
  hs->state = HandshakeState::kCreatedInitiation;
  return true;
}

bool ConsumeInitiationStatic(const LocalIdentity& local, const Initiation& msg,
                             ConsumedInitiation* st) {
  if (!local.has_private_key) return false;
  InitialState(local.public_key, &st->chaining_key, &st->hash);
  // e
  st->remote_ephemeral = msg.ephemeral;
  crypto::Kdf(st->chaining_key, msg.ephemeral, &st->chaining_key);
  MixHash(&st->hash, msg.ephemeral);
  // es
  crypto::Key key;
  if (!MixDh(&st->chaining_key, local.private_key, msg.ephemeral, &key)) return false;
  // s
  if (!Open(key, msg.encrypted_static, st->hash, st->remote_static.data())) return false;
  MixHash(&st->hash, msg.encrypted_static);
  return true;
}

bool ConsumeInitiationFinish(const PeerKeys& peer, const Initiation& msg, ConsumedInitiation* st) {
  if (!peer.static_static_ok) return false;
  // ss
  crypto::Key key;
  crypto::Kdf(st->chaining_key, peer.precomputed_static_static.span(), &st->chaining_key, &key);
  // {t}
  if (!Open(key, msg.encrypted_timestamp, st->hash, st->timestamp.data())) return false;
  MixHash(&st->hash, msg.encrypted_timestamp);
  return true;
}

bool CreateResponse(const PeerKeys& peer, uint32_t local_index, Handshake* hs, Response* out,
                    const crypto::Key* ephemeral_for_testing) {
  if (hs->state != HandshakeState::kConsumedInitiation) return false;
  // e
  NewEphemeral(ephemeral_for_testing, &hs->ephemeral_private);
  crypto::PublicKey e_pub = crypto::PublicFromPrivate(hs->ephemeral_private);
  out->ephemeral = e_pub;
  crypto::Kdf(hs->chaining_key, e_pub, &hs->chaining_key);
  MixHash(&hs->hash, e_pub);
  // ee
  if (!MixDh(&hs->chaining_key, hs->ephemeral_private, hs->remote_ephemeral)) return false;
  // se
  if (!MixDh(&hs->chaining_key, hs->ephemeral_private, peer.remote_static)) return false;
  // psk
  crypto::Key tau, key;
  crypto::Kdf(hs->chaining_key, peer.preshared_key.span(), &hs->chaining_key, &tau, &key);
  MixHash(&hs->hash, tau.span());
  // {}
  if (!Seal(key, {}, hs->hash, out->encrypted_nothing.data())) return false;
  MixHash(&hs->hash, out->encrypted_nothing);
  out->sender = local_index;
  out->receiver = hs->remote_index;
  hs->local_index = local_index;
  hs->state = HandshakeState::kCreatedResponse;
  return true;
}

bool ConsumeResponse(const LocalIdentity& local, const PeerKeys& peer, const Response& msg,
                     Handshake* hs) {
  if (hs->state != HandshakeState::kCreatedInitiation || msg.receiver != hs->local_index) return false;
  // Work on copies: a forged response must not disturb the handshake in progress.
  crypto::Key ck = hs->chaining_key;
  HashValue h = hs->hash;
  // e
  crypto::Kdf(ck, msg.ephemeral, &ck);
  MixHash(&h, msg.ephemeral);
  // ee
  if (!MixDh(&ck, hs->ephemeral_private, msg.ephemeral)) return false;
  // se
  if (!MixDh(&ck, local.private_key, msg.ephemeral)) return false;
  // psk
  crypto::Key tau, key;
  crypto::Kdf(ck, peer.preshared_key.span(), &ck, &tau, &key);
  MixHash(&h, tau.span());
  // {}
  uint8_t nothing[1];
  if (!Open(key, msg.encrypted_nothing, h, nothing)) return false;
  MixHash(&h, msg.encrypted_nothing);
  hs->chaining_key = ck;
  hs->hash = h;
  hs->remote_ephemeral = msg.ephemeral;
  hs->remote_index = msg.sender;
  hs->state = HandshakeState::kConsumedResponse;
  return true;
}

void DeriveTransportKeys(Handshake* hs, bool initiator, crypto::Key* send, crypto::Key* recv) {
  crypto::Key first, second;
  crypto::Kdf(hs->chaining_key, {}, &first, &second);
  *send = initiator ? first : second;
  *recv = initiator ? second : first;
  // Keep the indexes; wipe the secrets.
  const uint32_t local = hs->local_index, remote = hs->remote_index;
  hs->Clear();
  hs->local_index = local;
  hs->remote_index = remote;
}

}  // namespace p2proxy::wg
