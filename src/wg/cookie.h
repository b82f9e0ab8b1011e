// cookie.h: WireGuard's MAC and cookie scheme (paper §5.4.4, §5.4.7). Every handshake message
// carries mac1, keyed by the receiver's public key: a cheap check that the sender knows whom it
// talks to, done before any Diffie-Hellman. Under load, the receiver also demands mac2, keyed
// by a cookie it hands out (encrypted) for the sender's source address; a sender that cannot
// receive at its claimed address cannot make the receiver do expensive work.
#ifndef P2PROXY_WG_COOKIE_H_
#define P2PROXY_WG_COOKIE_H_

#include <array>
#include <cstdint>

#include "absl/time/time.h"
#include "base/address.h"
#include "base/bytes.h"
#include "crypto/secret.h"
#include "wg/messages.h"

namespace p2proxy::wg {

// CookieChecker is the receiving side, one per device (keyed by our own public key).
class CookieChecker {
 public:
  void Init(const crypto::PublicKey& local_public);
  // CheckMac1: |msg| is a whole handshake message whose mac1 sits at |mac1_offset|.
  bool CheckMac1(base::ByteSpan msg, size_t mac1_offset) const;
  // CheckMac2 verifies mac2 against the cookie for |from|. |now| is monotonic time.
  bool CheckMac2(base::ByteSpan msg, size_t mac1_offset, const base::SocketAddress& from,
                 absl::Duration now);
  // CreateReply builds the cookie reply to |msg| (sent by |from| with sender index |sender|).
  void CreateReply(base::ByteSpan msg, size_t mac1_offset, uint32_t sender,
                   const base::SocketAddress& from, absl::Duration now, CookieReply* out);

 private:
  void MakeCookie(const base::SocketAddress& from, absl::Duration now, uint8_t out[16]);

  crypto::Key mac1_key_;
  crypto::Key cookie_key_;
  crypto::Key secret_;
  absl::Duration secret_birth_ = -absl::InfiniteDuration();
};

// CookieGenerator is the sending side, one per peer (keyed by the peer's public key).
class CookieGenerator {
 public:
  void Init(const crypto::PublicKey& remote_public);
  // AddMacs writes mac1, and mac2 if a fresh cookie is held (zeros otherwise), into |msg|.
  void AddMacs(base::MutableByteSpan msg, size_t mac1_offset, absl::Duration now);
  // ConsumeReply decrypts a cookie reply to the last message we sent; false if it does not
  // authenticate (wrong key, or not a reply to our latest mac1).
  bool ConsumeReply(const CookieReply& reply, absl::Duration now);
  bool has_fresh_cookie(absl::Duration now) const;

 private:
  crypto::Key mac1_key_;
  crypto::Key cookie_key_;
  std::array<uint8_t, 16> cookie_{};
  absl::Duration cookie_birth_ = -absl::InfiniteDuration();
  bool have_cookie_ = false;
  std::array<uint8_t, 16> last_mac1_{};
  bool have_last_mac1_ = false;
};

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_COOKIE_H_
