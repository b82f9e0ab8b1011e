// http_connect.h: the head of an HTTP CONNECT request (RFC 9110 §9.3.6, syntax of RFC 9112) as
// the client's local HTTP proxy reads it: a strict, incremental parser, and the encoders of the
// proxy's responses. Pure: no I/O, no clock.
//
// What is accepted:
//   request-line  "CONNECT" SP authority SP ("HTTP/1.1" / "HTTP/1.0") CRLF
//   authority     host ":" port, port 1..65535; host a name (socks5::ParseHostName's rules), an
//                 IPv4 literal, or an IPv6 literal in brackets
//   fields        field-name ":" OWS field-value OWS CRLF, at most kMaxFields of them
//   end           CRLF
// Lines end in CRLF only. Refused: any other method (405), an HTTP version other than 1.0 and
// 1.1 (505), a head longer than kMaxHead or with more than kMaxFields fields (431), and
// everything else malformed (400): a bare CR or LF, a NUL or other control byte, whitespace
// before a field's colon, obs-fold (a line starting with whitespace), a name that is not a token.
// Fields are ignored, except that Proxy-Authorization is noted: nothing here checks it.
#ifndef P2PROXY_CLIENT_HTTP_CONNECT_H_
#define P2PROXY_CLIENT_HTTP_CONNECT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "client/socks5.h"

namespace p2proxy::client {

// ConnectRequest is what a CONNECT head says.
struct ConnectRequest {
  socks5::Destination target;  // port 1..65535
  int minor_version = 1;       // HTTP/1.<minor_version>: 0 or 1
  bool has_proxy_authorization = false;
  friend bool operator==(const ConnectRequest&, const ConnectRequest&) = default;
};

// HttpConnectParser reads one request head from the start of a connection. Feed it each piece
// as it arrives (not the bytes so far: it keeps its own copy of the head, at most kMaxHead
// bytes) until it says kDone or kError. Lines are checked as each completes, so a bad request
// line is refused before the fields arrive.
class HttpConnectParser {
 public:
  enum class Result { kNeedMore, kDone, kError };

  static constexpr size_t kMaxHead = 8 * 1024;  // request line, fields and the blank line
  static constexpr size_t kMaxFields = 100;

  // Feed takes the next |piece| of the connection. kNeedMore: all of it was taken, more is
  // needed. kDone: request() is set, and the first consumed() bytes of |piece| ended the head;
  // the rest of |piece| (a TLS ClientHello a client sent without waiting, say) belongs to the
  // tunnel. kError: error_status() and error() say why. After kDone or kError, later calls take
  // nothing (consumed() is 0) and return the same result.
  Result Feed(base::ByteSpan piece);

  // consumed is how many bytes of the last piece went into the head.
  size_t consumed() const { return consumed_; }
  // head_len is the head's length in all (kDone), the blank line included.
  size_t head_len() const { return head_len_; }
  const ConnectRequest& request() const { return request_; }

  // error_status is the HTTP status to answer a refused head with (400, 405, 431 or 505), or 0.
  int error_status() const { return error_status_; }
  // error says what is wrong, naming the values, for the log and the response body.
  std::string_view error() const { return error_; }
  // ErrorResponse is the response for a refused head: EncodeConnectResponse(error_status(),
  // ReasonPhrase(error_status()), error()).
  std::string ErrorResponse() const;

 private:
  Result Fail(int status, std::string message);
  // TakeLine checks one complete line of the head (without its CRLF).
  Result TakeLine(std::string_view line);
  Result TakeRequestLine(std::string_view line);
  Result TakeField(std::string_view line);

  Result result_ = Result::kNeedMore;
  std::string head_;       // the bytes of the head received so far
  size_t line_start_ = 0;  // where the line being received starts in head_
  size_t scan_from_ = 0;   // head_ holds no LF in [line_start_, scan_from_)
  size_t line_number_ = 0;  // of the line being received, from 1, for messages
  size_t num_fields_ = 0;
  size_t consumed_ = 0;
  size_t head_len_ = 0;
  ConnectRequest request_;
  int error_status_ = 0;
  std::string error_;
};

// ReasonPhrase is the RFC 9110 reason phrase of |status| ("Bad Gateway"), or "Error" for a
// status it does not know.
std::string_view ReasonPhrase(int status);

// EncodeConnectResponse writes a response to a CONNECT request. A 2xx is the head alone
// ("HTTP/1.1 200 Connection established\r\n\r\n"): RFC 9110 forbids content and
// Content-Length on it, and the tunnel starts right after. Any other status gets a text/plain
// body (|body|, or |reason| if |body| is empty, with a newline added), Content-Length,
// "Connection: close", and for 405 "Allow: CONNECT". A status outside 200..599 becomes 500;
// control bytes in |reason| become '?', so the head is always well-formed.
std::string EncodeConnectResponse(int status, std::string_view reason, std::string_view body = {});

// EncodeConnectRequest writes the head a client sends to open a tunnel to |target|, with a Host
// field (tests, the fuzzer's round trip). Returns "" if |target| cannot be written: port 0, an
// IpAddress of family kNone, or a name not in ParseHostName's form.
std::string EncodeConnectRequest(const socks5::Destination& target);

}  // namespace p2proxy::client

#endif  // P2PROXY_CLIENT_HTTP_CONNECT_H_
