// http1_request_fuzzer: H1Parser on arbitrary bytes, as requests (what clients send the site)
// and as responses (what upstream apps send back), fed in 1-3 pieces split where the input's
// first bytes say. Whatever the split, the events must be the same as for the whole
// input at once (heads, per-message body bytes, ends, the final error), and every head must keep
// the wrapper's promises: lower-case token names, values without CR/LF/NUL or edge whitespace,
// one Host for an HTTP/1.1 request, no Content-Length together with chunked.
//
// Input: byte 0 picks the number of pieces, bytes 1-2 the split points; the rest is the stream.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "http/h1_parser.h"

namespace {

using p2proxy::base::ByteSpan;
using p2proxy::http::H1Error;
using p2proxy::http::H1Head;
using p2proxy::http::H1Parser;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckHead(const H1Head& h, H1Parser::Kind kind) {
  int hosts = 0;
  for (const auto& f : h.headers) {
    Check(!f.name.empty());
    for (char c : f.name) Check(!(c >= 'A' && c <= 'Z') && c != ' ' && c != ':' && c != '\r' && c != '\n');
    for (char c : f.value) Check(c != '\r' && c != '\n' && c != '\0');
    if (!f.value.empty()) Check(f.value.front() != ' ' && f.value.back() != ' ');
    hosts += f.name == "host";
  }
  Check(h.version == 10 || h.version == 11);
  Check(!(h.chunked && h.content_length >= 0));
  if (kind == H1Parser::Kind::kResponse) {
    Check(h.status >= 100 && h.status <= 999);
    return;
  }
  Check(hosts <= 1);
  if (h.version == 11) Check(hosts == 1);
  Check(!h.method.empty() && !h.target.empty());
}

// Log records events in a form independent of how the bytes were split.
struct Log final : H1Parser::Visitor {
  explicit Log(H1Parser::Kind k) : kind(k), parser(k, this, 8192) {}
  void OnHead(H1Head& h) override {
    CheckHead(h, kind);
    text += "H:" + h.method + " " + h.target + " " + std::to_string(h.status) + " " + std::to_string(h.headers.size()) + " " +
            std::to_string(h.content_length) + (h.chunked ? "c" : "") + (h.upgrade ? "u" : "") + "|";
    body = 0;
    // 1xx, 204 and 304 responses have no body whatever their Content-Length says (RFC 9112 §6.3).
    const bool bodiless = kind == H1Parser::Kind::kResponse && (h.status < 200 || h.status == 204 || h.status == 304);
    expected = bodiless ? 0 : h.content_length;
  }
  void OnBody(ByteSpan d) override {
    Check(!d.empty());
    body += d.size();
  }
  void OnMessageEnd() override {
    if (expected >= 0) Check(body == static_cast<uint64_t>(expected));
    text += "B:" + std::to_string(body) + "|E|";
    // As the server does: stop between requests, then go on.
    parser.Pause();
  }
  // Feed parses |piece| completely (resuming after each pause and resetting after an upgrade),
  // keeping unconsumed bytes for the next piece as a caller must.
  void Feed(ByteSpan piece) {
    carry.insert(carry.end(), piece.begin(), piece.end());
    size_t off = 0;
    int rounds = 0;
    while (off < carry.size() && parser.error() == H1Error::kNone) {
      Check(++rounds < 100000);
      parser.Resume();
      const size_t n = parser.Parse(ByteSpan(carry.data() + off, carry.size() - off));
      Check(n <= carry.size() - off);
      off += n;
      if (parser.upgraded()) {
        text += "U|";
        parser.Reset();
        continue;
      }
      if (n == 0 && !parser.paused()) break;
    }
    carry.erase(carry.begin(), carry.begin() + static_cast<ptrdiff_t>(off));
  }
  void End() {
    if (parser.error() == H1Error::kNone) parser.Finish();
    text += "X:" + std::to_string(static_cast<int>(parser.error()));
  }
  H1Parser::Kind kind;
  H1Parser parser;
  std::string text;
  std::vector<uint8_t> carry;
  uint64_t body = 0;
  int64_t expected = -1;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int pieces = 1 + data[0] % 3;
  ByteSpan stream(data + 3, size - 3);
  size_t a = stream.empty() ? 0 : data[1] % (stream.size() + 1);
  size_t b = stream.empty() ? 0 : data[2] % (stream.size() + 1);
  if (a > b) std::swap(a, b);
  if (pieces == 1) a = b = stream.size();
  if (pieces == 2) b = stream.size();

  for (H1Parser::Kind kind : {H1Parser::Kind::kRequest, H1Parser::Kind::kResponse}) {
    Log whole(kind);
    whole.Feed(stream);
    whole.End();

    Log split(kind);
    split.Feed(stream.subspan(0, a));
    split.Feed(stream.subspan(a, b - a));
    split.Feed(stream.subspan(b));
    split.End();
    Check(whole.text == split.text);
  }
  return 0;
}
