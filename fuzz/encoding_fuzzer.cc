// encoding_fuzzer: strict base64 and hex decoding of arbitrary text (keys arrive this way in
// configs and over the UAPI). Whatever decodes must re-encode to exactly the input.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "base/encoding.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (auto b = p2proxy::base::Base64Decode(text); b.ok()) {
    if (p2proxy::base::Base64Encode(*b) != text) std::abort();  // canonical: one spelling
  }
  if (auto h = p2proxy::base::HexDecode(text); h.ok()) {
    if (h->size() * 2 != text.size()) std::abort();
    if (p2proxy::base::HexDecode(p2proxy::base::HexEncode(*h)).value() != *h) std::abort();
  }
  return 0;
}
