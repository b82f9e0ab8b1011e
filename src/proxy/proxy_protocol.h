// proxy_protocol.h: the PROXY protocol version 2 (the binary form of haproxy's
// "proxy-protocol.txt"): an encoder and a strict, incremental parser.
//
// Wire format (all integers big-endian):
//   0  12  signature 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
//   12  1  version (high nibble, always 2) | command (low nibble: 0 LOCAL, 1 PROXY)
//   13  1  family (high nibble: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
//          | transport (low nibble: 0 UNSPEC, 1 STREAM, 2 DGRAM)
//   14  2  length of what follows: the address block, then TLVs
//   16     address block: INET  src(4) dst(4) src_port(2) dst_port(2)          = 12
//                         INET6 src(16) dst(16) src_port(2) dst_port(2)        = 36
//                         UNIX  src(108) dst(108)                              = 216
//   ..     TLVs: type(1) length(2) value(length), to the end of the header
//
// The v1 text form ("PROXY TCP4 ...\r\n") is not supported.
#ifndef P2PROXY_PROXY_PROXY_PROTOCOL_H_
#define P2PROXY_PROXY_PROXY_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"

namespace p2proxy::proxy {

// Spec constants.
inline constexpr uint8_t kProxyV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
inline constexpr size_t kProxyV2FixedLen = 16;  // signature, ver/cmd, fam/transport, length

// TLV types registered by the spec.
inline constexpr uint8_t kTlvAlpn = 0x01;       // PP2_TYPE_ALPN: the negotiated ALPN protocol
inline constexpr uint8_t kTlvAuthority = 0x02;  // PP2_TYPE_AUTHORITY: host name (the SNI)
inline constexpr uint8_t kTlvCrc32c = 0x03;     // PP2_TYPE_CRC32C: 4-byte CRC32C of the header
inline constexpr uint8_t kTlvNoop = 0x04;       // PP2_TYPE_NOOP: padding, ignored (may repeat)
inline constexpr uint8_t kTlvUniqueId = 0x05;   // PP2_TYPE_UNIQUE_ID: opaque id, <= 128 bytes
inline constexpr uint8_t kTlvSsl = 0x20;        // PP2_TYPE_SSL: client TLS details (sub-TLVs)
inline constexpr uint8_t kTlvNetns = 0x30;      // PP2_TYPE_NETNS: network namespace name
inline constexpr size_t kMaxUniqueIdLen = 128;

// TLV types private to p2proxy, in the spec's application range 0xE0-0xEF
// (PP2_TYPE_MIN_CUSTOM..PP2_TYPE_MAX_CUSTOM). The server adds them when it forwards an
// authenticated overlay connection to a backend, so the backend learns who is calling without
// running its own authentication. A backend must trust them only on connections from p2proxy.
//   kTlvP2proxyUser     the authenticated user's name, UTF-8, non-empty.
//   kTlvP2proxyRoles    the user's roles, UTF-8, separated by ',' (may be empty: no roles).
//   kTlvP2proxyPeerKey  the caller's WireGuard public key, exactly 32 raw bytes.
inline constexpr uint8_t kTlvP2proxyUser = 0xE0;
inline constexpr uint8_t kTlvP2proxyRoles = 0xE1;
inline constexpr uint8_t kTlvP2proxyPeerKey = 0xE2;
inline constexpr size_t kPeerKeyLen = 32;

struct Tlv {
  uint8_t type = 0;
  std::vector<uint8_t> value;
  friend bool operator==(const Tlv&, const Tlv&) = default;
};

// ProxyHeader is one decoded header. With |local| (the LOCAL command: a health check or a
// connection the proxy made itself) the addresses are unspecified and |transport| is kUnspec:
// the spec tells the receiver to discard them and use the real connection's endpoints. With
// PROXY, both addresses are IPv4 or both IPv6, or both unspecified (family UNSPEC: the sender
// did not know them).
struct ProxyHeader {
  enum Transport : uint8_t { kUnspec = 0, kStream = 1, kDgram = 2 };
  bool local = false;
  Transport transport = kStream;
  base::SocketAddress source, destination;
  std::vector<Tlv> tlvs;

