// tcp.h: kernel TCP on the loop: a listener, an outbound connect, and TcpStream, the Stream
// over a connected socket.
#ifndef P2PROXY_NET_TCP_H_
#define P2PROXY_NET_TCP_H_

#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "base/address.h"
#include "net/handle.h"
#include "net/loop.h"
#include "net/stream.h"

namespace p2proxy::net {

using base::SocketAddress;

// TcpStream hands the first write of a turn on an idle stream (nothing staged or queued, no
// completion wanted) to the kernel at once, so a request/response connection, which writes
// once per turn, never waits for the rest of the turn. Every later write of the turn is
// gathered and leaves in one writev on the next turn, so a writer fed packet by packet (a
// splice from the overlay stack) costs one syscall per batch, not per segment.
class TcpStream final : public Stream {
 public:
  ~TcpStream() override;

  // Connect dials |to| and calls |done| with the connected stream or the error. |done| is
  // always called, on the loop, unless the loop is torn down first.
  using ConnectCallback = absl::AnyInvocable<void(absl::StatusOr<std::unique_ptr<TcpStream>>)>;
  static void Connect(Loop& loop, const SocketAddress& to, ConnectCallback done);
  // Adopt takes over |fd|, a connected stream socket (TCP, or one end of an AF_UNIX
  // socketpair, as the public API hands its callers), and owns it from now on (also on error).
  static absl::StatusOr<std::unique_ptr<TcpStream>> Adopt(Loop& loop, int fd);

  void SetHandler(StreamHandler* handler) override;
  void Write(base::ByteSpan data, WriteCallback done = nullptr) override;
  void WriteOwned(std::vector<uint8_t> data, WriteCallback done = nullptr) override;
  size_t WriteQueueSize() const override;
  void Shutdown() override;
  void Close() override;
  void PauseReading() override;
  void ResumeReading() override;

  // Abort closes at once and makes the kernel send RST instead of FIN (SO_LINGER 0). Like
  // Close, it drops queued writes and no callback follows.
  void Abort();
  void Reset() override { Abort(); }

  SocketAddress local_address() const;
  SocketAddress peer_address() const;

 private:
  friend class TcpListener;
  struct WriteReq;
  struct ConnectReq;
  explicit TcpStream(Loop& loop);
  void UpdateReading();
  void Fail(const absl::Status& status);
  // TryWriteNow: the immediate first write of a turn. Returns true if all of |*data| went to
  // the kernel; otherwise |*data| is what is left (all of it if nothing was tried or taken).
  bool TryWriteNow(base::ByteSpan* data);
  void ScheduleFlush();
  void FlushStaged();
  void StartPendingShutdown();  // the uv_shutdown a Shutdown() asked for, once writes are handed over
  static void OnAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);

  Loop& loop_;
  UvHandle<uv_tcp_t> tcp_;
  StreamHandler* handler_ = nullptr;
  bool paused_ = false;
  bool reading_ = false;
  bool eof_ = false;
  bool shutdown_ = false;
  bool closed_ = false;
  bool* destroyed_ = nullptr;  // set while a handler callback runs
  size_t pending_writes_ = 0;  // requests submitted to libuv and not yet completed
  // Writes of this turn, not yet given to libuv, and their completions.
  std::vector<std::vector<uint8_t>> staged_;
  std::vector<WriteCallback> staged_done_;
  size_t staged_bytes_ = 0;
  bool shutdown_pending_ = false;  // Shutdown() waits for the staged writes
  // flush_token_ is shared with posted flushes: it is cleared when the stream dies first.
  std::shared_ptr<TcpStream*> flush_token_;
  bool flush_posted_ = false;  // a FlushStaged is posted and has not run
  uint64_t immediate_turn_ = ~uint64_t{0};  // the turn of the last immediate write
  char rx_buffer_[64 * 1024];
};

class TcpListener {
 public:
  using AcceptCallback = absl::AnyInvocable<void(std::unique_ptr<TcpStream>)>;
  // Listen binds |addr| (port 0 picks one) and calls |cb| with each accepted connection.
  static absl::StatusOr<std::unique_ptr<TcpListener>> Listen(Loop& loop, const SocketAddress& addr,
                                                             AcceptCallback cb, int backlog = 511);
  ~TcpListener() = default;
  SocketAddress local_address() const;

 private:
  TcpListener(Loop& loop, AcceptCallback cb) : loop_(loop), cb_(std::move(cb)) {}
  static void OnConnection(uv_stream_t* server, int status);

  Loop& loop_;
  UvHandle<uv_tcp_t> tcp_;
  AcceptCallback cb_;
};

}  // namespace p2proxy::net

#endif  // P2PROXY_NET_TCP_H_
