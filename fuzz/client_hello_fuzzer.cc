// client_hello_fuzzer: ClientHelloPeek on arbitrary bytes, whole and in random pieces. The
// first input byte seeds the split points; the rest is what a peer sent. Whatever the pieces,
// the outcome must be the one the whole input gives, and a kDone must be stable: the bytes up to
// hello_end() alone give the same info, one byte fewer gives kContinue, and more bytes after the
// hello change nothing.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "tls/client_hello.h"

namespace {

using p2proxy::base::ByteSpan;
using p2proxy::tls::ClientHelloInfo;
using p2proxy::tls::ClientHelloPeek;
using Result = ClientHelloPeek::Result;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool SameInfo(const ClientHelloInfo& a, const ClientHelloInfo& b) {
  return a.sni == b.sni && a.alpn == b.alpn && a.offers_tls13 == b.offers_tls13 &&
         a.legacy_version == b.legacy_version;
}

// CheckInfo: what kDone promises about the SNI and ALPN.
void CheckInfo(const ClientHelloInfo& info) {
  Check(info.sni.size() <= p2proxy::tls::kMaxHostNameLen);
  for (char c : info.sni) Check(c != '\0' && !(c >= 'A' && c <= 'Z'));
  for (const std::string& p : info.alpn) Check(!p.empty() && p.size() <= 255);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint32_t rng = data[0] * 2654435761u + 1;
  const ByteSpan wire(data + 1, size - 1);
  // A small cap now and then, so the cap paths are reached with short inputs too.
  const size_t cap = (data[0] & 0x80) ? 64 + (data[0] & 0x7f) * 8 : p2proxy::tls::kDefaultMaxClientHelloLen;

  ClientHelloPeek whole(cap);
  const Result expected = whole.Parse(wire);
  Check(whole.Parse(wire) == expected);  // sticky
  if (expected == Result::kError) Check(!whole.error().empty());

  // The same bytes in pieces: growing prefixes with random steps (often of one byte).
  ClientHelloPeek pieces(cap);
  Result r = Result::kContinue;
  size_t len = 0;
  while (r == Result::kContinue && len < wire.size()) {
    rng = rng * 1103515245u + 12345u;
    const size_t step = (rng >> 16) % 4 == 0 ? 1 + (rng >> 8) % 300 : 1;
    len = std::min(wire.size(), len + step);
    r = pieces.Parse(wire.first(len));
  }
  Check(r == expected);
  if (r == Result::kError) Check(pieces.error() == whole.error());
  if (expected != Result::kDone) return 0;

  CheckInfo(whole.info());
  Check(SameInfo(whole.info(), pieces.info()));
  const size_t end = whole.hello_end();
  Check(end > 0 && end <= wire.size() && pieces.hello_end() == end);
  ClientHelloPeek exact(cap);
  Check(exact.Parse(wire.first(end)) == Result::kDone && SameInfo(exact.info(), whole.info()));
  ClientHelloPeek short_by_one(cap);
  Check(short_by_one.Parse(wire.first(end - 1)) == Result::kContinue);
  // Bytes after the hello (here: the hello again) are not looked at.
  std::vector<uint8_t> longer(wire.begin(), wire.begin() + static_cast<long>(end));
  longer.insert(longer.end(), wire.begin(), wire.end());
  ClientHelloPeek extra(cap);
  Check(extra.Parse(longer) == Result::kDone && SameInfo(extra.info(), whole.info()));
  return 0;
}
