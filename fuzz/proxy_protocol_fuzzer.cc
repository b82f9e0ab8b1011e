// proxy_protocol_fuzzer: the PROXY v2 parser on arbitrary connection prefixes. Whatever parses
// must encode, parse again to the same header, and encode again to the same bytes; every
// prefix of an accepted header must be kContinue.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "proxy/proxy_protocol.h"

using namespace p2proxy::proxy;

namespace {

// WithoutCrcValues blanks CRC32C values: re-encoding may change the bytes they cover (a LOCAL
// header loses its address block), so only their presence must survive.
ProxyHeader WithoutCrcValues(ProxyHeader h) {
  for (Tlv& t : h.tlvs) {
    if (t.type == kTlvCrc32c) t.value.assign(4, 0);
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  p2proxy::base::ByteSpan in(data, size);
  ProxyV2Parser parser;
  const ProxyV2Parser::Result result = parser.Parse(in);
  if (result == ProxyV2Parser::Result::kError && parser.error().empty()) std::abort();
  if (result != ProxyV2Parser::Result::kDone) return 0;
  if (parser.header_len() > size || parser.header_len() > ProxyV2Parser::kDefaultMaxHeaderLen) std::abort();

  // A strict prefix of an accepted header is never an error, and never done.
  ProxyV2Parser partial;
  if (partial.Parse(in.first(parser.header_len() - 1)) != ProxyV2Parser::Result::kContinue) std::abort();

  const std::vector<uint8_t> wire = EncodeProxyV2(parser.header());
  if (wire.empty() || wire.size() > parser.header_len()) std::abort();
  ProxyV2Parser again;
  if (again.Parse(wire) != ProxyV2Parser::Result::kDone || again.header_len() != wire.size()) std::abort();
  if (!(WithoutCrcValues(again.header()) == WithoutCrcValues(parser.header()))) std::abort();
  if (EncodeProxyV2(again.header()) != wire) std::abort();
  return 0;
}
