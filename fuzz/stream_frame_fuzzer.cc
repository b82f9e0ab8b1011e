// stream_frame_fuzzer: WireGuard-over-TLS framing (nat/stream_frame.h) on arbitrary streams,
// the bytes a node or the server reads from the TLS connection. The first byte chooses how the
// rest is cut into reads; whatever the cut, the reader must give the same messages as in one
// read, each within the bounds, and the messages framed again must be the stream's prefix that
// was consumed; after a bad length nothing more comes out.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "nat/stream_frame.h"

using namespace p2proxy;

namespace {

struct Run {
  std::vector<std::vector<uint8_t>> messages;
  nat::StreamFrameReader::Result result = nat::StreamFrameReader::Result::kOk;
};

Run Read(base::ByteSpan stream, size_t piece) {
  Run run;
  nat::StreamFrameReader r;
  for (size_t at = 0; at < stream.size(); at += piece) {
    const size_t n = std::min(piece, stream.size() - at);
    run.result = r.Feed(stream.subspan(at, n), [&](base::ByteSpan m) {
      if (m.size() < nat::kMinStreamMessage || m.size() > nat::kMaxStreamMessage) std::abort();
      run.messages.emplace_back(m.begin(), m.end());
    });
    if (run.result != nat::StreamFrameReader::Result::kOk) {
      int more = 0;
      const uint8_t good[2 + 32] = {0, 32};
      if (r.Feed(base::ByteSpan(good, sizeof(good)), [&](base::ByteSpan) { ++more; }) !=
              nat::StreamFrameReader::Result::kBadLength ||
          more != 0) {
        std::abort();
      }
      break;
    }
    if (r.buffered() > nat::kStreamLengthSize + nat::kMaxStreamMessage) std::abort();
  }
  return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 64;
  const base::ByteSpan stream(data + 1, size - 1);
  const Run whole = Read(stream, stream.size() + 1);
  const Run cut = Read(stream, piece);
  if (whole.messages != cut.messages || whole.result != cut.result) std::abort();
  std::vector<uint8_t> again;
  for (const auto& m : whole.messages) {
    if (!nat::AppendStreamFrame(m, &again)) std::abort();
  }
  if (again.size() > stream.size() || !std::equal(again.begin(), again.end(), stream.begin())) std::abort();
  return 0;
}
