// channel.h: one end of a control channel connection: frames over a connected Stream (TLS in
// production, anything in tests), checked, ordered, kept alive and bounded.
//
// Timers (net::Timer on the connection's loop, so tests drive them with manual time):
// - liveness: when nothing has arrived for ping_interval, a Ping goes out (again every
//   ping_interval while it stays quiet); when nothing has arrived for 3 x ping_interval, the
//   connection is closed (kIdleTimeout). A peer's Ping is answered with a Pong at once.
// - close: Close() and every refusal send an Error frame, half-close, and wait for the peer to
//   close (reading and dropping what it sends) at most close_timeout before closing anyway.
#ifndef P2PROXY_CONTROL_CHANNEL_H_
#define P2PROXY_CONTROL_CHANNEL_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "control/control.pb.h"
#include "control/framing.h"
#include "control/order.h"
#include "net/loop.h"
#include "net/stream.h"
#include "net/timer.h"

namespace p2proxy::control {

// kControlAlpn is the channel's ALPN protocol id (DESIGN.md §5).
inline constexpr std::string_view kControlAlpn = "p2proxy-ctl/1";

// Implementation limits and defaults.
inline constexpr size_t kDefaultMaxSendQueue = size_t{16} << 20;  // unsent bytes per connection
inline constexpr absl::Duration kDefaultPingInterval = absl::Seconds(15);
inline constexpr int kDeadAfterIntervals = 3;  // silent for 3 intervals: closed
inline constexpr absl::Duration kDefaultCloseTimeout = absl::Seconds(2);

// CloseReason is why a connection closed, for counters.
enum class CloseReason {
  kPeerClosed,     // the peer ended the stream between frames
  kLocal,          // Close() was called
  kBadFrame,       // malformed, oversized, unknown or invalid (ValidateFrame) frame
  kOutOfOrder,     // a frame from the wrong side or at the wrong time (FrameOrder)
  kPeerError,      // the peer sent Error
  kIdleTimeout,    // nothing received for 3 ping intervals
  kSendQueueFull,  // the peer does not read and our unsent bytes passed the cap
  kStreamError,    // the stream failed (reset, TLS alert, truncation)
};
inline constexpr size_t kNumCloseReasons = 8;
std::string_view CloseReasonName(CloseReason reason);

// ChannelCounters counts a connection's traffic; a listener or daemon may share one set among
// its connections (ConnectionOptions::counters).
struct ChannelCounters {
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t pings_sent = 0;
  uint64_t pongs_sent = 0;
  std::array<uint64_t, kNumCloseReasons> closes{};  // indexed by CloseReason
  uint64_t closes_for(CloseReason r) const { return closes[static_cast<size_t>(r)]; }
};

struct ConnectionOptions {
  Role role = Role::kServer;
  // peer names the other end in log lines and errors ("1.2.3.4:5", or "host:443 (1.2.3.4:443)").
  std::string peer;
  // node_has_certificate, node_id: see FrameOrder.
  bool node_has_certificate = false;
  std::string node_id;
  size_t max_frame_len = kDefaultMaxFrameLen;
  size_t max_send_queue = kDefaultMaxSendQueue;
  absl::Duration ping_interval = kDefaultPingInterval;  // zero: no Pings, no idle timeout
  absl::Duration close_timeout = kDefaultCloseTimeout;
  ChannelCounters* counters = nullptr;  // optional, shared; must outlive the connection
};

// Connection is one end of a control connection. Every frame received is cut by a FrameReader
// (capped before buffering), checked by ValidateFrame and FrameOrder, and only then given to
// the handler; Ping and Pong are handled here. A refused frame closes the connection after
// an Error{BAD_FRAME} (UNSUPPORTED for an unknown message type), logged as
//   control.close peer=1.2.3.4:5 reason=bad_frame error="control: peer 1.2.3.4:5: frame 3: ..."
// Nothing a peer sends can crash it or make it hold more than one frame and the send queue.
//
// Lifetime: the handler may destroy the connection inside OnFrame and OnClosed. Destroying it
// closes the stream at once, with no callback. OnClosed runs once, on a later turn than the
// event that closed the connection (never inside Send or Close).
class Connection final : private net::StreamHandler {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // OnFrame: a valid frame, in order (never Ping or Pong; Error frames are delivered, then
    // the connection closes with kPeerError).
    virtual void OnFrame(wire::Frame frame) = 0;
    // OnClosed: the connection is closed; |reason| says why (OK never: even a clean end by the
    // peer is Unavailable "control: peer X: closed the connection").
    virtual void OnClosed(const absl::Status& reason) = 0;
  };

  // The connection reads nothing until Start.
  Connection(net::Loop& loop, std::unique_ptr<net::Stream> stream, ConnectionOptions options);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Start sets the handler (not owned; it must outlive the connection or destroy it) and starts
  // reading and the liveness timer.
  void Start(Handler* handler);

  // Send encodes |frame| and queues it. Errors: the connection is closing or closed
  // (FailedPrecondition), the frame breaks FrameOrder or does not encode (InvalidArgument;
  // nothing is sent, the connection stays open), or the send queue passed max_send_queue
  // (ResourceExhausted; the connection closes with kSendQueueFull). The encoded bytes are
  // wiped once handed to the stream, since a frame may carry keys.
  absl::Status Send(const wire::Frame& frame);

  // Close sends Error{code, message} and closes once the peer closes too, or after
  // close_timeout. |message| must hold no secret. OnClosed follows with reason kLocal.
  void Close(wire::ErrorCode code, std::string_view message);

  bool open() const { return state_ == State::kOpen; }
  const ChannelCounters& counters() const { return counters_; }
  const ConnectionOptions& options() const { return options_; }
  const FrameOrder& order() const { return order_; }
  // close_reason is meaningful once !open().
  CloseReason close_reason() const { return close_reason_; }

 private:
  enum class State { kOpen, kClosing, kClosed };

  // net::StreamHandler
  void OnData(base::ByteSpan data) override;
  void OnEnd() override;
  void OnError(const absl::Status& status) override;

  // HandleFrame returns false if reading must stop (closed, closing or destroyed).
  bool HandleFrame(wire::Frame frame);
  absl::Status Write(const wire::Frame& frame);
  // Refuse logs |reason| (already prefixed), sends Error{code} and closes.
  void Refuse(CloseReason why, wire::ErrorCode code, const std::string& reason);
  // BeginClose: with |error| set, send it and wait for the peer; otherwise close now.
  void BeginClose(CloseReason why, absl::Status status, const wire::Frame* error);
  void FinishClose();
  void ArmLiveness();
  void OnLivenessTimer();
  void Count(uint64_t ChannelCounters::*field, uint64_t n = 1);
  std::string Prefix() const;  // "control: peer X: "

  net::Loop& loop_;
  std::unique_ptr<net::Stream> stream_;
  ConnectionOptions options_;
  FrameReader reader_;
  FrameOrder order_;
  Handler* handler_ = nullptr;
  State state_ = State::kOpen;
  CloseReason close_reason_ = CloseReason::kLocal;
  absl::Status close_status_;
  ChannelCounters counters_;
  net::Timer liveness_timer_;
  net::Timer close_timer_;
  uint64_t last_rx_ms_ = 0;
  uint64_t last_ping_ms_ = 0;
  uint64_t next_ping_id_ = 1;
  bool* destroyed_ = nullptr;  // set while the handler runs
  std::shared_ptr<Connection*> alive_;  // shared with posted tasks; cleared by the destructor
};

}  // namespace p2proxy::control

#endif  // P2PROXY_CONTROL_CHANNEL_H_
