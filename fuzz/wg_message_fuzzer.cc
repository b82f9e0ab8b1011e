// wg_message_fuzzer: WireGuard message classification and parsing on arbitrary datagrams.
// Whatever parses must serialize back to exactly the input bytes.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "wg/messages.h"

using namespace p2proxy::wg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  p2proxy::base::ByteSpan in(data, size);
  std::vector<uint8_t> out(size + 16);
  size_t n = 0;
  switch (Classify(in)) {
    case MessageType::kInitiation: {
      Initiation m;
      if (!ParseInitiation(in, &m)) std::abort();
      n = SerializeInitiation(m, absl::MakeSpan(out));
      break;
    }
    case MessageType::kResponse: {
      Response m;
      if (!ParseResponse(in, &m)) std::abort();
      n = SerializeResponse(m, absl::MakeSpan(out));
      break;
    }
    case MessageType::kCookieReply: {
      CookieReply m;
      if (!ParseCookieReply(in, &m)) std::abort();
      n = SerializeCookieReply(m, absl::MakeSpan(out));
      break;
    }
    case MessageType::kTransport: {
      TransportHeader h;
      if (!ParseTransportHeader(in, &h)) std::abort();
      n = SerializeTransportHeader(h, absl::MakeSpan(out));
      if (n != kTransportHeaderSize || std::memcmp(out.data(), data, n) != 0) std::abort();
      return 0;
    }
    case MessageType::kInvalid: {
      // Nothing that Classify refuses may parse as anything.
      Initiation i;
      Response r;
      CookieReply c;
      TransportHeader t;
      if (ParseInitiation(in, &i) || ParseResponse(in, &r) || ParseCookieReply(in, &c) ||
          ParseTransportHeader(in, &t)) {
        std::abort();
      }
      return 0;
    }
  }
  if (n != size || std::memcmp(out.data(), data, size) != 0) std::abort();
  return 0;
}
