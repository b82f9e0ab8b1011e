// cookie.cc: mac1, mac2 and cookie replies.
#include "wg/cookie.h"

#include <netinet/in.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include <cstring>

#include "crypto/aead.h"
#include "crypto/kdf.h"
#include "wg/constants.h"

namespace p2proxy::wg {
namespace {

absl::Span<const uint8_t> Label(const char* s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s), std::strlen(s));
}

// DeriveKey is HASH(label || public key): the mac1 key with "mac1----", the cookie encryption
// key with "cookie--".
void DeriveKey(const char* label, const crypto::PublicKey& pub, crypto::Key* out) {
  crypto::Hash256(out->data(), Label(label), pub);
}

}  // namespace

void CookieChecker::Init(const crypto::PublicKey& local_public) {
  DeriveKey(kLabelMac1, local_public, &mac1_key_);
  DeriveKey(kLabelCookie, local_public, &cookie_key_);
}

bool CookieChecker::CheckMac1(base::ByteSpan msg, size_t mac1_offset) const {
  if (msg.size() < mac1_offset + 32) return false;
  uint8_t mac[16];
  crypto::Mac128(mac, mac1_key_.span(), msg.subspan(0, mac1_offset));
  return CRYPTO_memcmp(mac, msg.data() + mac1_offset, 16) == 0;
}

void CookieChecker::MakeCookie(const base::SocketAddress& from, absl::Duration now, uint8_t out[16]) {
  if (now - secret_birth_ >= kCookieSecretMaxAge) {
    RAND_bytes(secret_.data(), secret_.size());
    secret_birth_ = now;
  }
  // The cookie binds the source IP and port (network byte order).
  uint8_t buf[18];
  size_t len = 0;
  if (from.family() == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(from.sa());
    std::memcpy(buf, &sin->sin_addr, 4);
    std::memcpy(buf + 4, &sin->sin_port, 2);
    len = 6;
  } else if (from.family() == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(from.sa());
    std::memcpy(buf, &sin6->sin6_addr, 16);
    std::memcpy(buf + 16, &sin6->sin6_port, 2);
    len = 18;
  }
  crypto::Mac128(out, secret_.span(), absl::MakeConstSpan(buf, len));
}

bool CookieChecker::CheckMac2(base::ByteSpan msg, size_t mac1_offset,
                              const base::SocketAddress& from, absl::Duration now) {
  const size_t mac2_offset = mac1_offset + 16;
  if (msg.size() < mac2_offset + 16) return false;
  uint8_t cookie[16], mac[16];
  MakeCookie(from, now, cookie);
  crypto::Mac128(mac, cookie, msg.subspan(0, mac2_offset));
  return CRYPTO_memcmp(mac, msg.data() + mac2_offset, 16) == 0;
}

void CookieChecker::CreateReply(base::ByteSpan msg, size_t mac1_offset, uint32_t sender,
                                const base::SocketAddress& from, absl::Duration now,
                                CookieReply* out) {
  uint8_t cookie[16];
  MakeCookie(from, now, cookie);
  out->receiver = sender;
  RAND_bytes(out->nonce.data(), out->nonce.size());
  crypto::XSeal(cookie_key_, out->nonce.data(), cookie, msg.subspan(mac1_offset, 16),
                out->encrypted_cookie.data());
  OPENSSL_cleanse(cookie, sizeof(cookie));
}

void CookieGenerator::Init(const crypto::PublicKey& remote_public) {
  DeriveKey(kLabelMac1, remote_public, &mac1_key_);
  DeriveKey(kLabelCookie, remote_public, &cookie_key_);
  have_cookie_ = false;
  have_last_mac1_ = false;
}

bool CookieGenerator::has_fresh_cookie(absl::Duration now) const {
  return have_cookie_ && now - cookie_birth_ < kCookieSecretMaxAge - kCookieSecretLatency;
}

void CookieGenerator::AddMacs(base::MutableByteSpan msg, size_t mac1_offset, absl::Duration now) {
  uint8_t* mac1 = msg.data() + mac1_offset;
  uint8_t* mac2 = mac1 + 16;
  crypto::Mac128(mac1, mac1_key_.span(), absl::MakeConstSpan(msg.data(), mac1_offset));
  std::memcpy(last_mac1_.data(), mac1, 16);
  have_last_mac1_ = true;
  if (has_fresh_cookie(now)) {
    crypto::Mac128(mac2, cookie_, absl::MakeConstSpan(msg.data(), mac1_offset + 16));
  } else {
    std::memset(mac2, 0, 16);
  }
}

bool CookieGenerator::ConsumeReply(const CookieReply& reply, absl::Duration now) {
  if (!have_last_mac1_) return false;
  uint8_t cookie[16];
  if (!crypto::XOpen(cookie_key_, reply.nonce.data(), reply.encrypted_cookie, last_mac1_, cookie)) {
    return false;
  }
  std::memcpy(cookie_.data(), cookie, 16);
  OPENSSL_cleanse(cookie, sizeof(cookie));
  cookie_birth_ = now;
  have_cookie_ = true;
  // A reply answers one message only.
  have_last_mac1_ = false;
  return true;
}

}  // namespace p2proxy::wg
