// socks5.h: SOCKS version 5 (RFC 1928) as the client's local proxy speaks it: strict,
// incremental parsers of what a SOCKS5 client sends and encoders of what the proxy answers.
// Pure: no I/O, no clock; the caller owns the connection.
//
// Wire format (all integers big-endian):
//   greeting          VER(1)=5 NMETHODS(1)=1..255 METHODS(NMETHODS)
//   method selection  VER(1)=5 METHOD(1)
//   request           VER(1)=5 CMD(1) RSV(1)=0 ATYP(1) DST.ADDR DST.PORT(2)
//   reply             VER(1)=5 REP(1) RSV(1)=0 ATYP(1) BND.ADDR BND.PORT(2)
//   UDP datagram      RSV(2)=0 FRAG(1) ATYP(1) DST.ADDR DST.PORT(2) DATA
//   ADDR by ATYP      1: 4 bytes IPv4; 3: LEN(1) then LEN bytes of name; 4: 16 bytes IPv6
//
// Only method 0x00 (no authentication) is supported: the proxy listens on loopback for the
// local user, and RFC 1929 username/password would add nothing but a plaintext secret.
//
// The destination types and the host-name rules here are shared with http_connect.h, so both
// local proxies hand the dialer the same thing.
#ifndef P2PROXY_CLIENT_SOCKS5_H_
#define P2PROXY_CLIENT_SOCKS5_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/ip_prefix.h"

namespace p2proxy::client::socks5 {

// Spec constants (RFC 1928).
inline constexpr uint8_t kVersion5 = 0x05;  // VER of every SOCKS5 message (not of UDP datagrams)
inline constexpr uint8_t kVersion4 = 0x04;  // VER of SOCKS4/4a: refused with a hint to use SOCKS5

// Authentication methods (§3), offered in the greeting and chosen in the method selection.
inline constexpr uint8_t kMethodNoAuth = 0x00;        // NO AUTHENTICATION REQUIRED: the only one used
inline constexpr uint8_t kMethodGssapi = 0x01;        // GSSAPI (RFC 1961): not supported
inline constexpr uint8_t kMethodUserPass = 0x02;      // USERNAME/PASSWORD (RFC 1929): not supported
inline constexpr uint8_t kMethodNoAcceptable = 0xFF;  // NO ACCEPTABLE METHODS: the client must close

// Commands (§4).
inline constexpr uint8_t kCmdConnect = 0x01;       // CONNECT: a TCP stream to DST
inline constexpr uint8_t kCmdBind = 0x02;          // BIND: accept one inbound TCP connection (FTP)
inline constexpr uint8_t kCmdUdpAssociate = 0x03;  // UDP ASSOCIATE: relay UDP datagrams

// Address types (§5).
inline constexpr uint8_t kAtypIpv4 = 0x01;        // 4-byte IPv4 address
inline constexpr uint8_t kAtypDomainName = 0x03;  // 1-byte length, then that many name bytes
inline constexpr uint8_t kAtypIpv6 = 0x04;        // 16-byte IPv6 address

// Reply codes, REP (§6).
inline constexpr uint8_t kRepSucceeded = 0x00;                // succeeded
inline constexpr uint8_t kRepGeneralFailure = 0x01;           // general SOCKS server failure
inline constexpr uint8_t kRepNotAllowed = 0x02;               // connection not allowed by ruleset
inline constexpr uint8_t kRepNetworkUnreachable = 0x03;       // network unreachable
inline constexpr uint8_t kRepHostUnreachable = 0x04;          // host unreachable
inline constexpr uint8_t kRepConnectionRefused = 0x05;        // connection refused
inline constexpr uint8_t kRepTtlExpired = 0x06;               // TTL expired
inline constexpr uint8_t kRepCommandNotSupported = 0x07;      // command not supported
inline constexpr uint8_t kRepAddressTypeNotSupported = 0x08;  // address type not supported

inline constexpr uint8_t kReserved = 0x00;  // RSV: every reserved byte must be zero
inline constexpr size_t kMaxNameLen = 255;  // a DOMAINNAME's length is one byte
inline constexpr size_t kMaxLabelLen = 63;  // RFC 1035 §2.3.4: a DNS label is at most 63 bytes

// Host is where a client wants to go: an IP literal, or a host name still to be resolved.
using Host = std::variant<base::IpAddress, std::string>;

// Destination is a host and a port. A host name is always in the form ParseHostName returns
// (lowercase, no trailing dot, never an IPv4 literal).
struct Destination {
  Host host;
  uint16_t port = 0;

