// replay.h: the receive counter window (RFC 6479's bitmap): a transport message is accepted at
// most once, and only if its counter is newer than the window's trailing edge. The window holds
// kWindowSize = 8128 counters, well over the 2048 that reordering on fast paths needs.
#ifndef P2PROXY_WG_REPLAY_H_
#define P2PROXY_WG_REPLAY_H_

#include <array>
#include <cstdint>

namespace p2proxy::wg {

class ReplayWindow {
 public:
  static constexpr int kBlocks = 128;  // of 64 bits: 8192 bits in all
  static constexpr uint64_t kWindowSize = (kBlocks - 1) * 64;

  enum class Verdict { kOk, kDuplicate, kTooOld, kExhausted };

  // Check says whether |counter| would be accepted, without recording it (call it before the
  // expensive decryption). Commit records it (call it after the packet authenticated) and
  // returns the same verdict Check would give now.
  Verdict Check(uint64_t counter) const;
  Verdict Commit(uint64_t counter);

  uint64_t greatest() const { return greatest_; }

 private:
  std::array<uint64_t, kBlocks> bitmap_{};
  uint64_t greatest_ = 0;
};

}  // namespace p2proxy::wg

#endif  // P2PROXY_WG_REPLAY_H_
