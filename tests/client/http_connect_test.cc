// HTTP CONNECT: heads as curl and browsers send them, every refusal with its status, pieces of
// every size against the whole head, and the responses byte for byte.
#include "client/http_connect.h"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace p2proxy;
using client::ConnectRequest;
using client::HttpConnectParser;
using client::socks5::Destination;
using Result = HttpConnectParser::Result;

namespace {

base::ByteSpan Span(std::string_view s) { return base::ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

// Outcome is what a parser said once it stopped asking for more.
struct Outcome {
  Result result = Result::kNeedMore;
  size_t head_len = 0;    // kDone
  size_t total_used = 0;  // kDone: bytes of the input taken by the head, over all pieces
  ConnectRequest request;
  int status = 0;
  std::string error;
};

bool operator==(const Outcome& a, const Outcome& b) {
  return a.result == b.result && a.head_len == b.head_len && a.total_used == b.total_used &&
         a.request == b.request && a.status == b.status && a.error == b.error;
}

// FeedPieces feeds |in| in pieces of |piece_len| bytes until the parser stops asking for more.
Outcome FeedPieces(std::string_view in, size_t piece_len) {
  HttpConnectParser p;
  Outcome o;
  size_t fed = 0;
  while (fed < in.size()) {
    const size_t n = std::min(piece_len, in.size() - fed);
    o.result = p.Feed(Span(in.substr(fed, n)));
    if (o.result == Result::kNeedMore) {
      REQUIRE(p.consumed() == n);
      fed += n;
      continue;
    }
    if (o.result == Result::kDone) {
      REQUIRE(p.consumed() <= n);
      REQUIRE(p.consumed() > 0);
      o.total_used = fed + p.consumed();
      o.head_len = p.head_len();
      o.request = p.request();
      REQUIRE(o.total_used == o.head_len);
    } else {
      o.status = p.error_status();
      o.error = std::string(p.error());
      REQUIRE(o.status != 0);
      REQUIRE_FALSE(o.error.empty());
    }
    // Later pieces are not taken.
    REQUIRE(p.Feed(Span("more")) == o.result);
    REQUIRE(p.consumed() == 0);
    break;
  }
  return o;
}

// Parse feeds |in| whole, one byte at a time and in pieces of 7, and checks all agree.
Outcome Parse(std::string_view in) {
  const Outcome whole = FeedPieces(in, in.size() + 1);
  REQUIRE(FeedPieces(in, 1) == whole);
  REQUIRE(FeedPieces(in, 7) == whole);
  return whole;
}

ConnectRequest Done(std::string_view in) {
  const Outcome o = Parse(in);
  INFO(o.error);
  REQUIRE(o.result == Result::kDone);
  return o.request;
}

int StatusOf(std::string_view in) {
  const Outcome o = Parse(in);
  REQUIRE(o.result == Result::kError);
  return o.status;
}

std::string Connect(std::string_view target, std::string_view version = "HTTP/1.1") {
  return std::string("CONNECT ") + std::string(target) + " " + std::string(version) + "\r\n\r\n";
}

const base::IpAddress* IpOf(const ConnectRequest& r) { return r.target.ip(); }

}  // namespace

TEST_CASE("http_connect: curl's CONNECT", "[http_connect]") {
  // curl -p -x http://127.0.0.1:3128 https://example.com/
  const std::string head =
      "CONNECT example.com:443 HTTP/1.1\r\n"
      "Host: example.com:443\r\n"
      "User-Agent: curl/8.5.0\r\n"
      "Proxy-Connection: Keep-Alive\r\n"
      "\r\n";
  const Outcome o = Parse(head);
  REQUIRE(o.result == Result::kDone);
  REQUIRE(o.head_len == head.size());
  REQUIRE(*o.request.target.name() == "example.com");
  REQUIRE(o.request.target.port == 443);
  REQUIRE(o.request.minor_version == 1);
  REQUIRE_FALSE(o.request.has_proxy_authorization);
}

TEST_CASE("http_connect: targets", "[http_connect]") {
  const ConnectRequest v4 = Done(Connect("192.0.2.1:22", "HTTP/1.0"));
  REQUIRE(*IpOf(v4) == base::IpAddress::V4(192, 0, 2, 1));
  REQUIRE(v4.target.port == 22);
  REQUIRE(v4.minor_version == 0);

  const ConnectRequest v6 = Done(Connect("[2001:db8::1]:8443"));
  REQUIRE(*IpOf(v6) == *base::IpAddress::Parse("2001:db8::1"));
  REQUIRE(v6.target.port == 8443);
  REQUIRE(*IpOf(Done(Connect("[::ffff:192.0.2.1]:1"))) == *base::IpAddress::Parse("::ffff:192.0.2.1"));

  REQUIRE(*Done(Connect("Vault.Example.INTERNAL.:443")).target.name() == "vault.example.internal");
  REQUIRE(*Done(Connect("_svc.host-1:65535")).target.name() == "_svc.host-1");
  REQUIRE(Done(Connect("localhost:00443")).target.port == 443);
}

TEST_CASE("http_connect: Proxy-Authorization is noted and other fields are ignored", "[http_connect]") {
  const std::string head =
      "CONNECT example.com:443 HTTP/1.1\r\n"
      "Host: example.com:443\r\n"
      "proxy-AUTHORIZATION: Basic dXNlcjpwYXNz\r\n"
      "X-Empty:\r\n"
      "X-Tabs:\t a \t\r\n"
      "X-Obs-Text: caf\xc3\xa9\r\n"
      "\r\n";
  REQUIRE(Done(head).has_proxy_authorization);
  REQUIRE_FALSE(Done("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization-X: y\r\n\r\n").has_proxy_authorization);
}

TEST_CASE("http_connect: bytes after the head belong to the tunnel", "[http_connect]") {
  const std::string head = Connect("example.com:443");
  const std::string client_hello = "\x16\x03\x01\x02\x05\x01\x02\x03\xfc\x03\x03";
  const std::string stream = head + client_hello;

  HttpConnectParser whole;
  REQUIRE(whole.Feed(Span(stream)) == Result::kDone);
  REQUIRE(whole.consumed() == head.size());
  REQUIRE(whole.head_len() == head.size());

  // Split inside the blank line: the second piece gives 2 bytes to the head.
  HttpConnectParser split;
  REQUIRE(split.Feed(Span(std::string_view(stream).substr(0, head.size() - 2))) == Result::kNeedMore);
  REQUIRE(split.Feed(Span(std::string_view(stream).substr(head.size() - 2))) == Result::kDone);
  REQUIRE(split.consumed() == 2);
  REQUIRE(split.head_len() == head.size());

  REQUIRE(Parse(stream).total_used == head.size());
}

TEST_CASE("http_connect: other methods get 405 with Allow: CONNECT", "[http_connect]") {
  const Outcome get = Parse("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
  REQUIRE(get.status == 405);
  REQUIRE(get.error.find("Allow: CONNECT") != std::string::npos);
  REQUIRE(StatusOf("connect example.com:443 HTTP/1.1\r\n\r\n") == 405);  // methods are case-sensitive
  REQUIRE(StatusOf("POST / HTTP/1.1\r\n") == 405);  // known at the end of the request line

  HttpConnectParser p;
  REQUIRE(p.Feed(Span("GET / HTTP/1.1\r\n\r\n")) == Result::kError);
  const std::string response = p.ErrorResponse();
  REQUIRE(response.rfind("HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\n", 0) == 0);
  REQUIRE(response.find("Connection: close\r\n") != std::string::npos);
}

TEST_CASE("http_connect: request line refusals", "[http_connect]") {
  REQUIRE(StatusOf(Connect("example.com:443", "HTTP/2.0")) == 505);
  REQUIRE(StatusOf(Connect("example.com:443", "HTTP/1.2")) == 505);
  for (std::string_view version : {"HTTP/1.1 ", "HTTP/11", "http/1.1", "HTTP/1.10", "HTTP/x.1", ""}) {
    INFO(version);
    REQUIRE(StatusOf(Connect("example.com:443", version)) == 400);
  }
  REQUIRE(StatusOf("CONNECT example.com:443\r\n\r\n") == 400);
  REQUIRE(StatusOf("CONNECT  example.com:443 HTTP/1.1\r\n\r\n") == 400);
  REQUIRE(StatusOf("CON(NECT example.com:443 HTTP/1.1\r\n\r\n") == 400);
  REQUIRE(StatusOf(" CONNECT example.com:443 HTTP/1.1\r\n\r\n") == 400);
  REQUIRE(StatusOf("\r\nCONNECT example.com:443 HTTP/1.1\r\n\r\n") == 400);  // no empty line first
}

TEST_CASE("http_connect: target refusals", "[http_connect]") {
  for (std::string_view target :
       {"example.com", "example.com:", "example.com:0", "example.com:65536", "example.com:443a", "example.com:+443",
        "example.com:100000", ":443", "[::1]", "[::1]443", "[::1:443", "[192.0.2.1]:443", "[fe80::1%25eth0]:443",
        "::1:443", "http://example.com:443/", "example.com:443/", "user@example.com:443", "exa_mple!.com:443",
        "ex%41mple.com:443", "a..b:443", "10.1:443", "2130706433:80", "[::1]:443:1"}) {
    INFO(target);
    REQUIRE(StatusOf(Connect(target)) == 400);
  }
  const Outcome o = Parse(Connect("example.com"));
  REQUIRE(o.error == "target \"example.com\" has no port: it must be host:port");
}

TEST_CASE("http_connect: line refusals", "[http_connect]") {
  const std::string line = "CONNECT example.com:443 HTTP/1.1";
  REQUIRE(StatusOf(line + "\n\r\n") == 400);                              // bare LF
  REQUIRE(StatusOf(line + "\r\nHost: a\n\r\n") == 400);                   // bare LF after a field
  REQUIRE(StatusOf(line + "\r\n\n") == 400);                              // bare LF as the end
  REQUIRE(StatusOf(line + "\r\nHost: a\rb\r\n\r\n") == 400);              // bare CR
  REQUIRE(StatusOf(line + "\r\nHost: a\r\r\n\r\n") == 400);               // CR CR LF
  REQUIRE(StatusOf(line + "\r\nHost: a" + std::string(1, '\0') + "\r\n\r\n") == 400);  // NUL
  REQUIRE(StatusOf(std::string("CONNECT a:1") + '\0' + " HTTP/1.1\r\n\r\n") == 400);
  REQUIRE(StatusOf(line + "\r\nX-A: 1\r\n  continued\r\n\r\n") == 400);  // obs-fold
  REQUIRE(StatusOf(line + "\r\n\tX-A: 1\r\n\r\n") == 400);                // whitespace before the first field
  const Outcome space = Parse(line + "\r\nHost : a\r\n\r\n");
  REQUIRE(space.status == 400);
  REQUIRE(space.error.find("whitespace between field name") != std::string::npos);
  REQUIRE(StatusOf(line + "\r\n: a\r\n\r\n") == 400);                     // empty name
  REQUIRE(StatusOf(line + "\r\nHo(st: a\r\n\r\n") == 400);                // not a token
  REQUIRE(StatusOf(line + "\r\nHost\r\n\r\n") == 400);                    // no colon
  REQUIRE(StatusOf(line + "\r\nHost: a\x01\r\n\r\n") == 400);             // control byte
  REQUIRE(StatusOf(line + "\r\nHost: a\x7f\r\n\r\n") == 400);             // DEL
}

TEST_CASE("http_connect: limits of fields and head", "[http_connect]") {
  const std::string line = "CONNECT example.com:443 HTTP/1.1\r\n";
  std::string fields;
  for (size_t i = 0; i < HttpConnectParser::kMaxFields; ++i) fields += "X-F: " + std::to_string(i) + "\r\n";
  REQUIRE(Done(line + fields + "\r\n").target.port == 443);
  const Outcome too_many = Parse(line + fields + "X-F: one more\r\n\r\n");
  REQUIRE(too_many.status == 431);
  REQUIRE(too_many.error == "request head has more than 100 fields");

  // A head of exactly kMaxHead bytes passes; one byte more is refused.
  const size_t fixed = line.size() + std::string("X-Pad: \r\n\r\n").size();
  const std::string exact = line + "X-Pad: " + std::string(HttpConnectParser::kMaxHead - fixed, 'p') + "\r\n\r\n";
  REQUIRE(exact.size() == HttpConnectParser::kMaxHead);
  REQUIRE(Parse(exact).head_len == HttpConnectParser::kMaxHead);
  const std::string over = line + "X-Pad: " + std::string(HttpConnectParser::kMaxHead - fixed + 1, 'p') + "\r\n\r\n";
  const Outcome o = Parse(over);
  REQUIRE(o.status == 431);
  REQUIRE(o.error == "request head is longer than 8192 bytes");

  // A stream that never ends its head is refused once it reaches the cap.
  HttpConnectParser p;
  REQUIRE(p.Feed(Span(line)) == Result::kNeedMore);
  const std::string chunk(1000, 'x');
  Result r = Result::kNeedMore;
  size_t fed = line.size();
  while (r == Result::kNeedMore) {
    r = p.Feed(Span(chunk));
    fed += chunk.size();
  }
  REQUIRE(r == Result::kError);
  REQUIRE(p.error_status() == 431);
  REQUIRE(fed >= HttpConnectParser::kMaxHead);
  REQUIRE(fed < HttpConnectParser::kMaxHead + chunk.size());
}

TEST_CASE("http_connect: an earlier error wins over the size cap", "[http_connect]") {
  // A bad request line followed by 10 KiB: the 405, not a 431, whatever the pieces.
  REQUIRE(StatusOf("GET / HTTP/1.1\r\n" + std::string(10000, 'x')) == 405);
}

TEST_CASE("http_connect: EncodeConnectResponse", "[http_connect]") {
  REQUIRE(client::EncodeConnectResponse(200, "Connection established") ==
          "HTTP/1.1 200 Connection established\r\n\r\n");
  REQUIRE(client::EncodeConnectResponse(502, "Bad Gateway", "no route to vault.example.internal") ==
          "HTTP/1.1 502 Bad Gateway\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 35\r\n"
          "Connection: close\r\n"
          "\r\n"
          "no route to vault.example.internal\n");
  REQUIRE(client::EncodeConnectResponse(405, "Method Not Allowed") ==
          "HTTP/1.1 405 Method Not Allowed\r\n"
          "Allow: CONNECT\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 19\r\n"
          "Connection: close\r\n"
          "\r\n"
          "Method Not Allowed\n");
  // The head stays well-formed whatever the caller passes.
  REQUIRE(client::EncodeConnectResponse(403, "No\r\nSet-Cookie: x", "") ==
          "HTTP/1.1 403 No??Set-Cookie: x\r\n"
          "Content-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 18\r\n"
          "Connection: close\r\n"
          "\r\n"
          "No??Set-Cookie: x\n");
  REQUIRE(client::EncodeConnectResponse(99, "x").rfind("HTTP/1.1 500 x\r\n", 0) == 0);
  REQUIRE(client::EncodeConnectResponse(600, "x").rfind("HTTP/1.1 500 x\r\n", 0) == 0);
  REQUIRE(client::ReasonPhrase(431) == "Request Header Fields Too Large");
  REQUIRE(client::ReasonPhrase(299) == "Error");
}

TEST_CASE("http_connect: every refusal's response names its status", "[http_connect]") {
  for (std::string_view head : {std::string_view("GET / HTTP/1.1\r\n\r\n"), std::string_view("CONNECT a HTTP/1.1\r\n\r\n"),
                                std::string_view("CONNECT a:1 HTTP/3.0\r\n\r\n")}) {
    HttpConnectParser p;
    REQUIRE(p.Feed(Span(head)) == Result::kError);
    const std::string response = p.ErrorResponse();
    const std::string status_line = "HTTP/1.1 " + std::to_string(p.error_status()) + " " +
                                    std::string(client::ReasonPhrase(p.error_status())) + "\r\n";
    REQUIRE(response.rfind(status_line, 0) == 0);
    REQUIRE(response.find(std::string(p.error()) + "\n") != std::string::npos);
  }
}

TEST_CASE("http_connect: EncodeConnectRequest round trips", "[http_connect]") {
  REQUIRE(client::EncodeConnectRequest(Destination{std::string("example.com"), 443}) ==
          "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  for (const Destination& d : {Destination{std::string("vault.example.internal"), 8443},
                               Destination{base::IpAddress::V4(10, 0, 0, 1), 22},
                               Destination{*base::IpAddress::Parse("fd00::1"), 1},
                               Destination{*base::IpAddress::Parse("::ffff:10.0.0.1"), 65535}}) {
    INFO(d.ToString());
    const ConnectRequest r = Done(client::EncodeConnectRequest(d));
    REQUIRE(r.target == d);
  }
  REQUIRE(client::EncodeConnectRequest(Destination{std::string("example.com"), 0}).empty());
  REQUIRE(client::EncodeConnectRequest(Destination{std::string("Example.com"), 443}).empty());
  REQUIRE(client::EncodeConnectRequest(Destination{std::string("1.2.3.4"), 443}).empty());
  REQUIRE(client::EncodeConnectRequest(Destination{base::IpAddress{}, 443}).empty());
}
