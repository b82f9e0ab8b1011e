// channel.cc: Connection, one end of a control channel connection.
#include "control/channel.h"

#include <openssl/mem.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "control/validate.h"

namespace p2proxy::control {
namespace {

// WithoutPrefix drops the "control: " that framing and validation errors start with, so the
// connection can put the peer in front.
std::string WithoutPrefix(absl::string_view s) {
  constexpr absl::string_view kPrefix = "control: ";
  if (s.substr(0, kPrefix.size()) == kPrefix) s.remove_prefix(kPrefix.size());
  return std::string(s);
}

// ErrorText fits |text| into Error.message: 1 to kMaxMessageLen bytes without control
// characters (our own reasons hold none, but a cut must not split a UTF-8 sequence).
std::string ErrorText(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f || u >= 0x80 ? '?' : c);
    if (out.size() == kMaxMessageLen) break;
  }
  if (out.empty()) out = "error";
  return out;
}

uint64_t Ms(absl::Duration d) { return static_cast<uint64_t>(std::max<int64_t>(0, absl::ToInt64Milliseconds(d))); }

}  // namespace

std::string_view CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeerClosed: return "peer_closed";
    case CloseReason::kLocal: return "local";
    case CloseReason::kBadFrame: return "bad_frame";
    case CloseReason::kOutOfOrder: return "out_of_order";
    case CloseReason::kPeerError: return "peer_error";
    case CloseReason::kIdleTimeout: return "idle_timeout";
    case CloseReason::kSendQueueFull: return "send_queue_full";
    case CloseReason::kStreamError: return "stream_error";
  }
  return "unknown";
}

Connection::Connection(net::Loop& loop, std::unique_ptr<net::Stream> stream, ConnectionOptions options)
    : loop_(loop),
      stream_(std::move(stream)),
      options_(std::move(options)),
      reader_(options_.max_frame_len),
      order_(options_.role, options_.node_has_certificate, options_.node_id),
      liveness_timer_(loop),
      close_timer_(loop),
      alive_(std::make_shared<Connection*>(this)) {}

Connection::~Connection() {
  if (destroyed_) *destroyed_ = true;
  *alive_ = nullptr;
  if (stream_) {
    // We may be inside one of the stream's callbacks: close it now, delete it later.
    stream_->Close();
    loop_.DeferDelete(std::move(stream_));
  }
}

std::string Connection::Prefix() const { return absl::StrCat("control: peer ", options_.peer, ": "); }

void Connection::Count(uint64_t ChannelCounters::*field, uint64_t n) {
  counters_.*field += n;
  if (options_.counters) options_.counters->*field += n;
}

void Connection::Start(Handler* handler) {
  handler_ = handler;
  last_rx_ms_ = loop_.NowMs();
  last_ping_ms_ = last_rx_ms_;
  if (state_ == State::kOpen) ArmLiveness();
  stream_->SetHandler(this);
}

void Connection::OnData(base::ByteSpan data) {
  Count(&ChannelCounters::bytes_in, data.size());
  if (state_ != State::kOpen) return;  // closing: what the peer still sends is dropped
  base::ByteSpan in = data;
  while (true) {
    wire::Frame frame;
    const FrameReader::Result r = reader_.Read(&in, &frame);
    if (r == FrameReader::Result::kContinue) return;
    if (r == FrameReader::Result::kError) {
      const auto code = reader_.error_code() == FrameReader::Error::kNoMessage ? wire::ERROR_CODE_UNSUPPORTED
                                                                                : wire::ERROR_CODE_BAD_FRAME;
      Refuse(CloseReason::kBadFrame, code, WithoutPrefix(std::string(reader_.error())));
      return;
    }
    if (!HandleFrame(std::move(frame))) return;
  }
}

