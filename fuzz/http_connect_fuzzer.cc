// http_connect_fuzzer: the HTTP CONNECT head parser (client/http_connect.h) on arbitrary bytes,
// as a local client could send them. Byte 0 picks a split point; the rest is the connection.
//
// Fed whole, in two pieces cut at the split, and one byte at a time, the parser must agree on
// the result, the request, the head's length (the bytes taken over all pieces) and the error.
// An accepted head is at most kMaxHead bytes, ends in CRLF CRLF, and its target written out by
// EncodeConnectRequest parses back to the same target. A refusal's response starts with its
// status line and its Content-Length counts its body. A failure aborts.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "client/http_connect.h"

using namespace p2proxy::client;
using p2proxy::base::ByteSpan;
using Result = HttpConnectParser::Result;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

ByteSpan Span(std::string_view s) { return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

struct Outcome {
  Result result = Result::kNeedMore;
  size_t used = 0;  // kDone: bytes of the input the head took
  ConnectRequest request;
  int status = 0;
  std::string error;
  std::string response;
  bool operator==(const Outcome& o) const {
    return result == o.result && used == o.used && request == o.request && status == o.status && error == o.error &&
           response == o.response;
  }
};

// Feed gives |in| to a parser cut at each of |cuts| (increasing), then the rest.
template <typename Cuts>
Outcome Feed(ByteSpan in, const Cuts& cuts) {
  HttpConnectParser p;
  Outcome o;
  size_t at = 0;
  auto feed = [&](size_t end) {
    if (o.result != Result::kNeedMore) return;
    o.result = p.Feed(in.subspan(at, end - at));
    if (o.result == Result::kNeedMore) {
      Check(p.consumed() == end - at);
    } else if (o.result == Result::kDone) {
      Check(p.consumed() <= end - at);
      o.used = at + p.consumed();
      Check(o.used == p.head_len());
    }
    at = end;
  };
  cuts(feed);
  feed(in.size());
  if (o.result == Result::kDone) {
    o.request = p.request();
    Check(p.error_status() == 0 && p.error().empty());
  } else if (o.result == Result::kError) {
    o.status = p.error_status();
    o.error = std::string(p.error());
    o.response = p.ErrorResponse();
    Check(o.status == 400 || o.status == 405 || o.status == 431 || o.status == 505);
    Check(!o.error.empty());
  }
  // Nothing is taken after the end.
  if (o.result != Result::kNeedMore) {
    Check(p.Feed(Span("x")) == o.result && p.consumed() == 0);
  }
  return o;
}

void CheckResponse(const Outcome& o) {
  const std::string& r = o.response;
  Check(r.rfind("HTTP/1.1 " + std::to_string(o.status) + " ", 0) == 0);
  const size_t end = r.find("\r\n\r\n");
  Check(end != std::string::npos);
  const std::string_view head(r.data(), end + 2);
  const std::string body = r.substr(end + 4);
  Check(head.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
  Check(head.find("\r\nConnection: close\r\n") != std::string::npos);
  Check((o.status == 405) == (head.find("\r\nAllow: CONNECT\r\n") != std::string::npos));
  // Only CRLF ends a line in the head.
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\n') Check(i > 0 && head[i - 1] == '\r');
    if (head[i] == '\r') Check(i + 1 < head.size() && head[i + 1] == '\n');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ByteSpan in(data + 1, size - 1);
  const size_t split = in.size() * data[0] / 255;

  const Outcome whole = Feed(in, [](auto&) {});
  const Outcome two = Feed(in, [split](auto& feed) { feed(split); });
  const Outcome bytes = Feed(in, [&in](auto& feed) {
    for (size_t i = 1; i < in.size(); ++i) feed(i);
  });
  Check(two == whole);
  Check(bytes == whole);

  if (whole.result == Result::kNeedMore) {
    Check(in.size() < HttpConnectParser::kMaxHead);
  } else if (whole.result == Result::kError) {
    CheckResponse(whole);
  } else {
    Check(whole.used >= 4 && whole.used <= HttpConnectParser::kMaxHead);
    const std::string_view head(reinterpret_cast<const char*>(in.data()), whole.used);
    Check(head.substr(head.size() - 4) == "\r\n\r\n");
    Check(head.find("\r\n\r\n") == head.size() - 4);
    const ConnectRequest& r = whole.request;
    Check(r.target.port != 0 && (r.minor_version == 0 || r.minor_version == 1));
    const std::string again = EncodeConnectRequest(r.target);
    Check(!again.empty());
    HttpConnectParser p;
    Check(p.Feed(Span(again)) == Result::kDone && p.consumed() == again.size());
    Check(p.request().target == r.target && p.request().minor_version == 1 && !p.request().has_proxy_authorization);
  }
  return 0;
}
