// Tests for ByteReader and ByteWriter.
#include "base/bytes.h"

#include <catch2/catch.hpp>

using p2proxy::base::ByteReader;
using p2proxy::base::ByteSpan;
using p2proxy::base::ByteWriter;

TEST_CASE("ByteReader reads big and little endian and never reads past the end") {
  const uint8_t data[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};
  ByteReader r(data);
  uint16_t be16;
  REQUIRE(r.ReadU16(&be16));
  REQUIRE(be16 == 0x0102);
  uint16_t le16;
  REQUIRE(r.ReadU16Le(&le16));
  REQUIRE(le16 == 0x0403);
  uint32_t le32;
  REQUIRE(r.ReadU32Le(&le32));
  REQUIRE(le32 == 0x08070605);
  REQUIRE(r.remaining() == 1);
  // A failed read leaves the reader where it was.
  uint32_t too_big;
  REQUIRE_FALSE(r.ReadU32(&too_big));
  REQUIRE(r.remaining() == 1);
  uint64_t u64;
  REQUIRE_FALSE(r.ReadU64Le(&u64));
  REQUIRE(r.remaining() == 1);
  uint8_t last;
  REQUIRE(r.ReadU8(&last));
  REQUIRE(last == 0x09);
  REQUIRE(r.empty());
}

TEST_CASE("ByteReader length prefixes and views") {
  const uint8_t data[] = {0x00, 0x03, 'a', 'b', 'c', 0x05, 'x'};
  ByteReader r(data);
  ByteReader inner(ByteSpan{});
  REQUIRE(r.ReadU16LengthPrefixed(&inner));
  REQUIRE(inner.remaining() == 3);
  ByteSpan abc;
  REQUIRE(inner.ReadBytes(3, &abc));
  REQUIRE(std::string(abc.begin(), abc.end()) == "abc");
  // The length says 5 but only 1 byte follows: refused, nothing consumed.
  ByteReader bad(ByteSpan{});
  REQUIRE_FALSE(r.ReadU8LengthPrefixed(&bad));
  REQUIRE(r.remaining() == 2);
}

TEST_CASE("ByteReader ReadU64Le") {
  const uint8_t data[] = {1, 2, 3, 4, 5, 6, 7, 8};
  ByteReader r(data);
  uint64_t v;
  REQUIRE(r.ReadU64Le(&v));
  REQUIRE(v == 0x0807060504030201ull);
}

TEST_CASE("ByteWriter into a fixed buffer refuses to overflow") {
  uint8_t buf[6];
  ByteWriter w(absl::MakeSpan(buf));
  REQUIRE(w.AddU16(0xabcd));
  REQUIRE(w.AddU32Le(0x11223344));
  REQUIRE(w.size() == 6);
  REQUIRE_FALSE(w.AddU8(1));
  REQUIRE(buf[0] == 0xab);
  REQUIRE(buf[1] == 0xcd);
  REQUIRE(buf[2] == 0x44);
  REQUIRE(buf[5] == 0x11);
  auto copy = w.Take();
  REQUIRE(copy.size() == 6);
}

TEST_CASE("ByteWriter grows and round-trips through ByteReader") {
  ByteWriter w;
  REQUIRE(w.AddU8(4));
  REQUIRE(w.AddU64Le(0x0102030405060708ull));
  REQUIRE(w.AddZeros(3));
  const uint8_t tail[] = {9, 9};
  REQUIRE(w.AddBytes(tail));
  auto out = w.Take();
  REQUIRE(out.size() == 1 + 8 + 3 + 2);
  ByteReader r(out);
  uint8_t t;
  uint64_t v;
  REQUIRE(r.ReadU8(&t));
  REQUIRE(r.ReadU64Le(&v));
  REQUIRE(v == 0x0102030405060708ull);
  REQUIRE(r.Skip(3));
  REQUIRE(r.remaining() == 2);
  REQUIRE(w.size() == 0);  // Take left the growing writer empty
}
