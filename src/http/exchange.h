// exchange.h: the contract between the client-facing HTTP servers (HTTP/1.1 in h1_server.h,
// HTTP/2 in h2_server.h) and whatever answers their requests (the reverse proxy in
// reverse_proxy.h, the :80 redirect, tests). A server decodes a request head, asks its Router for
// an ExchangeHandler, and from then on the two talk only through Exchange (handler -> server)
// and ExchangeHandler (server -> handler). The handler never sees whether the request came over
// HTTP/1.1 or HTTP/2.
//
// Threading: everything runs on the connection's loop thread.
#ifndef P2PROXY_HTTP_EXCHANGE_H_
#define P2PROXY_HTTP_EXCHANGE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "base/bytes.h"
#include "net/stream.h"

namespace p2proxy::http {

// Header is one field. Decoders lower-case |name|; |value| is as received, without the
// surrounding whitespace.
struct Header {
  std::string name;
  std::string value;
};

// RequestHead is a request as the client-facing server decoded it.
struct RequestHead {
  std::string method;     // "GET"
  std::string scheme;     // "https" when the client reached us over TLS, else "http"
  std::string authority;  // Host (HTTP/1.1) or :authority (HTTP/2), as sent
  std::string path;       // origin form, "/a/b?c" ("*" for OPTIONS *)
  // headers: every other field in order, names lower-case, no pseudo-headers. HTTP/1.1 passes
  // hop-by-hop fields through; the reverse proxy removes them. Host is not repeated here.
  std::vector<Header> headers;
  // content_length: from Content-Length, or -1 when the length is not known in advance
  // (chunked HTTP/1.1, HTTP/2 without content-length).
  int64_t content_length = -1;
  // end_stream: no body follows (HTTP/1.1 without Content-Length or chunking, HTTP/2 HEADERS
  // with END_STREAM). When set, OnRequestEnd still arrives, right after the handler is made.
  bool end_stream = false;
  // upgrade_websocket: an HTTP/1.1 GET with "Upgrade: websocket" and "Connection: upgrade".
  // Always false on HTTP/2 (extended CONNECT is not offered).
  bool upgrade_websocket = false;
  int version = 11;  // 10, 11 or 20
};

// ResponseHead is what the handler answers with. Names are lower-case; the server drops the
// fields its framing owns (connection, keep-alive, transfer-encoding, and for HTTP/2 every
// hop-by-hop field) and frames the body itself: Content-Length when content_length >= 0,
// otherwise chunked (HTTP/1.1) or DATA frames until end_stream (HTTP/2).
struct ResponseHead {
  int status = 200;
  std::vector<Header> headers;
  int64_t content_length = -1;
};

// ConnectionInfo describes the client-facing connection an exchange arrived on.
struct ConnectionInfo {
  std::string peer_address;  // the client's address without port, e.g. "100.96.0.5"
  uint16_t peer_port = 0;
  bool tls = false;
  std::string sni;   // the TLS server name, empty without TLS or SNI
  std::string alpn;  // "h2", "http/1.1" or empty
};

// ExchangeHandler receives one request's events from the server. It is owned by the server,
// which destroys it once the exchange is over: the response's end has been queued (or Abort
// was called) and the request body has ended, or after OnReset returns. The server never
// destroys it while one of the handler's calls into Exchange is on the stack.
class ExchangeHandler {
 public:
  virtual ~ExchangeHandler() = default;
  // OnRequestBody delivers body bytes (de-chunked, or from DATA frames); valid during the call.
  virtual void OnRequestBody(base::ByteSpan data) = 0;
  // OnRequestEnd: the request body is complete (also sent when the request had none).
  virtual void OnRequestEnd() = 0;
  // OnReset: the client went away, reset the stream, or the connection failed. The exchange is
  // dead: call nothing more on it. The handler is destroyed after this returns.
  virtual void OnReset(const absl::Status& why) = 0;
  // OnResponseDrained: ResponseQueueSize() fell to zero; a handler that stopped reading its
  // source because the queue was high can go on.
  virtual void OnResponseDrained() {}
};

// Exchange is the server's half of one request, used by its handler.
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const RequestHead& request() const = 0;
  virtual const ConnectionInfo& connection() const = 0;
  // PauseRequestBody / ResumeRequestBody: backpressure towards the client (HTTP/1.1 stops
  // reading the socket; HTTP/2 stops returning flow-control window for this stream).
  virtual void PauseRequestBody() = 0;
  virtual void ResumeRequestBody() = 0;
  // SendResponseHead sends the status line and fields, once. With |end_stream| no body follows.
  virtual void SendResponseHead(const ResponseHead& head, bool end_stream) = 0;
  // SendResponseBody queues body bytes (copied); |end_stream| ends the response.
  virtual void SendResponseBody(base::ByteSpan data, bool end_stream) = 0;
  // ResponseQueueSize: response bytes queued and not yet handed to the connection's stream.
  virtual size_t ResponseQueueSize() const = 0;
  // SendError answers with a short text/plain response (e.g. 403, 502, 504) if the head has not
  // been sent; otherwise it acts as Abort.
  virtual void SendError(int status, std::string_view text) = 0;
  // Abort ends the exchange abnormally: HTTP/2 resets the stream (INTERNAL_ERROR), HTTP/1.1
  // closes the connection (the client sees a truncated response, never a wrong one).
  virtual void Abort() = 0;
  // TakeUpgradedStream: after SendResponseHead with status 101 on an HTTP/1.1 exchange, hands
  // over the connection's stream (with its handler unset) and stores in |*pending| the bytes the
  // client already sent after the request head. The server is finished with the connection.
  // Returns nullptr on HTTP/2, or if the head sent was not a 101.
  virtual std::unique_ptr<net::Stream> TakeUpgradedStream(std::vector<uint8_t>* pending) = 0;
};

// Router makes the handler for each request once its head is complete. Returning nullptr
// makes the server answer 404 itself.
class Router {
 public:
  virtual ~Router() = default;
  virtual std::unique_ptr<ExchangeHandler> OnRequest(Exchange& exchange) = 0;
};

// ServerLimits bound what one client-facing connection may cost. A violation gets the status
// named here (HTTP/1.1; HTTP/2 answers with the status when a stream is open, GOAWAY otherwise)
// and then a close.
struct ServerLimits {
  size_t max_header_bytes = 64 * 1024;   // request line + fields; beyond: 431
  uint32_t header_timeout_ms = 10000;    // head not complete this long after the first byte
                                         // of a request: 408
  uint32_t first_request_timeout_ms = 10000;  // no complete request head this long after the
                                         // connection started (HTTP/1.1: 408; HTTP/2: GOAWAY)
  uint32_t idle_timeout_ms = 60000;      // no request in flight and no bytes: close quietly
  uint32_t send_timeout_ms = 60000;      // response bytes wait for the client and none leave
                                         // this long (it stopped reading, or, on HTTP/2, never
                                         // opens its window): close (HTTP/2: that stream only,
                                         // when the connection itself still moves)
  uint32_t max_concurrent_streams = 128; // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
};

}  // namespace p2proxy::http

#endif  // P2PROXY_HTTP_EXCHANGE_H_
