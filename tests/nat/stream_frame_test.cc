// stream_frame_test.cc: WireGuard-over-TLS framing splits any chunking of a stream into the
// same messages, refuses lengths out of bounds for good, and its pseudo endpoints round-trip
// without being taken for relay endpoints or real addresses.
#include "nat/stream_frame.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace p2proxy {
namespace {

std::vector<uint8_t> Message(size_t n, uint8_t fill) { return std::vector<uint8_t>(n, fill); }

std::vector<std::vector<uint8_t>> FeedInPieces(nat::StreamFrameReader& r, const std::vector<uint8_t>& stream,
                                               size_t piece, nat::StreamFrameReader::Result* last) {
  std::vector<std::vector<uint8_t>> got;
  *last = nat::StreamFrameReader::Result::kOk;
  for (size_t at = 0; at < stream.size(); at += piece) {
    const size_t n = std::min(piece, stream.size() - at);
    *last = r.Feed(base::ByteSpan(stream.data() + at, n),
                   [&](base::ByteSpan m) { got.emplace_back(m.begin(), m.end()); });
    if (*last != nat::StreamFrameReader::Result::kOk) break;
  }
  return got;
}

TEST_CASE("stream frames: any split of the stream gives the same messages", "[nat]") {
  const std::vector<std::vector<uint8_t>> sent = {Message(32, 1), Message(148, 2), Message(1460, 3),
                                                  Message(nat::kMaxStreamMessage, 4), Message(92, 5)};
  std::vector<uint8_t> stream;
  for (const auto& m : sent) REQUIRE(nat::AppendStreamFrame(m, &stream));
  CHECK(stream.size() == 32 + 148 + 1460 + nat::kMaxStreamMessage + 92 + 5 * 2);
  for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{31}, size_t{1000}, size_t{4096}, stream.size()}) {
    nat::StreamFrameReader r;
    nat::StreamFrameReader::Result last;
    const auto got = FeedInPieces(r, stream, piece, &last);
    INFO("pieces of " << piece);
    CHECK(last == nat::StreamFrameReader::Result::kOk);
    CHECK(got == sent);
    CHECK(r.buffered() == 0);
    CHECK(r.messages() == sent.size());
  }
}

TEST_CASE("stream frames: a message's span outlives the call until the next Feed", "[nat]") {
  std::vector<uint8_t> stream;
  REQUIRE(nat::AppendStreamFrame(Message(100, 7), &stream));
  REQUIRE(nat::AppendStreamFrame(Message(40, 8), &stream));
  nat::StreamFrameReader r;
  std::vector<base::ByteSpan> spans;
  // The first message completes from the reader's buffer, the second straight from the data.
  REQUIRE(r.Feed(base::ByteSpan(stream.data(), 50), [&](base::ByteSpan m) { spans.push_back(m); }) ==
          nat::StreamFrameReader::Result::kOk);
  CHECK(spans.empty());
  REQUIRE(r.Feed(base::ByteSpan(stream.data() + 50, stream.size() - 50), [&](base::ByteSpan m) { spans.push_back(m); }) ==
          nat::StreamFrameReader::Result::kOk);
  REQUIRE(spans.size() == 2);
  CHECK(std::vector<uint8_t>(spans[0].begin(), spans[0].end()) == Message(100, 7));
  CHECK(std::vector<uint8_t>(spans[1].begin(), spans[1].end()) == Message(40, 8));
}

TEST_CASE("stream frames: lengths out of bounds are refused, and the stream stays refused", "[nat]") {
  std::vector<uint8_t> out;
  CHECK_FALSE(nat::AppendStreamFrame(Message(nat::kMinStreamMessage - 1, 0), &out));
  CHECK_FALSE(nat::AppendStreamFrame(Message(nat::kMaxStreamMessage + 1, 0), &out));
  CHECK(out.empty());
  for (size_t bad : {size_t{0}, size_t{1}, nat::kMinStreamMessage - 1, nat::kMaxStreamMessage + 1, size_t{65535}}) {
    INFO("length " << bad);
    std::vector<uint8_t> stream;
    REQUIRE(nat::AppendStreamFrame(Message(64, 9), &stream));
    stream.push_back(static_cast<uint8_t>(bad >> 8));
    stream.push_back(static_cast<uint8_t>(bad & 0xff));
    stream.resize(stream.size() + 64, 0);
    for (size_t piece : {size_t{1}, stream.size()}) {
      nat::StreamFrameReader r;
      nat::StreamFrameReader::Result last;
      const auto got = FeedInPieces(r, stream, piece, &last);
      CHECK(last == nat::StreamFrameReader::Result::kBadLength);
      CHECK(got.size() == 1);  // the good message before it still came out
      // Nothing more comes out of a refused stream, not even a good frame.
      std::vector<uint8_t> good;
      REQUIRE(nat::AppendStreamFrame(Message(64, 1), &good));
      int more = 0;
      CHECK(r.Feed(good, [&](base::ByteSpan) { ++more; }) == nat::StreamFrameReader::Result::kBadLength);
      CHECK(more == 0);
    }
  }
}

TEST_CASE("stream endpoints: round trip, and neither relay nor real endpoints pass for one", "[nat]") {
  for (uint32_t id : {0u, 1u, 255u, 65536u, 0xffffffffu}) {
    const base::SocketAddress ep = nat::StreamEndpoint(id);
    uint32_t back = 7;
    REQUIRE(nat::StreamIdOf(ep, &back));
    CHECK(back == id);
    CHECK(nat::IsPseudoEndpoint(ep));
    base::IpAddress node;
    CHECK_FALSE(nat::RelayNodeOf(ep, &node));
  }
  uint32_t id = 0;
  const base::SocketAddress relay = nat::RelayEndpoint(base::IpAddress::V4(100, 96, 0, 2));
  CHECK_FALSE(nat::StreamIdOf(relay, &id));
  CHECK(nat::IsPseudoEndpoint(relay));
  for (const char* real : {"198.18.1.1:51820", "[2001:db8::1]:2", "[100::2:0:0:5]:2", "[100:0:0:1::5]:3", "[::1]:2"}) {
    INFO(real);
    auto a = base::SocketAddress::Parse(real);
    REQUIRE(a.ok());
    CHECK_FALSE(nat::StreamIdOf(*a, &id));
  }
  CHECK_FALSE(nat::IsPseudoEndpoint(*base::SocketAddress::Parse("198.18.1.1:51820")));
  CHECK_FALSE(nat::IsPseudoEndpoint(*base::SocketAddress::Parse("[2001:db8::1]:2")));
}

}  // namespace
}  // namespace p2proxy
