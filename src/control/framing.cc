// framing.cc: the control channel's length-prefixed frames.
#include "control/framing.h"

#include <openssl/mem.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/unknown_field_set.h"

namespace p2proxy::control {
namespace {

// Once a frame is done, a buffer that grew above this is given back rather than kept for the
// next split frame: most frames are small, and a reader per connection should not pin a
// snapshot's worth of memory.
constexpr size_t kKeepBufferCapacity = 64 * 1024;
// The first allocation for a split frame: enough for most non-snapshot frames at once.
constexpr size_t kInitialBufferCapacity = 256;

size_t EffectiveCap(size_t max_frame_len) {
  return max_frame_len == 0 || max_frame_len > kMaxFrameLenLimit ? kMaxFrameLenLimit
                                                                 : max_frame_len;
}

}  // namespace

absl::StatusOr<std::vector<uint8_t>> EncodeFrame(const Frame& frame, size_t max_frame_len) {
  if (frame.message_case() == Frame::MESSAGE_NOT_SET) {
    return absl::InvalidArgumentError("control: cannot encode a frame with no message set");
  }
  const size_t cap = EffectiveCap(max_frame_len);
  const size_t len = frame.ByteSizeLong();
  if (len > cap) {
    return absl::InvalidArgumentError(absl::StrCat("control: a ", Frame::descriptor()->name(),
                                                   " of ", len, " bytes is above the cap of ", cap,
                                                   " bytes"));
  }
  std::vector<uint8_t> out(kFrameHeaderLen + len);
  out[0] = static_cast<uint8_t>(len >> 24);
  out[1] = static_cast<uint8_t>(len >> 16);
  out[2] = static_cast<uint8_t>(len >> 8);
  out[3] = static_cast<uint8_t>(len);
  // ByteSizeLong above cached the sizes, and a set oneof message takes at least its tag and
  // length byte, so len > 0 and the frame is never one the reader refuses as empty.
  frame.SerializeWithCachedSizesToArray(out.data() + kFrameHeaderLen);
  return out;
}

FrameReader::FrameReader(size_t max_frame_len) : max_frame_len_(EffectiveCap(max_frame_len)) {}

FrameReader::~FrameReader() { OPENSSL_cleanse(body_.data(), body_.size()); }

absl::Status FrameReader::status() const {
  return failed_ ? absl::InvalidArgumentError(error_) : absl::OkStatus();
}

FrameReader::Result FrameReader::Fail(Error code, std::string message) {
  failed_ = true;
  error_code_ = code;
  error_ = std::move(message);
  ResetBuffer();
  header_len_ = 0;
  return Result::kError;
}

void FrameReader::ResetBuffer() {
  OPENSSL_cleanse(body_.data(), body_.size());
  body_.clear();
  if (body_.capacity() > kKeepBufferCapacity) std::vector<uint8_t>().swap(body_);
}

void FrameReader::Append(base::ByteSpan data) {
  const size_t need = body_.size() + data.size();  // <= frame_len_: Read takes no more
  if (need > body_.capacity()) {
    // Geometric growth, so copying stays linear in the frame's size, capped at the frame's
    // length: the memory held is never more than max(256, twice what arrived) bytes, nor more
    // than the frame needs. The old buffer is wiped before it is freed.
    const size_t grown = std::max({need, 2 * body_.capacity(), kInitialBufferCapacity});
    std::vector<uint8_t> bigger;
    bigger.reserve(std::min(grown, frame_len_));
    bigger.assign(body_.begin(), body_.end());
    OPENSSL_cleanse(body_.data(), body_.size());
    body_.swap(bigger);
  }
  body_.insert(body_.end(), data.begin(), data.end());
}

FrameReader::Result FrameReader::Read(base::ByteSpan* input, Frame* frame) {
  if (failed_) return Result::kError;
  const uint64_t index = frames_read_ + 1;  // for messages: frames count from 1

  if (header_len_ < kFrameHeaderLen) {
    const size_t take = std::min(kFrameHeaderLen - header_len_, input->size());
    std::copy_n(input->begin(), take, header_ + header_len_);
    header_len_ += take;
    input->remove_prefix(take);
    if (header_len_ < kFrameHeaderLen) return Result::kContinue;
    frame_len_ = size_t{header_[0]} << 24 | size_t{header_[1]} << 16 | size_t{header_[2]} << 8 |
                 size_t{header_[3]};
    // Checked before a byte of the body is buffered: the claimed length alone costs nothing.
    if (frame_len_ == 0) {
      return Fail(Error::kZeroLength,
                  absl::StrCat("control: frame ", index, ": length 0 (a frame holds a message)"));
    }
    if (frame_len_ > max_frame_len_) {
      return Fail(Error::kTooLarge,
                  absl::StrCat("control: frame ", index, ": length ", frame_len_,
                               " is above the cap of ", max_frame_len_, " bytes"));
    }
  }

  if (body_.empty() && input->size() >= frame_len_) {
    // The whole body is in this input: parse it in place.
    const base::ByteSpan body = input->first(frame_len_);
    input->remove_prefix(frame_len_);
    return Parse(body, frame);
  }
  const size_t take = std::min(frame_len_ - body_.size(), input->size());
  Append(input->first(take));
  input->remove_prefix(take);
  if (body_.size() < frame_len_) return Result::kContinue;
  return Parse(body_, frame);
}

FrameReader::Result FrameReader::Parse(base::ByteSpan body, Frame* frame) {
  const uint64_t index = frames_read_ + 1;
  frame->Clear();
  // frame_len_ <= kMaxFrameLenLimit, so the size fits an int.
  const bool parsed = frame->ParseFromArray(body.data(), static_cast<int>(body.size()));
  header_len_ = 0;
  ResetBuffer();  // body may point into body_: it is not used past this line
  if (!parsed) {
    return Fail(Error::kUnparseable, absl::StrCat("control: frame ", index, ": ", frame_len_,
                                                  " bytes do not parse as a Frame"));
  }
  if (frame->message_case() == Frame::MESSAGE_NOT_SET) {
    // A Frame field this build does not know lands among the unknown fields: name it, so a
    // version mismatch reads as one.
    const google::protobuf::UnknownFieldSet& unknown =
        frame->GetReflection()->GetUnknownFields(*frame);
    if (unknown.field_count() > 0) {
      return Fail(Error::kNoMessage,
                  absl::StrCat("control: frame ", index, ": unknown message type (field ",
                               unknown.field(0).number(), ")"));
    }
    return Fail(Error::kNoMessage, absl::StrCat("control: frame ", index, ": no message set"));
  }
  ++frames_read_;
  return Result::kFrame;
}

absl::Status FrameReader::Finish() {
  if (failed_) return status();
  if (header_len_ == 0) return absl::OkStatus();
  const uint64_t index = frames_read_ + 1;
  if (header_len_ < kFrameHeaderLen) {
    Fail(Error::kTruncated, absl::StrCat("control: frame ", index, ": stream ended after ",
                                         header_len_, " of ", kFrameHeaderLen, " length bytes"));
  } else {
    Fail(Error::kTruncated, absl::StrCat("control: frame ", index, ": stream ended after ",
                                         body_.size(), " of ", frame_len_, " bytes"));
  }
  return status();
}

}  // namespace p2proxy::control
