// Control channel framing: round trips of every message, every split of a stream, each class
// of refusal, and the memory rule (a claimed length is not allocated before its bytes arrive).
#include "control/framing.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "alloc_tracker.h"
#include "control/validate.h"
#include "google/protobuf/util/message_differencer.h"
#include "samples.h"

namespace {

using namespace p2proxy;
using control::EncodeFrame;
using control::Frame;
using control::FrameReader;
using control::kDefaultMaxFrameLen;
using Result = FrameReader::Result;
using Error = FrameReader::Error;
using control::testing::StartAllocTracking;
using control::testing::StopAllocTracking;
using google::protobuf::util::MessageDifferencer;

std::vector<uint8_t> Encode(const Frame& f) {
  auto bytes = EncodeFrame(f);
  REQUIRE(bytes.ok());
  return *std::move(bytes);
}

std::vector<uint8_t> Concat(const std::vector<Frame>& frames) {
  std::vector<uint8_t> out;
  for (const Frame& f : frames) {
    const std::vector<uint8_t> b = Encode(f);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

// Header gives the four length bytes for |len|.
std::vector<uint8_t> Header(uint32_t len) {
  return {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
          static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)};
}

std::vector<uint8_t> WithHeader(const std::vector<uint8_t>& body) {
  std::vector<uint8_t> out = Header(static_cast<uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

// Feed gives |chunk| to |reader| until it is used up, appending complete frames to |*out|.
// Returns the last result (kContinue when the chunk ended without an error).
Result Feed(FrameReader& reader, base::ByteSpan chunk, std::vector<Frame>* out) {
  while (true) {
    Frame f;
    const Result r = reader.Read(&chunk, &f);
    if (r == Result::kFrame) {
      out->push_back(std::move(f));
      continue;
    }
    if (r == Result::kContinue) REQUIRE(chunk.empty());
    return r;
  }
}

// ReadSplit reads |stream| cut at |cuts| (ascending offsets) and checks it ends cleanly.
std::vector<Frame> ReadSplit(const std::vector<uint8_t>& stream, const std::vector<size_t>& cuts) {
  FrameReader reader;
  std::vector<Frame> frames;
  size_t from = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t to = i < cuts.size() ? cuts[i] : stream.size();
    const Result r = Feed(reader, base::ByteSpan(stream).subspan(from, to - from), &frames);
    REQUIRE(r == Result::kContinue);
    from = to;
  }
  REQUIRE(reader.Finish().ok());
  return frames;
}

void RequireSameFrames(const std::vector<Frame>& got, const std::vector<Frame>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(MessageDifferencer::Equals(got[i], want[i]));
}

// ReadError feeds |bytes| at once and requires an error of |code|; returns the message.
std::string ReadError(const std::vector<uint8_t>& bytes, Error code,
                      size_t cap = kDefaultMaxFrameLen) {
  FrameReader reader(cap);
  std::vector<Frame> frames;
  REQUIRE(Feed(reader, bytes, &frames) == Result::kError);
  REQUIRE(reader.error_code() == code);
  REQUIRE_FALSE(reader.status().ok());
  return std::string(reader.error());
}

// ReadSeed reads a committed fuzz seed (fuzz/tools/control_seeds.py wrote it with protoc). Its
// first byte is the fuzzer's chunk size, not stream data.
std::vector<uint8_t> ReadSeed(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  INFO("seed " << path);
  REQUIRE(f.good());
  std::vector<uint8_t> seed(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>{});
  REQUIRE(!seed.empty());
  return std::vector<uint8_t>(seed.begin() + 1, seed.end());
}

std::filesystem::path SeedDir() {
  const char* root = std::getenv("P2P_TEST_SRCDIR");
  return std::filesystem::path(root ? root : ".") / "fuzz/corpus/control_frame";
}

TEST_CASE("the committed fuzz seeds are what their names say") {
  size_t valid_seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(SeedDir())) {
    const std::string name = entry.path().filename().string();
    const bool valid = absl::StartsWith(name, "valid_") || absl::StartsWith(name, "session_");
    if (!valid && !absl::StartsWith(name, "invalid_")) continue;
    INFO(name);
    FrameReader reader;
    std::vector<Frame> frames;
    REQUIRE(Feed(reader, ReadSeed(entry.path()), &frames) == Result::kContinue);
    REQUIRE(reader.Finish().ok());
    REQUIRE_FALSE(frames.empty());
    for (const Frame& f : frames) REQUIRE(control::ValidateFrame(f).ok() == valid);
    valid_seeds += valid;
  }
  REQUIRE(valid_seeds >= 16);
  // protoc's encoding of the seed is ours, byte for byte.
  REQUIRE(ReadSeed(SeedDir() / "valid_ping") == Encode(control::testing::SamplePing()));
  REQUIRE(ReadSeed(SeedDir() / "valid_hello") == Encode(control::testing::SampleHello()));

  const auto error_of = [](const char* name) {
    FrameReader reader;
    std::vector<Frame> frames;
    if (Feed(reader, ReadSeed(SeedDir() / name), &frames) == Result::kContinue) {
      (void)reader.Finish();
    }
    return reader.error_code();
  };
  CHECK(error_of("too_large") == Error::kTooLarge);
  CHECK(error_of("zero_length") == Error::kZeroLength);
  CHECK(error_of("garbage") == Error::kUnparseable);
  CHECK(error_of("not_utf8") == Error::kUnparseable);
  CHECK(error_of("unknown_type") == Error::kNoMessage);
  CHECK(error_of("truncated") == Error::kTruncated);
  CHECK(error_of("negative_enum") == Error::kNone);  // parses; ValidateFrame refuses it
}

TEST_CASE("every message type round trips through a frame") {
  const std::vector<Frame> samples = control::testing::AllSamples();
  // The samples cover every member of Frame's oneof, so a message added to the schema without
  // a sample fails here.
  const auto* oneof = Frame::descriptor()->FindOneofByName("message");
  REQUIRE(oneof != nullptr);
  for (int i = 0; i < oneof->field_count(); ++i) {
    const int number = oneof->field(i)->number();
    bool covered = false;
    for (const Frame& f : samples) covered |= f.message_case() == number;
    INFO(oneof->field(i)->name());
    REQUIRE(covered);
  }
  for (const Frame& sample : samples) {
    INFO(sample.ShortDebugString());
    REQUIRE(control::ValidateFrame(sample).ok());
    const std::vector<uint8_t> wire = Encode(sample);
    // The length prefix is the big-endian size of what follows.
    const size_t len =
        size_t{wire[0]} << 24 | size_t{wire[1]} << 16 | size_t{wire[2]} << 8 | wire[3];
    REQUIRE(len == wire.size() - 4);
    REQUIRE(len == sample.ByteSizeLong());

    FrameReader reader;
    base::ByteSpan in(wire);
    Frame got;
    REQUIRE(reader.Read(&in, &got) == Result::kFrame);
    REQUIRE(in.empty());
    REQUIRE(MessageDifferencer::Equals(got, sample));
    REQUIRE(Encode(got) == wire);
    REQUIRE(reader.frames_read() == 1);
    REQUIRE(reader.Finish().ok());
  }
}

TEST_CASE("a known encoding: Ping{id: 42}") {
  // Frame field 9 (ping), length 2: Ping field 1 (id) varint 42.
  REQUIRE(Encode(control::testing::SamplePing()) ==
          std::vector<uint8_t>{0, 0, 0, 4, 0x4A, 0x02, 0x08, 0x2A});
}

TEST_CASE("every split of a stream gives the same frames") {
  const std::vector<Frame> all = control::testing::AllSamples();
  const std::vector<uint8_t> stream = Concat(all);

  SECTION("one cut at every offset") {
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
      INFO("cut at " << cut);
      RequireSameFrames(ReadSplit(stream, {cut}), all);
    }
  }
  SECTION("one byte at a time") {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
    RequireSameFrames(ReadSplit(stream, cuts), all);
  }
  SECTION("every pair of cuts in a stream of small frames") {
    const std::vector<Frame> small = {
        control::testing::SamplePing(), control::testing::SampleHello(),
        control::testing::SampleSnapshotAck(), control::testing::SampleError(),
        control::testing::SamplePong()};
    const std::vector<uint8_t> s = Concat(small);
    for (size_t a = 0; a <= s.size(); ++a) {
      for (size_t b = a; b <= s.size(); ++b) {
        INFO("cuts at " << a << " and " << b);
        RequireSameFrames(ReadSplit(s, {a, b}), small);
      }
    }
  }
}

TEST_CASE("a frame that lies in one input is parsed in place, a split one is buffered") {
  const std::vector<uint8_t> wire = Encode(control::testing::SampleHello());
  FrameReader reader;
  std::vector<Frame> frames;
  REQUIRE(Feed(reader, wire, &frames) == Result::kContinue);
  REQUIRE(frames.size() == 1);
  REQUIRE(reader.buffer_capacity() == 0);

  REQUIRE(Feed(reader, base::ByteSpan(wire).first(6), &frames) == Result::kContinue);
  REQUIRE(reader.buffered() == 6);
  REQUIRE(Feed(reader, base::ByteSpan(wire).subspan(6), &frames) == Result::kContinue);
  REQUIRE(frames.size() == 2);
  REQUIRE(reader.buffered() == 0);
}

TEST_CASE("a length above the cap is refused as soon as the length is in") {
  SECTION("default cap") {
    const std::string error = ReadError(Header(kDefaultMaxFrameLen + 1), Error::kTooLarge);
    REQUIRE(error == "control: frame 1: length 1048577 is above the cap of 1048576 bytes");
  }
  SECTION("a cap from the constructor; a length at the cap is fine") {
    FrameReader reader(100);
    // An Error frame of exactly 100 bytes: 2 (Frame tag, length) + 2 (code) + 2 (message tag,
    // length) + 94.
    Frame f;
    f.mutable_error()->set_code(p2proxy::control::wire::ERROR_CODE_INTERNAL);
    f.mutable_error()->set_message(std::string(100 - 6, 'x'));
    REQUIRE(f.ByteSizeLong() == 100);
    std::vector<Frame> frames;
    REQUIRE(Feed(reader, Encode(f), &frames) == Result::kContinue);
    REQUIRE(frames.size() == 1);
    f.mutable_error()->mutable_message()->push_back('x');
    REQUIRE(EncodeFrame(f, 100).status().message() ==
            "control: a Frame of 101 bytes is above the cap of 100 bytes");
    std::vector<uint8_t> wire = *EncodeFrame(f);
    REQUIRE(Feed(reader, wire, &frames) == Result::kError);
    REQUIRE(reader.error_code() == Error::kTooLarge);
    REQUIRE(reader.error() == "control: frame 2: length 101 is above the cap of 100 bytes");
  }
  SECTION("the largest length the wire can say") {
    ReadError(Header(0xFFFFFFFF), Error::kTooLarge);
  }
  SECTION("a cap above the limit is lowered to it") {
    REQUIRE(FrameReader(size_t{1} << 40).max_frame_len() == control::kMaxFrameLenLimit);
    REQUIRE(FrameReader(0).max_frame_len() == control::kMaxFrameLenLimit);
  }
}

TEST_CASE("a claimed length is not allocated before its bytes arrive") {
  SECTION("refused length: nothing is buffered or allocated") {
    FrameReader reader;
    std::vector<Frame> frames;
    const std::vector<uint8_t> header = Header(0x7FFFFFFF);
    StartAllocTracking();
    const Result r = Feed(reader, header, &frames);
    const size_t largest = StopAllocTracking();
    REQUIRE(r == Result::kError);
    REQUIRE(reader.buffer_capacity() == 0);
    REQUIRE(largest < 1024);  // the error message, nothing the size of the claim
  }
  SECTION("a length at the cap with 10 bytes sent holds a few hundred bytes") {
    FrameReader reader;
    std::vector<uint8_t> start = Header(kDefaultMaxFrameLen);
    start.insert(start.end(), 10, 0x12);
    std::vector<Frame> frames;
    StartAllocTracking();
    const Result r = Feed(reader, start, &frames);
    const size_t largest = StopAllocTracking();
    REQUIRE(r == Result::kContinue);
    REQUIRE(reader.buffered() == 14);
    REQUIRE(reader.buffer_capacity() <= 256);
    REQUIRE(largest <= 256);
  }
  SECTION("the buffer grows with the bytes, never past twice what arrived nor the frame") {
    // A snapshot just under the cap, fed in 1000-byte chunks.
    Frame f;
    f.mutable_snapshot()->set_version(1);
    auto* site = f.mutable_snapshot()->mutable_site();
    while (f.ByteSizeLong() < kDefaultMaxFrameLen - 70000) {
      auto* c = site->add_certificates();
      c->set_resource("r");
      c->set_certificate_chain_pem(std::string(60000, 'c'));
    }
    const std::vector<uint8_t> wire = Encode(f);
    const size_t frame_len = wire.size() - 4;
    FrameReader reader;
    std::vector<Frame> frames;
    size_t fed = 0;
    while (fed < wire.size()) {
      const size_t n = std::min<size_t>(1000, wire.size() - fed);
      StartAllocTracking();
      const Result r = Feed(reader, base::ByteSpan(wire).subspan(fed, n), &frames);
      const size_t largest = StopAllocTracking();
      fed += n;
      REQUIRE(r == Result::kContinue);
      if (frames.empty()) {
        const size_t body = reader.buffered() - 4;
        REQUIRE(reader.buffer_capacity() <= std::max<size_t>(256, 2 * body));
        REQUIRE(reader.buffer_capacity() <= frame_len);
        REQUIRE(largest <= std::max<size_t>(256, 2 * body));
      }
    }
    REQUIRE(frames.size() == 1);
    REQUIRE(MessageDifferencer::Equals(frames[0], f));
    // A large buffer is given back once its frame is done.
    REQUIRE(reader.buffer_capacity() == 0);
  }
}

TEST_CASE("malformed streams are refused with a reason, and the reader stays failed") {
  SECTION("zero length") {
    REQUIRE(ReadError(Header(0), Error::kZeroLength) ==
            "control: frame 1: length 0 (a frame holds a message)");
  }
  SECTION("garbage that is not a Frame") {
    // A tag whose varint never ends.
    REQUIRE(ReadError(WithHeader({0xFF, 0xFF, 0xFF}), Error::kUnparseable) ==
            "control: frame 1: 3 bytes do not parse as a Frame");
    // A length-delimited field that runs past the end of the frame.
    ReadError(WithHeader({0x4A, 0x05, 0x08}), Error::kUnparseable);
    // A string that is not UTF-8 (proto3 requires it): Hello.node_id = "\xff".
    ReadError(WithHeader({0x1A, 0x03, 0x0A, 0x01, 0xFF}), Error::kUnparseable);
  }
  SECTION("no message set") {
    // An unknown field only: what a message type from a newer version looks like.
    REQUIRE(ReadError(WithHeader({0xA0, 0x06, 0x01}), Error::kNoMessage) ==
            "control: frame 1: unknown message type (field 100)");
    REQUIRE(EncodeFrame(Frame()).status().message() ==
            "control: cannot encode a frame with no message set");
  }
  SECTION("the second frame is the bad one, and the first still comes out") {
    std::vector<uint8_t> bytes = Encode(control::testing::SamplePing());
    const std::vector<uint8_t> bad = Header(0);
    bytes.insert(bytes.end(), bad.begin(), bad.end());
    FrameReader reader;
    std::vector<Frame> frames;
    REQUIRE(Feed(reader, bytes, &frames) == Result::kError);
    REQUIRE(frames.size() == 1);
    REQUIRE(reader.error() == "control: frame 2: length 0 (a frame holds a message)");
  }
  SECTION("after an error, even a good frame is an error") {
    FrameReader reader;
    std::vector<Frame> frames;
    REQUIRE(Feed(reader, Header(0), &frames) == Result::kError);
    REQUIRE(Feed(reader, Encode(control::testing::SamplePing()), &frames) == Result::kError);
    REQUIRE(frames.empty());
    REQUIRE(reader.error_code() == Error::kZeroLength);
    REQUIRE_FALSE(reader.Finish().ok());
  }
}

TEST_CASE("a stream that ends inside a frame is refused at Finish") {
  const std::vector<uint8_t> wire = Encode(control::testing::SampleHello());
  SECTION("inside the length") {
    FrameReader reader;
    std::vector<Frame> frames;
    REQUIRE(Feed(reader, base::ByteSpan(wire).first(3), &frames) == Result::kContinue);
    const absl::Status s = reader.Finish();
    REQUIRE(s.message() == "control: frame 1: stream ended after 3 of 4 length bytes");
    REQUIRE(reader.error_code() == Error::kTruncated);
  }
  SECTION("inside the body, after a whole frame") {
    FrameReader reader;
    std::vector<Frame> frames;
    REQUIRE(Feed(reader, wire, &frames) == Result::kContinue);
    REQUIRE(Feed(reader, base::ByteSpan(wire).first(wire.size() - 1), &frames) ==
            Result::kContinue);
    const absl::Status s = reader.Finish();
    REQUIRE(s.message() == absl::StrCat("control: frame 2: stream ended after ", wire.size() - 5,
                                        " of ", wire.size() - 4, " bytes"));
    REQUIRE(frames.size() == 1);
    // Failed for good.
    base::ByteSpan more(wire);
    Frame f;
    REQUIRE(reader.Read(&more, &f) == Result::kError);
  }
  SECTION("between frames is a clean end") {
    FrameReader reader;
    std::vector<Frame> frames;
    REQUIRE(Feed(reader, wire, &frames) == Result::kContinue);
    REQUIRE(reader.Finish().ok());
    REQUIRE(reader.error().empty());
  }
}

TEST_CASE("EncodeFrame refuses a frame above the cap") {
  Frame f = control::testing::SampleSiteSnapshot();
  f.mutable_snapshot()->mutable_site()->mutable_certificates(0)->set_certificate_chain_pem(
      std::string(kDefaultMaxFrameLen, 'c'));
  const auto encoded = EncodeFrame(f);
  REQUIRE(encoded.status().code() == absl::StatusCode::kInvalidArgument);
  REQUIRE(absl::StartsWith(encoded.status().message(), "control: a Frame of "));
  // With a larger cap on both ends, it goes through.
  const auto big = EncodeFrame(f, 2 * kDefaultMaxFrameLen);
  REQUIRE(big.ok());
  FrameReader reader(2 * kDefaultMaxFrameLen);
  std::vector<Frame> frames;
  REQUIRE(Feed(reader, *big, &frames) == Result::kContinue);
  REQUIRE(frames.size() == 1);
  REQUIRE(MessageDifferencer::Equals(frames[0], f));
}

}  // namespace
