// x25519.h: Curve25519 Diffie-Hellman (RFC 7748) through BoringSSL.
#ifndef P2PROXY_CRYPTO_X25519_H_
#define P2PROXY_CRYPTO_X25519_H_

#include "crypto/secret.h"

namespace p2proxy::crypto {

// GeneratePrivateKey fills |out| with a fresh clamped private key (as `wg genkey` does).
void GeneratePrivateKey(Key* out);
// PublicFromPrivate derives the public key (as `wg pubkey` does).
PublicKey PublicFromPrivate(const Key& private_key);
// SharedSecret computes X25519(private, peer). False if the result is all zeros (a low-order
// peer point), which WireGuard must reject.
bool SharedSecret(const Key& private_key, const PublicKey& peer, Key* out);

}  // namespace p2proxy::crypto

#endif  // P2PROXY_CRYPTO_X25519_H_
