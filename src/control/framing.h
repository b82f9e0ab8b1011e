// framing.h: control channel frames on a byte stream: a 32-bit big-endian length, then that many
// bytes of one serialized wire::Frame (DESIGN.md §5, docs/control.md).
#ifndef P2PROXY_CONTROL_FRAMING_H_
#define P2PROXY_CONTROL_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/bytes.h"
#include "control/control.pb.h"

namespace p2proxy::control {

using wire::Frame;

// Wire constants.
inline constexpr size_t kFrameHeaderLen = 4;  // the big-endian length

// Implementation limits. The default cap holds a snapshot for a site with a few hundred https
// resources (a certificate chain and key are 2 to 4 KiB of PEM); a server with bigger sites
// raises it on both ends. Caps above kMaxFrameLenLimit are lowered to it: protobuf parses at
// most 2 GiB, and one frame should never need more than this.
inline constexpr size_t kDefaultMaxFrameLen = size_t{1} << 20;
inline constexpr size_t kMaxFrameLenLimit = size_t{64} << 20;

// EncodeFrame returns |frame| serialized behind its length. Errors (InvalidArgument, prefixed
// "control: "): the frame has no message set, or its serialized size is above |max_frame_len|
// (the receiver would refuse it). The bytes may hold secrets (a certificate key); the caller
// wipes them once sent if so.
absl::StatusOr<std::vector<uint8_t>> EncodeFrame(const Frame& frame,
                                                 size_t max_frame_len = kDefaultMaxFrameLen);

// FrameReader cuts a byte stream into frames. Feed it whatever arrived, split anywhere: Read
// consumes bytes from the front of the input and says kFrame each time one frame is complete
// (call it again with the rest), kContinue once the input is used up without completing a
// frame (its bytes are kept), or kError. A frame that lies wholly in one input is parsed in
// place; only a frame split across inputs is copied, into a buffer that grows with the bytes
// that arrive and never beyond the frame's length, so a peer that claims a large length and
// sends nothing costs nothing. After kError every call returns kError: the caller logs
// error(), counts error_code() and closes the connection.
//
// Refused, in order of detection: a length of zero, a length above the cap (as soon as the
// four length bytes are in), bytes that do not parse as a Frame, and a Frame with no message
// set (which is also what a message type this build does not know looks like). Finish, at the
// end of the stream, refuses a partial frame. Semantic checks are ValidateFrame's
// (control/validate.h); the reader does not call it.
//
// Buffered bytes are wiped (OPENSSL_cleanse) when a frame is done and when the reader dies:
// a snapshot carries certificate keys.
class FrameReader {
 public:
  enum class Result { kContinue, kFrame, kError };
  // Error names why the stream was refused, for the caller's counters.
  enum class Error {
    kNone,
    kZeroLength,   // a length of 0
    kTooLarge,     // a length above the cap
    kUnparseable,  // the bytes are not a serialized Frame
    kNoMessage,    // a Frame with its oneof unset, or set to a type this build does not know
    kTruncated,    // the stream ended inside a frame
  };

  // |max_frame_len| is the cap on a frame's length (the bytes after the length field); 0 and
  // values above kMaxFrameLenLimit are taken as kMaxFrameLenLimit.
  explicit FrameReader(size_t max_frame_len = kDefaultMaxFrameLen);
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Read takes bytes from the front of |*input| and advances it past what it used. kFrame:
  // |*frame| holds the next frame (it is cleared first) and |*input| may still hold bytes.
  // kContinue: |*input| is empty; feed more. kError: see error(); |*frame| is unspecified.
  Result Read(base::ByteSpan* input, Frame* frame);

  // Finish tells the reader the stream ended. OK if it ended between frames; otherwise the
  // reader fails with kTruncated (or is already failed) and the error is returned.
  absl::Status Finish();

  // error is, after kError, one line saying what was wrong and at which frame
  // ("control: frame 3: length 2000000 is above the cap of 1048576 bytes"); else empty.
  std::string_view error() const { return error_; }
  Error error_code() const { return error_code_; }
  // status is error() as InvalidArgument, or OK.
  absl::Status status() const;

  size_t max_frame_len() const { return max_frame_len_; }
  // frames_read counts the frames returned with kFrame.
  uint64_t frames_read() const { return frames_read_; }
  // buffered is the number of bytes held for an incomplete frame (length field included);
  // buffer_capacity the memory reserved for them. For tests of the growth rule.
  size_t buffered() const { return header_len_ + body_.size(); }
  size_t buffer_capacity() const { return body_.capacity(); }

 private:
  Result Fail(Error code, std::string message);
  // Append copies |data| to body_, growing it geometrically but never past frame_len_.
  void Append(base::ByteSpan data);
  // Parse parses one complete frame body and resets for the next frame.
  Result Parse(base::ByteSpan body, Frame* frame);
  // ResetBuffer wipes body_ and gives back its memory if it grew large.
  void ResetBuffer();

  size_t max_frame_len_;
  uint8_t header_[kFrameHeaderLen] = {};
  size_t header_len_ = 0;      // bytes of header_ received
  size_t frame_len_ = 0;       // the current frame's length, once header_len_ == 4
  std::vector<uint8_t> body_;  // the current frame's bytes, when split across inputs
  uint64_t frames_read_ = 0;
  bool failed_ = false;
  Error error_code_ = Error::kNone;
  std::string error_;
};

}  // namespace p2proxy::control

#endif  // P2PROXY_CONTROL_FRAMING_H_
