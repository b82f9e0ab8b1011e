// x25519.cc: X25519 over BoringSSL's curve25519.
#include "crypto/x25519.h"

#include <openssl/curve25519.h>
#include <openssl/rand.h>

namespace p2proxy::crypto {

void GeneratePrivateKey(Key* out) {
  RAND_bytes(out->data(), out->size());
  // Clamp as RFC 7748 §5 describes and `wg genkey` stores it.
  out->data()[0] &= 248;
  out->data()[31] = static_cast<uint8_t>((out->data()[31] & 127) | 64);
}

PublicKey PublicFromPrivate(const Key& private_key) {
  PublicKey pub;
  X25519_public_from_private(pub.data(), private_key.data());
  return pub;
}

bool SharedSecret(const Key& private_key, const PublicKey& peer, Key* out) {
  return X25519(out->data(), private_key.data(), peer.data()) == 1;
}

}  // namespace p2proxy::crypto