bool Connection::HandleFrame(wire::Frame frame) {
  Count(&ChannelCounters::frames_in);
  last_rx_ms_ = loop_.NowMs();
  const std::string where = absl::StrCat("frame ", reader_.frames_read(), ": ");
  if (absl::Status st = ValidateFrame(frame); !st.ok()) {
    Refuse(CloseReason::kBadFrame, wire::ERROR_CODE_BAD_FRAME, absl::StrCat(where, WithoutPrefix(st.message())));
    return false;
  }
  if (absl::Status st = order_.OnReceive(frame); !st.ok()) {
    Refuse(CloseReason::kOutOfOrder, wire::ERROR_CODE_BAD_FRAME, absl::StrCat(where, st.message()));
    return false;
  }
  switch (frame.message_case()) {
    case wire::Frame::kPing: {
      wire::Frame pong;
      pong.mutable_pong()->set_id(frame.ping().id());
      if (Write(pong).ok()) Count(&ChannelCounters::pongs_sent);
      return state_ == State::kOpen;
    }
    case wire::Frame::kPong:
      return true;
    default:
      break;
  }
  const bool is_error = frame.has_error();
  absl::Status peer_error;
  if (is_error) {
    peer_error = absl::UnavailableError(absl::StrCat(Prefix(), "sent error ",
                                                     wire::ErrorCode_Name(frame.error().code()), ": ",
                                                     frame.error().message()));
  }
  if (handler_) {
    bool destroyed = false;
    destroyed_ = &destroyed;
    handler_->OnFrame(std::move(frame));
    if (destroyed) return false;
    destroyed_ = nullptr;
  }
  if (is_error && state_ == State::kOpen) {
    // The sender closes after an Error: no answer, just close.
    P2P_LOG(kInfo, "control.close").Kv("peer", options_.peer).Kv("reason", "peer_error").Kv("error", peer_error.message());
    BeginClose(CloseReason::kPeerError, peer_error, nullptr);
  }
  return state_ == State::kOpen;
}

void Connection::OnEnd() {
  if (state_ == State::kClosing) {
    FinishClose();  // the peer has read our Error and closed
    return;
  }
  if (state_ != State::kOpen) return;
  if (absl::Status st = reader_.Finish(); !st.ok()) {
    const std::string reason = absl::StrCat(Prefix(), WithoutPrefix(st.message()));
    P2P_LOG(kWarn, "control.close").Kv("peer", options_.peer).Kv("reason", "bad_frame").Kv("error", reason);
    BeginClose(CloseReason::kBadFrame, absl::InvalidArgumentError(reason), nullptr);
    return;
  }
  P2P_LOG(kInfo, "control.close").Kv("peer", options_.peer).Kv("reason", "peer_closed");
  BeginClose(CloseReason::kPeerClosed, absl::UnavailableError(absl::StrCat(Prefix(), "closed the connection")),
             nullptr);
}

void Connection::OnError(const absl::Status& status) {
  if (state_ == State::kClosing) {
    FinishClose();
    return;
  }
  if (state_ != State::kOpen) return;
  const std::string reason = absl::StrCat(Prefix(), status.message());
  P2P_LOG(kWarn, "control.close").Kv("peer", options_.peer).Kv("reason", "stream_error").Kv("error", reason);
  BeginClose(CloseReason::kStreamError, absl::UnavailableError(reason), nullptr);
}

absl::Status Connection::Write(const wire::Frame& frame) {
  absl::StatusOr<std::vector<uint8_t>> bytes = EncodeFrame(frame, options_.max_frame_len);
  if (!bytes.ok()) return bytes.status();
  Count(&ChannelCounters::frames_out);
  Count(&ChannelCounters::bytes_out, bytes->size());
  // Write, not WriteOwned: TLS encrypts from our buffer at once, so the plaintext (which may
  // hold keys) can be wiped here instead of lingering in a queue.
  stream_->Write(*bytes);
  OPENSSL_cleanse(bytes->data(), bytes->size());
  return absl::OkStatus();
}

absl::Status Connection::Send(const wire::Frame& frame) {
  if (state_ != State::kOpen) return absl::FailedPreconditionError(absl::StrCat(Prefix(), "connection is closed"));
  // Validate what order allows before touching the state machine: a frame that would not
  // encode must not advance it.
  FrameOrder probe = order_;
  if (absl::Status st = probe.OnSend(frame); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Prefix(), "send: ", st.message()));
  }
  if (absl::Status st = Write(frame); !st.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(Prefix(), "send: ", WithoutPrefix(st.message())));
  }
  order_ = std::move(probe);
  if (stream_->WriteQueueSize() > options_.max_send_queue) {
    const std::string reason = absl::StrCat(Prefix(), "more than ", options_.max_send_queue,
                                            " bytes unsent (the peer does not read)");
    P2P_LOG(kWarn, "control.close").Kv("peer", options_.peer).Kv("reason", "send_queue_full").Kv("error", reason);
    BeginClose(CloseReason::kSendQueueFull, absl::ResourceExhaustedError(reason), nullptr);
    return absl::ResourceExhaustedError(reason);
  }
  return absl::OkStatus();
}