  // name is the host name, or null if the host is an IP literal; ip the reverse.
  const std::string* name() const { return std::get_if<std::string>(&host); }
  const base::IpAddress* ip() const { return std::get_if<base::IpAddress>(&host); }
  // ToString gives "example.com:443", "192.0.2.1:443" or "[2001:db8::1]:443", for logs.
  std::string ToString() const;
  friend bool operator==(const Destination&, const Destination&) = default;
};

// ParseHostName checks a host name a local client sent (a SOCKS5 DOMAINNAME, the host of an
// HTTP CONNECT target) and returns it lowercased without its trailing dot. Rules, and why:
//   - 1..255 bytes of [A-Za-z0-9.-_] only: no NUL (C resolvers stop at it), no '%' or ':' or
//     '@', nothing a resolver or a log line would read differently.
//   - no empty label ("a..b", ".a") and no label over 63 bytes: no DNS query could carry it.
//   - a dotted-quad IPv4 literal ("192.0.2.1") is returned as an IpAddress: it names no host
//     and must not be sent to a resolver (a private zone would answer NXDOMAIN).
//   - any other name whose last label is a number ("10.1", "127.0.0.0x1", "2130706433") is
//     refused: inet_aton and some resolvers read those as IPv4 addresses in shorthand, so they
//     could reach an address that a check on the name never saw (the WHATWG URL "ends in a
//     number" rule).
// Returns nullopt if refused; |problem|, if given, then says why ("has an empty label").
std::optional<Host> ParseHostName(std::string_view name, std::string_view* problem = nullptr);

// Outcome of an incremental parse: kNeedMore means the bytes so far are a valid prefix and
// nothing was consumed; call again with the same bytes plus more.
enum class Outcome { kNeedMore, kDone, kError };

// Error names why a message was refused, for the caller's counters.
enum class Error : uint8_t {
  kNone,
  kSocks4,           // VER 4: a SOCKS4 or SOCKS4a client
  kBadVersion,       // VER neither 5 nor 4 (also: not SOCKS at all, e.g. an HTTP request)
  kNoMethods,        // greeting with NMETHODS 0
  kBadReserved,      // a reserved byte is not zero
  kBadCommand,       // CMD not CONNECT, BIND or UDP ASSOCIATE (answer kRepCommandNotSupported)
  kBadReply,         // REP above kRepAddressTypeNotSupported (ParseReply only)
  kBadAddressType,   // ATYP not 1, 3 or 4 (answer kRepAddressTypeNotSupported)
  kEmptyName,        // DOMAINNAME of length 0
  kBadName,          // DOMAINNAME refused by ParseHostName
  kFragmented,       // UDP datagram with FRAG != 0: reassembly is not supported
  kTruncated,        // UDP datagram shorter than its header
};

// ErrorName is a fixed description of |error| ("UDP fragments are not supported"), for a
// per-datagram drop that should not allocate.
std::string_view ErrorName(Error error);

// Result of an incremental parse of one message from the start of a stream.
template <typename T>
struct Result {
  Outcome outcome = Outcome::kNeedMore;
  // consumed is the message's length (kDone only): later bytes belong to what follows.
  size_t consumed = 0;
  T value{};  // kDone only
  Error error = Error::kNone;
  // reply is the REP code to answer a refused request with (kError of ParseRequest):
  // kRepCommandNotSupported, kRepAddressTypeNotSupported, or kRepGeneralFailure otherwise.
  uint8_t reply = kRepGeneralFailure;
  // message says why, with the offending values, for a log line a user can act on.
  std::string message;
};

// Greeting is the client's first message, reduced to what matters here.
struct Greeting {
  bool no_auth_offered = false;  // METHODS holds kMethodNoAuth
  friend bool operator==(const Greeting&, const Greeting&) = default;
};

// Request is what the client asks for: a command and where to.
struct Request {
  uint8_t command = kCmdConnect;  // kCmdConnect, kCmdBind or kCmdUdpAssociate
  // destination: for UDP ASSOCIATE, where the client will send from (often all zeros).
  Destination destination;
  friend bool operator==(const Request&, const Request&) = default;
};

// Reply is the proxy's answer to a request.
struct Reply {
  uint8_t reply = kRepSucceeded;  // REP, 0x00..0x08
  Destination bound;              // BND.ADDR and BND.PORT
  friend bool operator==(const Reply&, const Reply&) = default;
};

// ParseGreeting parses the greeting at the start of |in| (everything received so far). Checks
// run as soon as their byte is in, so a SOCKS4 or HTTP client is refused at its first byte.
Result<Greeting> ParseGreeting(base::ByteSpan in);

// EncodeMethodSelection is the answer to a greeting: 05 00 if |no_auth_offered|, else 05 FF
// (after which the proxy closes the connection).
std::array<uint8_t, 2> EncodeMethodSelection(bool no_auth_offered);

// ParseRequest parses the request at the start of |in| (the bytes after the greeting). An
// unknown CMD or ATYP is an error whose |reply| is the REP code the RFC asks for; a host name
// is checked with ParseHostName.
Result<Request> ParseRequest(base::ByteSpan in);

// EncodeReply writes a reply: REP |reply| and the bound address (ATYP 1 or 4 by its family;
// an address of family kNone is written as IPv4 0.0.0.0, the usual filler of error replies).
std::vector<uint8_t> EncodeReply(uint8_t reply, const base::IpAddress& bound, uint16_t bound_port);

// ParseReply parses a reply, as a SOCKS5 client would (tests, and the fuzzer's round trip).
Result<Reply> ParseReply(base::ByteSpan in);

// UdpDatagram is one parsed UDP ASSOCIATE datagram. |payload| points into the parsed bytes.
struct UdpDatagram {
  uint8_t frag = 0;  // always 0: fragments are refused
  Destination destination;
  base::ByteSpan payload;
};

// ParseUdpDatagram parses one datagram the client sent to the relay: RSV 0, FRAG 0, the
// destination under the request's ATYP rules, and the payload (possibly empty). Returns
// nullopt if refused, with the reason in |error| if given (ErrorName describes it).
std::optional<UdpDatagram> ParseUdpDatagram(base::ByteSpan in, Error* error = nullptr);

// EncodeUdpHeader writes the header to put before a payload sent back to the client, naming
// where it came from. Returns an empty vector if |host| is an IpAddress of family kNone or a
// name not in ParseHostName's form (so what is written always parses back to |host|).
std::vector<uint8_t> EncodeUdpHeader(const Host& host, uint16_t port);

}  // namespace p2proxy::client::socks5

#endif  // P2PROXY_CLIENT_SOCKS5_H_
