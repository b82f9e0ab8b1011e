// client_hello.h: a strict, non-consuming peek at the TLS ClientHello (RFC 8446 4.1.2, RFC 5246
// 7.4.1.2) for the SNI (RFC 6066 3) and ALPN (RFC 7301) a router needs before any TLS runs.
#ifndef P2PROXY_TLS_CLIENT_HELLO_H_
#define P2PROXY_TLS_CLIENT_HELLO_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"

namespace p2proxy::tls {

// Wire constants (IANA "TLS Parameters"; RFC 8446 5.1, 6, 4.2).
inline constexpr uint8_t kContentTypeAlert = 21;
inline constexpr uint8_t kContentTypeHandshake = 22;
inline constexpr uint8_t kHandshakeTypeClientHello = 1;
inline constexpr uint8_t kAlertLevelFatal = 2;
inline constexpr uint8_t kAlertHandshakeFailure = 40;
inline constexpr uint8_t kAlertDecodeError = 50;
inline constexpr uint8_t kAlertProtocolVersion = 70;
inline constexpr uint8_t kAlertInternalError = 80;
inline constexpr uint8_t kAlertUnrecognizedName = 112;
inline constexpr uint8_t kAlertNoApplicationProtocol = 120;
inline constexpr uint16_t kExtServerName = 0;
inline constexpr uint16_t kExtAlpn = 16;
inline constexpr uint16_t kExtSupportedVersions = 43;
inline constexpr uint8_t kServerNameTypeHostName = 0;
inline constexpr uint16_t kVersionTls10 = 0x0301;
inline constexpr uint16_t kVersionTls12 = 0x0303;
inline constexpr uint16_t kVersionTls13 = 0x0304;
inline constexpr size_t kRecordHeaderLen = 5;
inline constexpr size_t kHandshakeHeaderLen = 4;
inline constexpr size_t kMaxPlaintextRecordLen = 1 << 14;  // RFC 8446 5.1: 2^14
inline constexpr size_t kMaxHostNameLen = 255;             // a DNS name, RFC 1035 2.3.4

// Implementation limit: how much handshake data the peek buffers by default. Real ClientHellos
// are well under 2 KiB (post-quantum key shares bring them near 1.8 KiB).
inline constexpr size_t kDefaultMaxClientHelloLen = 16 * 1024;

// ClientHelloInfo is what the peek extracts.
struct ClientHelloInfo {
  std::string sni;                // host_name, lower-cased; empty if the client sent none
  std::vector<std::string> alpn;  // in the client's order; empty if no ALPN extension
  bool offers_tls13 = false;      // supported_versions lists 0x0304
  uint16_t legacy_version = 0;    // ClientHello.legacy_version (0x0303 for TLS 1.2 and 1.3)
};

// ClientHelloPeek parses the ClientHello at the start of a TLS connection without taking the
// bytes: the caller keeps everything received and calls Parse again with the longer buffer until
// the result is kDone or kError. The hello may span several handshake records; their fragments
// are reassembled up to |max_hello_len| bytes of handshake message (more is kError).
//
// Work is incremental: each call looks only at bytes not seen before, so a peer trickling bytes
// one at a time costs linear time. Once kDone or kError, Parse keeps returning it.
class ClientHelloPeek {
 public:
  enum class Result { kContinue, kDone, kError };

  explicit ClientHelloPeek(size_t max_hello_len = kDefaultMaxClientHelloLen);

  // Parse looks at |received_so_far|, which must begin with every byte passed to the previous
  // call (the caller appends, never drops). kContinue: a valid prefix, more bytes needed.
  // kDone: info() is filled. kError: error() says why; the connection is not TLS we accept.
  Result Parse(base::ByteSpan received_so_far);

  // info is valid after kDone.
  const ClientHelloInfo& info() const { return info_; }
  // error is a short fixed reason after kError ("not a TLS handshake record"), else empty.
  std::string_view error() const { return error_; }
  // hello_end is, after kDone, the offset just past the record that completed the ClientHello.
  size_t hello_end() const { return records_end_; }

 private:
  Result Fail(const char* reason);
  // ParseHello parses the reassembled handshake message (header included).
  Result ParseHello();

  size_t max_hello_len_;
  Result state_ = Result::kContinue;
  size_t records_end_ = 0;         // input offset past the last complete record consumed
  std::vector<uint8_t> handshake_;  // reassembled handshake bytes
  ClientHelloInfo info_;
  const char* error_ = "";
};

// AlertRecord returns a fatal alert record (RFC 8446 6) with |description|, e.g.
// kAlertUnrecognizedName when no certificate matches the SNI. Sent in the clear, before any
// ServerHello, with record version TLS 1.2 as RFC 8446 5.1 asks of a legacy_record_version.
std::vector<uint8_t> AlertRecord(uint8_t description);

}  // namespace p2proxy::tls

#endif  // P2PROXY_TLS_CLIENT_HELLO_H_
