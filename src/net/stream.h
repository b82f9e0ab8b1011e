// stream.h: the byte-stream interface that every pipe in p2proxy implements: kernel TCP here,
// lwIP TCP in stack/, TLS in tls/. Code that moves bytes (the splice, the HTTP proxy) sees only
// this interface, so the same code serves a host socket and a connection inside the overlay.
//
// Lifetime: a Stream is owned through std::unique_ptr. Destroying it closes it at once (no more
// callbacks). A handler may destroy the stream from inside a callback only through
// Loop::DeferDelete (or by calling Close() and deleting it later).
#ifndef P2PROXY_NET_STREAM_H_
#define P2PROXY_NET_STREAM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "base/bytes.h"
#include "net/loop.h"

namespace p2proxy::net {

// StreamHandler receives a stream's events, in order, on the loop's thread.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // OnData delivers received bytes; |data| is valid only during the call.
  virtual void OnData(base::ByteSpan data) = 0;
  // OnEnd: the peer finished sending (half-close). Writing may go on.
  virtual void OnEnd() = 0;
  // OnError: the stream failed (reset, timeout, TLS alert...). No more OnData/OnEnd follow.
  virtual void OnError(const absl::Status& status) = 0;
  // OnWriteDrained: every queued write has been handed to the layer below; a writer that
  // paused because WriteQueueSize() was high can go on.
  virtual void OnWriteDrained() {}
};

class Stream : public DeferredDeletable {
 public:
  // WriteCallback reports that a write left the stream's queue (OK) or failed.
  using WriteCallback = absl::AnyInvocable<void(const absl::Status&)>;

  ~Stream() override = default;

  // SetHandler installs the handler (not owned; it must outlive the stream or be replaced).
  // Reading starts when a handler is set and the stream is not paused.
  virtual void SetHandler(StreamHandler* handler) = 0;

  // Write queues a copy of |data|. |done| (optional) runs once the bytes have left the queue
  // or the stream failed. Writing after Shutdown or Close fails through |done|.
  virtual void Write(base::ByteSpan data, WriteCallback done = nullptr) = 0;
  // WriteOwned is Write without the copy.
  virtual void WriteOwned(std::vector<uint8_t> data, WriteCallback done = nullptr) = 0;
  // WriteQueueSize is the number of bytes queued and not yet handed to the layer below. A
  // writer applies backpressure by pausing its source while this is above its high-water mark.
  virtual size_t WriteQueueSize() const = 0;

  // Shutdown half-closes: the peer sees end of stream once queued writes are sent.
  virtual void Shutdown() = 0;
  // Close closes both directions now, dropping queued writes; no further callbacks.
  virtual void Close() = 0;
  // Reset is Close that tells the peer the connection was refused rather than finished: a TCP
  // RST where the transport has one (lwIP, kernel TCP); Close elsewhere.
  virtual void Reset() { Close(); }

  // PauseReading / ResumeReading: backpressure towards the peer. While paused, OnData is not
  // called and the peer's window fills up.
  virtual void PauseReading() = 0;
  virtual void ResumeReading() = 0;
};

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_STREAM_H_
