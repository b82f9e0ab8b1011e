// h1_parser.h: a strict, incremental HTTP/1.1 message parser (requests or responses) over
// http-parser 2.9: header limits, lower-cased field names, and the framing facts a server or
// client needs (Content-Length, chunked, keep-alive, upgrade, Expect: 100-continue).
//
// Strictness beyond http-parser's own: a request with Transfer-Encoding must end in chunked;
// Content-Length together with Transfer-Encoding is refused (request smuggling); HTTP/1.1
// requests need exactly one Host, HTTP/1.0 at most one; only HTTP/1.0 and 1.1 are accepted;
// at most kMaxFields fields. Trailer fields of chunked bodies are parsed and dropped.
#ifndef P2PROXY_HTTP_H1_PARSER_H_
#define P2PROXY_HTTP_H1_PARSER_H_

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "http/exchange.h"

namespace p2proxy::http {

// H1Head is one decoded message head.
struct H1Head {
  std::string method;  // requests: "GET"
  std::string target;  // requests: the request-target as sent ("/a?b", "*", "http://h/p")
  int status = 0;      // responses: 200
  int version = 11;    // 10 or 11
  // headers: every field in order (Host included), names lower-case, values trimmed.
  std::vector<Header> headers;
  int64_t content_length = -1;  // -1: no Content-Length
  bool chunked = false;         // Transfer-Encoding ends in chunked
  bool transfer_encoding = false;  // a Transfer-Encoding field was present
  // keep_alive: HTTP/1.1 without "Connection: close", or HTTP/1.0 with "keep-alive". For a
  // response, H1Parser::keep_alive() at message end also accounts for close-delimited bodies.
  bool keep_alive = true;
  // upgrade: the connection switches protocols after this message: a request with Upgrade and
  // "Connection: upgrade" (or CONNECT), or a 101 response with both. The parser stops there.
  bool upgrade = false;
  bool expect_continue = false;  // "Expect: 100-continue"

  // Find returns the first field named |lower_name|, or nullptr.
  const Header* Find(std::string_view lower_name) const;
  void Clear();
};

// H1Error says why a message was refused; each maps to the status a server answers with.
enum class H1Error {
  kNone,
  kMalformed,       // bad syntax: 400
  kHeaderTooLarge,  // head above max_header_bytes or kMaxFields fields: 431
  kBadFraming,      // Content-Length / Transfer-Encoding / chunk errors: 400
  kBadHost,         // missing or repeated Host: 400
  kBadVersion,      // not HTTP/1.0 or 1.1: 505
  kTruncated,       // the stream ended inside a message (Finish)
};

// H1ErrorStatus is the status a server answers |error| with (400, 431, 505).
int H1ErrorStatus(H1Error error);
std::string_view H1ErrorName(H1Error error);

class H1Parser {
 public:
  enum class Kind { kRequest, kResponse };
  static constexpr size_t kMaxFields = 256;

  // Visitor receives the events of each message. It may call Pause(), Resume() and the
  // accessors from inside them (not Parse, Finish or Reset).
  class Visitor {
   public:
    virtual ~Visitor() = default;
    // OnHead: the head is complete and valid; |head| stays valid until the next message begins.
    // Called from Parse after http-parser returned, not from inside it.
    virtual void OnHead(H1Head& head) = 0;
    // OnBody: body bytes (de-chunked), valid only during the call.
    virtual void OnBody(base::ByteSpan data) = 0;
    // OnMessageEnd: the message (body included) is complete.
    virtual void OnMessageEnd() = 0;
  };

  H1Parser(Kind kind, Visitor* visitor, size_t max_header_bytes);
  H1Parser(const H1Parser&) = delete;
  H1Parser& operator=(const H1Parser&) = delete;

  // Parse consumes a prefix of |data| and returns its length. It stops early when the visitor
  // paused the parser, after a message that upgrades the connection (upgraded()), or on an
  // error (error() != kNone, after which nothing more is consumed). Unconsumed bytes are the
  // caller's to keep and feed again.
  size_t Parse(base::ByteSpan data);
  // Finish reports end of stream: a close-delimited response body ends (OnMessageEnd); a
  // message cut short sets error() to kTruncated. Returns whether the stream ended cleanly.
  bool Finish();

  // Pause stops Parse after the current callback; Resume lets the next Parse go on.
  void Pause();
  void Resume();
  bool paused() const { return paused_; }

  // SetSkipBody: the next response has no body whatever its fields say (a reply to HEAD).
  void SetSkipBody(bool skip) { skip_body_ = skip; }
  // Reset forgets any partial message and any upgrade, so parsing starts a new message.
  void Reset();

  H1Error error() const { return error_; }
  // error_detail names the http-parser error, e.g. "HPE_INVALID_METHOD".
  std::string_view error_detail() const { return error_detail_; }
  bool upgraded() const { return upgraded_; }
  // in_message: bytes of a message have been seen and its end has not.
  bool in_message() const { return in_message_; }
  // in_head: a message has begun and its head is not complete.
  bool in_head() const { return in_message_ && !head_done_; }
  // keep_alive: after OnMessageEnd, whether the connection may carry another message.
  bool keep_alive() const { return keep_alive_; }
  const H1Head& head() const { return head_; }
  // consumed_in_call: inside OnHead or OnMessageEnd, how many bytes of the current Parse call's
  // input the message took so far (e.g. where an upgraded connection's other protocol starts).
  size_t consumed_in_call() const { return call_used_; }

 private:
  static int OnMessageBeginCb(http_parser* p);
  static int OnUrlCb(http_parser* p, const char* at, size_t len);
  static int OnHeaderFieldCb(http_parser* p, const char* at, size_t len);
  static int OnHeaderValueCb(http_parser* p, const char* at, size_t len);
  static int OnHeadersCompleteCb(http_parser* p);
  static int OnBodyCb(http_parser* p, const char* at, size_t len);
  static int OnMessageCompleteCb(http_parser* p);

  void Fail(H1Error error, std::string_view detail);
  void FailFromParser();
  bool FinishField();
  bool CheckHead();

  Kind kind_;
  Visitor* visitor_;
  size_t max_header_bytes_;
  http_parser parser_;
  H1Head head_;
  size_t head_bytes_ = 0;  // bytes of the current head consumed so far
  size_t call_used_ = 0;   // bytes of the current Parse call's input consumed
  bool in_message_ = false;
  bool head_done_ = false;
  bool head_pending_ = false;     // headers complete inside http-parser, OnHead not yet called
  bool message_pending_ = false;  // message complete inside http-parser, OnMessageEnd not yet
  bool in_value_ = false;      // the last field callback was a value
  bool paused_ = false;
  bool skip_body_ = false;
  bool upgraded_ = false;
  bool keep_alive_ = true;
  bool executing_ = false;
  H1Error error_ = H1Error::kNone;
  std::string error_detail_;
};

// AsciiLower lower-cases |s| in place (ASCII letters only).
void AsciiLowerInPlace(std::string* s);
// EqualsIgnoreCase: whether |a| equals the lower-case |lower| ignoring ASCII case.
bool EqualsIgnoreCase(std::string_view a, std::string_view lower);
// HasToken: whether the comma-separated list |value| holds |lower_token| (case-insensitive).
bool HasToken(std::string_view value, std::string_view lower_token);

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_H1_PARSER_H_
