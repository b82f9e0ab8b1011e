// replay.cc: ReplayWindow.
#include "wg/replay.h"

#include "wg/constants.h"

namespace p2proxy::wg {

ReplayWindow::Verdict ReplayWindow::Check(uint64_t counter) const {
  if (counter >= kRejectAfterMessages) return Verdict::kExhausted;
  if (counter + kWindowSize < greatest_) return Verdict::kTooOld;
  if (counter > greatest_) return Verdict::kOk;
  const uint64_t bit = uint64_t{1} << (counter & 63);
  return (bitmap_[(counter >> 6) % kBlocks] & bit) ? Verdict::kDuplicate : Verdict::kOk;
}

ReplayWindow::Verdict ReplayWindow::Commit(uint64_t counter) {
  Verdict v = Check(counter);
  if (v != Verdict::kOk) return v;
  const uint64_t block = counter >> 6;
  if (counter > greatest_) {
    // Clear the blocks the window slides over (at most all of them).
    const uint64_t current = greatest_ >> 6;
    uint64_t advance = block - current;
    if (advance > kBlocks) advance = kBlocks;
    for (uint64_t i = 1; i <= advance; ++i) bitmap_[(current + i) % kBlocks] = 0;
    greatest_ = counter;
  }
  bitmap_[block % kBlocks] |= uint64_t{1} << (counter & 63);
  return Verdict::kOk;
}

}  // namespace p2proxy::wg
