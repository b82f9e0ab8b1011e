// splice.h: joins two Streams so that bytes read from each are written to the other, with
// backpressure both ways (a side stops reading while the other's write queue is above the
// high-water mark) and proper half-close (end of stream on one side shuts the other down for
// writing; the splice finishes when both directions have ended and their queues are empty).
#ifndef P2PROXY_PROXY_SPLICE_H_
#define P2PROXY_PROXY_SPLICE_H_

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "net/loop.h"
#include "net/stream.h"

namespace p2proxy::proxy {

class Splice final : public net::DeferredDeletable {
 public:
  struct Stats {
    uint64_t a_to_b = 0;
    uint64_t b_to_a = 0;
  };
  // DoneFn runs once, when both directions finished (OK) or either failed (the error). Both
  // streams are closed by then. It may destroy the splice only through Loop::DeferDelete.
  using DoneFn = absl::AnyInvocable<void(Splice* splice, const Stats& stats, const absl::Status& status)>;

  static constexpr size_t kDefaultHighWater = 256 * 1024;

  Splice(std::unique_ptr<net::Stream> a, std::unique_ptr<net::Stream> b, DoneFn done,
         size_t high_water = kDefaultHighWater);
  ~Splice() override;
  Splice(const Splice&) = delete;
  Splice& operator=(const Splice&) = delete;

  // Start begins moving bytes.
  void Start();
  const Stats& stats() const { return stats_; }
  // Abort ends the splice now: |a| is reset (Stream::Reset: its peer sees RST), |b| closed, and
  // DoneFn runs with |why| (if it has not run yet) before Abort returns. Not to be called from
  // inside DoneFn.
  void Abort(const absl::Status& why);

 private:
  // Side handles the events of one stream; |other| is where its bytes go.
  struct Side final : net::StreamHandler {
    Splice* splice = nullptr;
    net::Stream* self = nullptr;
    net::Stream* other = nullptr;
    Side* peer = nullptr;
    uint64_t* counter = nullptr;
    bool ended = false;         // we read end of stream from |self|
    bool paused_other = false;  // |peer|'s stream is paused because our queue is full
    void OnData(base::ByteSpan data) override;
    void OnEnd() override;
    void OnError(const absl::Status& status) override;
    void OnWriteDrained() override;
  };
  void MaybeFinish();
  void Finish(const absl::Status& status);

  std::unique_ptr<net::Stream> a_, b_;
  Side side_a_, side_b_;
  DoneFn done_;
  size_t high_water_;
  Stats stats_;
  bool finished_ = false;
};

}  // namespace p2proxy::proxy

#endif  // P2PROXY_PROXY_SPLICE_H_
