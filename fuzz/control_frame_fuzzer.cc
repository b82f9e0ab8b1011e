// control_frame_fuzzer: the control channel's FrameReader and ValidateFrame on arbitrary bytes.
// Byte 0 picks the chunk size (1 to 256) the rest is fed in, so splits are fuzzed too. Every
// error must carry a message; every frame read must re-encode and re-parse to an equal frame,
// and re-encoding that must give the same bytes; the reader must hold no more than the cap.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "control/framing.h"
#include "control/validate.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/message_differencer.h"

using google::protobuf::util::MessageDifferencer;
using p2proxy::base::ByteSpan;
using p2proxy::control::EncodeFrame;
using p2proxy::control::Frame;
using p2proxy::control::FrameReader;

namespace {

// A small cap, so that the fuzzer also reaches "too large" and frames near the cap.
constexpr size_t kCap = 2048;

// CheckRoundTrip aborts unless |frame| encodes, reads back whole, equals itself, and encodes
// to the same bytes again.
void CheckRoundTrip(const Frame& frame) {
  // Re-encoding may grow a frame a little (an enum sent as a 5-byte varint of 0xFFFFFFFF is -1,
  // which protobuf writes in 10 bytes), so the round trip uses the largest cap.
  constexpr size_t kBig = p2proxy::control::kMaxFrameLenLimit;
  auto wire = EncodeFrame(frame, kBig);
  if (!wire.ok()) std::abort();
  FrameReader again(kBig);
  ByteSpan in(*wire);
  Frame copy;
  if (again.Read(&in, &copy) != FrameReader::Result::kFrame || !in.empty()) std::abort();
  if (!MessageDifferencer::Equals(frame, copy)) std::abort();
  auto wire2 = EncodeFrame(copy, kBig);
  if (!wire2.ok() || *wire2 != *wire) std::abort();
  // Validation is a property of the message, not of its encoding.
  if (p2proxy::control::ValidateFrame(frame).ok() != p2proxy::control::ValidateFrame(copy).ok()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs an ERROR line for a string that is not UTF-8; the reader reports it anyway.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = size_t{data[0]} + 1;
  ByteSpan rest(data + 1, size - 1);
  FrameReader reader(kCap);
  bool failed = false;
  while (!rest.empty() && !failed) {
    ByteSpan in = rest.first(std::min(chunk, rest.size()));
    rest.remove_prefix(in.size());
    while (true) {
      Frame frame;
      const FrameReader::Result r = reader.Read(&in, &frame);
      if (reader.buffered() > p2proxy::control::kFrameHeaderLen + kCap) std::abort();
      if (r == FrameReader::Result::kContinue) {
        if (!in.empty()) std::abort();
        break;
      }
      if (r == FrameReader::Result::kError) {
        if (reader.error().empty() || reader.error_code() == FrameReader::Error::kNone)
          std::abort();
        failed = true;
        break;
      }
      if (frame.message_case() == Frame::MESSAGE_NOT_SET) std::abort();
      const absl::Status valid = p2proxy::control::ValidateFrame(frame);
      if (!valid.ok() && valid.message().empty()) std::abort();
      CheckRoundTrip(frame);
    }
  }
  const absl::Status end = reader.Finish();
  if (!end.ok() && reader.error().empty()) std::abort();
  return 0;
}
