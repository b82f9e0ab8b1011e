// bytes.cc: the parts of ByteReader/ByteWriter that CBS/CBB do not have directly.
#include "base/bytes.h"

#include <openssl/mem.h>

#include <algorithm>

namespace p2proxy::base {

bool ByteReader::ReadU64Le(uint64_t* out) {
  CBS saved = cbs_;
  uint32_t lo, hi;
  if (!ReadU32Le(&lo) || !ReadU32Le(&hi)) {
    cbs_ = saved;
    return false;
  }
  *out = (static_cast<uint64_t>(hi) << 32) | lo;
  return true;
}

bool ByteReader::ReadBytes(size_t len, ByteSpan* out) {
  CBS piece;
  if (!CBS_get_bytes(&cbs_, &piece, len)) return false;
  *out = ByteSpan(CBS_data(&piece), CBS_len(&piece));
  return true;
}

bool ByteWriter::AddU64Le(uint64_t v) {
  return AddU32Le(static_cast<uint32_t>(v)) && AddU32Le(static_cast<uint32_t>(v >> 32));
}

bool ByteWriter::AddZeros(size_t len) {
  uint8_t* p;
  if (!CBB_add_space(cbb_.get(), &p, len)) return false;
  std::fill(p, p + len, 0);
  return true;
}

std::vector<uint8_t> ByteWriter::Take() {
  uint8_t* data = nullptr;
  size_t len = 0;
  std::vector<uint8_t> out;
  if (fixed_) {
    out.assign(CBB_data(cbb_.get()), CBB_data(cbb_.get()) + CBB_len(cbb_.get()));
    return out;
  }
  if (CBB_finish(cbb_.get(), &data, &len)) {
    out.assign(data, data + len);
    OPENSSL_free(data);
  }
  CBB_cleanup(cbb_.get());
  CBB_init(cbb_.get(), 64);
  return out;
}

}  // namespace p2proxy::base
