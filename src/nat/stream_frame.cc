// stream_frame.cc: WireGuard over TLS framing (stream_frame.h).
#include "nat/stream_frame.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace p2proxy::nat {

namespace {

bool SizeOk(size_t n) { return n >= kMinStreamMessage && n <= kMaxStreamMessage; }

}  // namespace

bool AppendStreamFrame(base::ByteSpan message, std::vector<uint8_t>* out) {
  if (!SizeOk(message.size())) return false;
  out->push_back(static_cast<uint8_t>(message.size() >> 8));
  out->push_back(static_cast<uint8_t>(message.size() & 0xff));
  out->insert(out->end(), message.begin(), message.end());
  return true;
}

StreamFrameReader::Result StreamFrameReader::Feed(base::ByteSpan data,
                                                  absl::FunctionRef<void(base::ByteSpan message)> on_message) {
  if (failed_) return Result::kBadLength;
  // First complete the frame held from earlier calls, taking only what it needs.
  while (!partial_.empty() && !data.empty()) {
    size_t want = kStreamLengthSize;
    if (partial_.size() >= kStreamLengthSize) {
      const size_t len = (size_t{partial_[0]} << 8) | partial_[1];
      want = kStreamLengthSize + len;
    }
    const size_t take = std::min(want - partial_.size(), data.size());
    partial_.insert(partial_.end(), data.begin(), data.begin() + take);
    data = data.subspan(take);
    if (partial_.size() == kStreamLengthSize) {
      const size_t len = (size_t{partial_[0]} << 8) | partial_[1];
      if (!SizeOk(len)) {
        failed_ = true;
        partial_.clear();
        return Result::kBadLength;
      }
      continue;
    }
    if (partial_.size() >= kStreamLengthSize && partial_.size() == want) {
      ++messages_;
      held_.swap(partial_);
      partial_.clear();
      on_message(base::ByteSpan(held_.data() + kStreamLengthSize, held_.size() - kStreamLengthSize));
    }
  }
  // Then whole frames straight from |data|, without copying.
  while (data.size() >= kStreamLengthSize) {
    const size_t len = (size_t{data[0]} << 8) | data[1];
    if (!SizeOk(len)) {
      failed_ = true;
      return Result::kBadLength;
    }
    if (data.size() < kStreamLengthSize + len) break;
    ++messages_;
    on_message(data.subspan(kStreamLengthSize, len));
    data = data.subspan(kStreamLengthSize + len);
  }
  // What is left starts a frame (when partial_ still holds one, |data| is used up).
  if (partial_.empty()) partial_.assign(data.begin(), data.end());
  return Result::kOk;
}

base::SocketAddress StreamEndpoint(uint32_t id) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(2);
  sa.sin6_addr.s6_addr[0] = 0x01;  // 100::/64
  sa.sin6_addr.s6_addr[7] = 0x01;
  sa.sin6_addr.s6_addr[12] = static_cast<uint8_t>(id >> 24);
  sa.sin6_addr.s6_addr[13] = static_cast<uint8_t>(id >> 16);
  sa.sin6_addr.s6_addr[14] = static_cast<uint8_t>(id >> 8);
  sa.sin6_addr.s6_addr[15] = static_cast<uint8_t>(id);
  return base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&sa));
}

bool StreamIdOf(const base::SocketAddress& endpoint, uint32_t* id) {
  if (endpoint.family() != AF_INET6) return false;
  const auto* sa = reinterpret_cast<const sockaddr_in6*>(endpoint.sa());
  const uint8_t* b = sa->sin6_addr.s6_addr;
  if (b[0] != 0x01 || b[7] != 0x01 || ntohs(sa->sin6_port) != 2) return false;
  for (int i : {1, 2, 3, 4, 5, 6, 8, 9, 10, 11}) {
    if (b[i] != 0) return false;
  }
  *id = (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) | b[15];
  return true;
}

bool IsPseudoEndpoint(const base::SocketAddress& endpoint) {
  if (endpoint.family() != AF_INET6) return false;
  const auto* sa = reinterpret_cast<const sockaddr_in6*>(endpoint.sa());
  const uint8_t* b = sa->sin6_addr.s6_addr;
  for (int i = 1; i < 7; ++i) {
    if (b[i] != 0) return false;
  }
  return b[0] == 0x01;  // anything in 100::/64
}

}  // namespace p2proxy::nat
