// wg_stream.h: one WireGuard-over-TLS connection (nat/stream_frame.h), at either end: the
// node's to the server's TCP 443, or one the server accepted. It frames each message the
// tunnel gives it and hands each message it reads back; it never looks inside them.
//
// WireGuard is a datagram protocol and the tunnel inside retransmits, so a stream that cannot
// keep up drops messages rather than queueing without end: above kMaxQueued bytes waiting for
// the socket, Send refuses (counted). Frames of one loop turn are coalesced into one TLS write.
#ifndef P2PROXY_CONTROL_WG_STREAM_H_
#define P2PROXY_CONTROL_WG_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "base/bytes.h"
#include "nat/stream_frame.h"
#include "net/loop.h"
#include "net/stream.h"

namespace p2proxy::control {

class WgStream final : private net::StreamHandler {
 public:
  // MessagesFn gets the messages read in one go (valid during the call).
  using MessagesFn = absl::AnyInvocable<void(absl::Span<const base::ByteSpan> messages)>;
  // ClosedFn runs once when the stream ends (the peer closed, an error, a bad frame length);
  // the owner may destroy the WgStream inside it.
  using ClosedFn = absl::AnyInvocable<void(const absl::Status& why)>;

  static constexpr size_t kMaxQueued = 1 << 20;
  static constexpr size_t kCoalesce = 16 * 1024;

  struct Counters {
    uint64_t messages_in = 0;
    uint64_t messages_out = 0;
    uint64_t dropped_full = 0;  // Send refused: the socket's queue is above kMaxQueued
  };

  // |stream| is open (the TLS handshake done) and gets this object as its handler.
  WgStream(net::Loop& loop, std::unique_ptr<net::Stream> stream, MessagesFn on_messages, ClosedFn on_closed);
  ~WgStream() override;
  WgStream(const WgStream&) = delete;
  WgStream& operator=(const WgStream&) = delete;

  // Send queues one message (a WireGuard message or relay frame); false if it was dropped (out
  // of bounds, the queue full, the stream closed).
  bool Send(base::ByteSpan message);
  const Counters& counters() const { return counters_; }
  bool open() const { return stream_ != nullptr; }

 private:
  void OnData(base::ByteSpan data) override;
  void OnEnd() override;
  void OnError(const absl::Status& status) override;
  void FlushOut();
  void Closed(const absl::Status& why);

  net::Loop& loop_;
  std::unique_ptr<net::Stream> stream_;
  MessagesFn on_messages_;
  std::vector<base::ByteSpan> batch_;
  ClosedFn on_closed_;
  nat::StreamFrameReader reader_;
  std::vector<uint8_t> out_;
  bool flush_posted_ = false;
  Counters counters_;
  std::shared_ptr<WgStream*> alive_;
};

}  // namespace p2proxy::control

#endif  // P2PROXY_CONTROL_WG_STREAM_H_