  // FindTlv returns the first TLV of |type|, or null.
  const Tlv* FindTlv(uint8_t type) const;
  friend bool operator==(const ProxyHeader&, const ProxyHeader&) = default;
};

// Crc32c is the CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of |data|, continuing
// from |crc| (0 to start). Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(base::ByteSpan data, uint32_t crc = 0);

struct EncodeOptions {
  // add_crc32c appends a CRC32C TLV unless |header.tlvs| already holds one.
  bool add_crc32c = false;
};

// EncodeProxyV2 writes |header| as a PROXY v2 header. A CRC32C TLV (present in the header or
// added through |options|) is filled in with the checksum of the encoded bytes, whatever value
// it held. Returns an empty vector if the header cannot be encoded: PROXY with source and
// destination of different families, or with addresses but transport kUnspec, or more than
// 65535 bytes after the fixed part. LOCAL ignores the addresses and transport.
std::vector<uint8_t> EncodeProxyV2(const ProxyHeader& header, EncodeOptions options = {});

// ProxyV2Parser parses a header from the first bytes of a connection. Feed it everything
// received so far (the same bytes again plus the new ones) until it says kDone or kError; it
// keeps no pointer into them. Bytes past header_len() are the connection's payload. Strict:
// the signature, version 2, a known command and family/transport pair, a length that covers
// the address block, TLVs that exactly fill the rest, no duplicate TLV (except NOOP), the
// p2proxy TLVs well-formed, and a CRC32C TLV (if present) that matches.
class ProxyV2Parser {
 public:
  enum class Result { kContinue, kDone, kError };
  // Error names why a header was refused, for the caller's counters.
  enum class Error {
    kNone,
    kBadSignature,     // not a PROXY v2 header at all
    kVersion1,         // the v1 text form
    kBadVersion,       // version nibble other than 2
    kBadCommand,       // command other than LOCAL or PROXY
    kBadFamily,        // unknown family/transport pair
    kUnsupportedUnix,  // PROXY over AF_UNIX: no SocketAddress for it
    kTooLong,          // declared length above the cap
    kShortAddresses,   // length smaller than the family's address block
    kTruncatedTlv,     // a TLV's declared value runs past the end of the header
    kTrailingBytes,    // 1 or 2 bytes left after the last TLV: too few for a TLV
    kBadTlv,           // a known TLV with an invalid value (length, emptiness)
    kDuplicateTlv,     // the same TLV type twice
    kCrcMismatch,      // CRC32C TLV present and wrong
  };

  static constexpr size_t kDefaultMaxHeaderLen = kProxyV2FixedLen + 2048;

  // |max_header_len| caps the whole header (fixed part included); a larger declared length is
  // an error, so a peer cannot make the caller buffer up to 64 KiB.
  explicit ProxyV2Parser(size_t max_header_len = kDefaultMaxHeaderLen);

  // Parse looks at |received_so_far|. kContinue: a valid prefix, more bytes needed. kDone:
  // header() and header_len() are set. kError: error() and error_code() say why. After kDone
  // or kError, later calls return the same result.
  Result Parse(base::ByteSpan received_so_far);

  const ProxyHeader& header() const { return header_; }
  // header_len is the number of bytes the header took (valid after kDone).
  size_t header_len() const { return header_len_; }
  std::string_view error() const { return error_; }
  Error error_code() const { return error_code_; }

 private:
  Result Fail(Error code, std::string message);
  Result ParseComplete(base::ByteSpan header_bytes);

  size_t max_header_len_;
  Result result_ = Result::kContinue;
  ProxyHeader header_;
  size_t header_len_ = 0;
  Error error_code_ = Error::kNone;
  std::string error_;
};

}  // namespace p2proxy::proxy

#endif  // P2PROXY_PROXY_PROXY_PROTOCOL_H_
