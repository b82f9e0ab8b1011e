// keypair.h: one direction pair of transport keys from a finished handshake, with the send
// counter and the receive replay window. A peer holds up to three: previous, current, next.
#ifndef P2PROXY_WG_KEYPAIR_H_
#define P2PROXY_WG_KEYPAIR_H_

#include <cstdint>

#include "absl/time/time.h"
#include "crypto/aead.h"
#include "wg/replay.h"

namespace p2proxy::wg {

struct Keypair {
  Keypair(const crypto::Key& send_key, const crypto::Key& recv_key, bool is_initiator,
          uint32_t local, uint32_t remote, absl::Duration now)
      : sender(send_key), receiver(recv_key), initiator(is_initiator), local_index(local),
        remote_index(remote), created(now) {}

  crypto::ChaChaPoly sender;
  crypto::ChaChaPoly receiver;
  uint64_t send_counter = 0;
  ReplayWindow replay;
  const bool initiator;
  const uint32_t local_index;
  const uint32_t remote_index;
  const absl::Duration created;  // monotonic
};

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_KEYPAIR_H_
