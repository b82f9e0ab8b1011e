// bytes.h: bounds-checked reading and writing of wire formats, as thin C++ over BoringSSL's
// CBS (reader) and CBB (writer). Every read checks bounds; a failed read does not advance.
#ifndef P2PROXY_BASE_BYTES_H_
#define P2PROXY_BASE_BYTES_H_

#include <openssl/bytestring.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace p2proxy::base {

using ByteSpan = absl::Span<const uint8_t>;
using MutableByteSpan = absl::Span<uint8_t>;

// ByteReader reads big- and little-endian integers and byte runs from a span it does not own.
// Each Read* returns false, and leaves the reader where it was, if too few bytes remain.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan data) { CBS_init(&cbs_, data.data(), data.size()); }

  bool ReadU8(uint8_t* out) { return CBS_get_u8(&cbs_, out) == 1; }
  bool ReadU16(uint16_t* out) { return CBS_get_u16(&cbs_, out) == 1; }
  bool ReadU24(uint32_t* out) { return CBS_get_u24(&cbs_, out) == 1; }
  bool ReadU32(uint32_t* out) { return CBS_get_u32(&cbs_, out) == 1; }
  bool ReadU16Le(uint16_t* out) { return CBS_get_u16le(&cbs_, out) == 1; }
  bool ReadU32Le(uint32_t* out) { return CBS_get_u32le(&cbs_, out) == 1; }
  bool ReadU64Le(uint64_t* out);
  // ReadBytes sets |out| to the next |len| bytes (a view into the input) and advances.
  bool ReadBytes(size_t len, ByteSpan* out);
  // CopyBytes copies the next out.size() bytes into |out| and advances.
  bool CopyBytes(MutableByteSpan out) { return CBS_copy_bytes(&cbs_, out.data(), out.size()) == 1; }
  // ReadU8LengthPrefixed / ReadU16LengthPrefixed read a length, then that many bytes into |out|.
  // (CBS consumes the length even when the body is short; these do not.)
  bool ReadU8LengthPrefixed(ByteReader* out) { return Undo(CBS_get_u8_length_prefixed, out); }
  bool ReadU16LengthPrefixed(ByteReader* out) { return Undo(CBS_get_u16_length_prefixed, out); }
  bool Skip(size_t len) { return CBS_skip(&cbs_, len) == 1; }

  size_t remaining() const { return CBS_len(&cbs_); }
  bool empty() const { return CBS_len(&cbs_) == 0; }
  // rest is what has not been read yet.
  ByteSpan rest() const { return ByteSpan(CBS_data(&cbs_), CBS_len(&cbs_)); }
  // cbs gives BoringSSL's own reader, for parsers written against CBS directly.
  CBS* cbs() { return &cbs_; }

 private:
  ByteReader() = default;
  bool Undo(int (*get)(CBS*, CBS*), ByteReader* out) {
    CBS saved = cbs_;
    if (get(&cbs_, &out->cbs_) == 1) return true;
    cbs_ = saved;
    return false;
  }
  CBS cbs_;
};

// ByteWriter appends to a caller-provided fixed buffer (no allocation: fit for per-packet code)
// or to a growing one. Each Add* returns false if the value does not fit; a writer that said
// false once is not used further (its content is unspecified).
class ByteWriter {
 public:
  // ByteWriter(buf) writes into |buf|, which must outlive the writer.
  explicit ByteWriter(MutableByteSpan buf) : fixed_(true) {
    CBB_init_fixed(cbb_.get(), buf.data(), buf.size());
  }
  // ByteWriter() writes into a heap buffer that grows; Take() hands it over.
  ByteWriter() { CBB_init(cbb_.get(), 64); }
  ByteWriter(const ByteWriter&) = delete;
  ByteWriter& operator=(const ByteWriter&) = delete;

  bool AddU8(uint8_t v) { return CBB_add_u8(cbb_.get(), v) == 1; }
  bool AddU16(uint16_t v) { return CBB_add_u16(cbb_.get(), v) == 1; }
  bool AddU24(uint32_t v) { return CBB_add_u24(cbb_.get(), v) == 1; }
  bool AddU32(uint32_t v) { return CBB_add_u32(cbb_.get(), v) == 1; }
  bool AddU16Le(uint16_t v) { return CBB_add_u16le(cbb_.get(), v) == 1; }
  bool AddU32Le(uint32_t v) { return CBB_add_u32le(cbb_.get(), v) == 1; }
  bool AddU64Le(uint64_t v);
  bool AddBytes(ByteSpan data) { return CBB_add_bytes(cbb_.get(), data.data(), data.size()) == 1; }
  bool AddZeros(size_t len);

  // size is the number of bytes written so far.
  size_t size() const { return CBB_len(cbb_.get()); }
  // Take returns the bytes written. A growing writer hands them over and starts empty again;
  // a fixed writer returns a copy and keeps its buffer as it is.
  std::vector<uint8_t> Take();
  // cbb gives BoringSSL's own writer (for length-prefixed children).
  CBB* cbb() { return cbb_.get(); }

 private:
  bssl::ScopedCBB cbb_;
  bool fixed_ = false;
};

}  // namespace p2proxy::base

#endif  // P2PROXY_BASE_BYTES_H_