void Connection::Close(wire::ErrorCode code, std::string_view message) {
  if (state_ != State::kOpen) return;
  wire::Frame error;
  error.mutable_error()->set_code(code);
  error.mutable_error()->set_message(ErrorText(message));
  P2P_LOG(kInfo, "control.close").Kv("peer", options_.peer).Kv("reason", "local").Kv("error", std::string(message));
  BeginClose(CloseReason::kLocal,
             absl::CancelledError(absl::StrCat(Prefix(), "closed here: ", wire::ErrorCode_Name(code), ": ", std::string(message))),
             &error);
}

void Connection::Refuse(CloseReason why, wire::ErrorCode code, const std::string& reason) {
  const std::string full = absl::StrCat(Prefix(), reason);
  P2P_LOG(kWarn, "control.close").Kv("peer", options_.peer).Kv("reason", std::string(CloseReasonName(why))).Kv("error", full);
  wire::Frame error;
  error.mutable_error()->set_code(code);
  error.mutable_error()->set_message(ErrorText(reason));
  BeginClose(why, absl::InvalidArgumentError(full), &error);
}

void Connection::BeginClose(CloseReason why, absl::Status status, const wire::Frame* error) {
  if (state_ != State::kOpen) return;
  close_reason_ = why;
  close_status_ = std::move(status);
  counters_.closes[static_cast<size_t>(why)]++;
  if (options_.counters) options_.counters->closes[static_cast<size_t>(why)]++;
  liveness_timer_.Stop();
  if (!error) {
    FinishClose();
    return;
  }
  state_ = State::kClosing;
  (void)Write(*error);  // an Error we built always encodes
  stream_->Shutdown();
  // Keep reading (and dropping) until the peer closes, so it gets our Error before any reset.
  close_timer_.Start(options_.close_timeout, [this] { FinishClose(); });
}

void Connection::FinishClose() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  liveness_timer_.Stop();
  close_timer_.Stop();
  stream_->Close();
  loop_.Post([alive = alive_] {
    Connection* self = *alive;
    if (!self || !self->handler_) return;
    self->handler_->OnClosed(self->close_status_);
  });
}

void Connection::ArmLiveness() {
  if (options_.ping_interval <= absl::ZeroDuration()) return;
  const uint64_t interval = std::max<uint64_t>(1, Ms(options_.ping_interval));
  const uint64_t now = loop_.NowMs();
  const uint64_t dead_at = last_rx_ms_ + kDeadAfterIntervals * interval;
  const uint64_t ping_at = std::max(last_rx_ms_, last_ping_ms_) + interval;
  const uint64_t at = std::min(dead_at, ping_at);
  liveness_timer_.Start(absl::Milliseconds(at > now ? at - now : 0), [this] { OnLivenessTimer(); });
}

void Connection::OnLivenessTimer() {
  if (state_ != State::kOpen) return;
  const uint64_t interval = std::max<uint64_t>(1, Ms(options_.ping_interval));
  const uint64_t now = loop_.NowMs();
  if (now - last_rx_ms_ >= kDeadAfterIntervals * interval) {
    const std::string reason = absl::StrCat(Prefix(), "nothing received for ",
                                            absl::FormatDuration(absl::Milliseconds(now - last_rx_ms_)));
    P2P_LOG(kWarn, "control.close").Kv("peer", options_.peer).Kv("reason", "idle_timeout").Kv("error", reason);
    BeginClose(CloseReason::kIdleTimeout, absl::DeadlineExceededError(reason), nullptr);
    return;
  }
  if (now - last_rx_ms_ >= interval && now - last_ping_ms_ >= interval) {
    wire::Frame ping;
    ping.mutable_ping()->set_id(next_ping_id_++);
    last_ping_ms_ = now;
    if (Write(ping).ok()) Count(&ChannelCounters::pings_sent);
  }
  ArmLiveness();
}

}  // namespace p2proxy::control
