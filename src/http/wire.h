// wire.h: the small helpers both HTTP/1.1 writers (the server's response heads, the upstream
// client's request heads) use to put text into a byte buffer.
#ifndef P2PROXY_HTTP_WIRE_H_
#define P2PROXY_HTTP_WIRE_H_

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace p2proxy::http {

// HasCrLfNul: |s| holds CR, LF or NUL, any of which would let a field split the message. One
// comparison per byte in the common case (every byte above CR).
inline bool HasCrLfNul(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= '\r' && (c == '\r' || c == '\n' || c == 0)) return true;
  }
  return false;
}

// AppendText appends |s|; callers reserve the head's size first, so this is a copy.
inline void AppendText(std::vector<uint8_t>* out, std::string_view s) {
  const size_t at = out->size();
  out->resize(at + s.size());
  if (!s.empty()) std::memcpy(out->data() + at, s.data(), s.size());
}

inline void AppendNumber(std::vector<uint8_t>* out, uint64_t v, int base = 10) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v, base);
  AppendText(out, std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}

// HeadWriter builds a message head in one buffer sized up front (|capacity| is the caller's
// bound; going past it still works, by growing). Each Add is a bounds check and a memcpy, with
// none of vector::insert's general-case work: heads are written a few dozen pieces at a time.
class HeadWriter {
 public:
  explicit HeadWriter(size_t capacity) : bytes_(capacity) {}
  void Add(std::string_view s) {
    if (s.size() > bytes_.size() - at_) bytes_.resize(std::max(bytes_.size() * 2, at_ + s.size()));
    if (!s.empty()) std::memcpy(bytes_.data() + at_, s.data(), s.size());
    at_ += s.size();
  }
  void AddNumber(uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v);
    Add(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
  // Take returns the bytes written; the writer is spent.
  std::vector<uint8_t> Take() {
    bytes_.resize(at_);
    return std::move(bytes_);
  }

 private:
  std::vector<uint8_t> bytes_;
  size_t at_ = 0;
};

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_WIRE_H_
