// socks5.cc: SOCKS5 parsing and encoding (RFC 1928), and the local proxies' host-name rules.
#include "client/socks5.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace p2proxy::client::socks5 {
namespace {

constexpr size_t kPortLen = 2;
constexpr size_t kUdpFixedLen = 3;  // RSV(2) FRAG(1), before the ATYP

// Absl: this Abseil's string_view is its own type, not std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsHostChar(char c) { return absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_'; }

// EndsInNumber: |label| (lowercase) is all digits, or "0x" and hex digits: what inet_aton
// would take as part of an IPv4 address.
bool EndsInNumber(std::string_view label) {
  if (label.find_first_not_of("0123456789") == std::string_view::npos) return true;
  return label.substr(0, 2) == "0x" && label.find_first_not_of("0123456789abcdef", 2) == std::string_view::npos;
}

std::string_view AsText(base::ByteSpan bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

template <typename T>
Result<T> Fail(Error error, std::string message, uint8_t reply = kRepGeneralFailure) {
  Result<T> r;
  r.outcome = Outcome::kError;
  r.error = error;
  r.reply = reply;
  r.message = std::move(message);
  return r;
}

// VersionProblem describes a VER byte other than 5, with a hint at what the client might be.
std::string VersionProblem(uint8_t version) {
  if (version == kVersion4) return "SOCKS version 4 is not supported: use SOCKS5 (curl --socks5-hostname)";
  if (absl::ascii_isupper(version)) {
    return absl::StrFormat("not a SOCKS client: the first byte is '%c', as in an HTTP request; this port speaks "
                           "SOCKS5 (for HTTP CONNECT use the client's HTTP proxy port)",
                           version);
  }
  return absl::StrFormat("SOCKS version %d is not supported: this port speaks SOCKS5", version);
}

// ReadDestination reads ATYP, the address and the port from |in|, which starts at the ATYP
// byte. kDone sets |out| and |len| (the bytes taken); kNeedMore means |in| stops short of the
// port; kError sets |error|. Allocates only for a host name.
Outcome ReadDestination(base::ByteSpan in, Destination* out, size_t* len, Error* error) {
  if (in.empty()) return Outcome::kNeedMore;
  size_t addr_at = 1, addr_len;
  switch (in[0]) {
    case kAtypIpv4: addr_len = 4; break;
    case kAtypIpv6: addr_len = 16; break;
    case kAtypDomainName:
      if (in.size() < 2) return Outcome::kNeedMore;
      addr_at = 2;
      addr_len = in[1];
      if (addr_len == 0) {
        *error = Error::kEmptyName;
        return Outcome::kError;
      }
      break;
    default:
      *error = Error::kBadAddressType;
      return Outcome::kError;
  }
  const size_t total = addr_at + addr_len + kPortLen;
  if (in.size() < total) return Outcome::kNeedMore;
  const base::ByteSpan addr = in.subspan(addr_at, addr_len);
  if (in[0] == kAtypDomainName) {
    std::optional<Host> host = ParseHostName(AsText(addr));
    if (!host) {
      *error = Error::kBadName;
      return Outcome::kError;
    }
    out->host = std::move(*host);
  } else {
    out->host = base::IpAddress::FromBytes(addr);
  }
  out->port = static_cast<uint16_t>((in[addr_at + addr_len] << 8) | in[addr_at + addr_len + 1]);
  *len = total;
  return Outcome::kDone;
}

// DestinationProblem describes an error of ReadDestination on the same bytes, for a log line.
std::string DestinationProblem(Error error, base::ByteSpan in) {
  switch (error) {
    case Error::kBadAddressType:
      return absl::StrFormat("SOCKS5 address type 0x%02x is not supported (1 IPv4, 3 domain name, 4 IPv6)", in[0]);
    case Error::kBadName: {
      const std::string_view name = AsText(in.subspan(2, in[1]));
      std::string_view problem;
      ParseHostName(name, &problem);
      return absl::StrCat("SOCKS5 domain name \"", absl::CHexEscape(Absl(name)), "\" ", Absl(problem));
    }
    default:
      return std::string(ErrorName(error));
  }
}

bool WriteHost(base::ByteWriter& w, const Host& host) {
  if (const auto* name = std::get_if<std::string>(&host)) {
    std::optional<Host> canonical = ParseHostName(*name);
    if (!canonical || !std::holds_alternative<std::string>(*canonical) ||
        std::get<std::string>(*canonical) != *name) {
      return false;
    }
    return w.AddU8(kAtypDomainName) && w.AddU8(static_cast<uint8_t>(name->size())) &&
           w.AddBytes(base::ByteSpan(reinterpret_cast<const uint8_t*>(name->data()), name->size()));
  }
  const auto& ip = std::get<base::IpAddress>(host);
  if (ip.family == base::IpAddress::kNone) return false;
  return w.AddU8(ip.family == base::IpAddress::kV4 ? kAtypIpv4 : kAtypIpv6) && w.AddBytes(ip.span());
}

// ParseCommandMessage parses a request (|is_reply| false) or a reply: the two share a layout,
// VER CODE RSV ATYP ADDR PORT, and differ in which codes are valid.
template <typename T>
Result<T> ParseCommandMessage(base::ByteSpan in, bool is_reply, uint8_t* code, Destination* dest) {
  const std::string_view what = is_reply ? "reply" : "request";
  if (in.empty()) return {};
  if (in[0] != kVersion5) return Fail<T>(in[0] == kVersion4 ? Error::kSocks4 : Error::kBadVersion, VersionProblem(in[0]));
  if (in.size() < 2) return {};
  *code = in[1];
  if (!is_reply && (*code < kCmdConnect || *code > kCmdUdpAssociate)) {
    return Fail<T>(Error::kBadCommand,
                   absl::StrFormat("SOCKS5 command 0x%02x is not supported (1 CONNECT, 2 BIND, 3 UDP ASSOCIATE)", *code),
                   kRepCommandNotSupported);
  }
  if (is_reply && *code > kRepAddressTypeNotSupported) {
    return Fail<T>(Error::kBadReply, absl::StrFormat("SOCKS5 reply code 0x%02x is not defined", *code));
  }
  if (in.size() < 3) return {};
  if (in[2] != kReserved) {
    return Fail<T>(Error::kBadReserved, absl::StrFormat("SOCKS5 %s: reserved byte is 0x%02x, not 0", what, in[2]));
  }
  Error error = Error::kNone;
  size_t len = 0;
  switch (ReadDestination(in.subspan(3), dest, &len, &error)) {
    case Outcome::kNeedMore: return {};
    case Outcome::kError:
      return Fail<T>(error, DestinationProblem(error, in.subspan(3)),
                     error == Error::kBadAddressType ? kRepAddressTypeNotSupported : kRepGeneralFailure);
    case Outcome::kDone: break;
  }
  Result<T> r;
  r.outcome = Outcome::kDone;
  r.consumed = 3 + len;
  return r;
}

}  // namespace

std::string Destination::ToString() const {
  if (const std::string* n = name()) return absl::StrCat(*n, ":", port);
  const base::IpAddress& a = *ip();
  if (a.family == base::IpAddress::kV6) return absl::StrCat("[", a.ToString(), "]:", port);
  return absl::StrCat(a.ToString(), ":", port);
}

std::optional<Host> ParseHostName(std::string_view name, std::string_view* problem) {
  auto refuse = [problem](std::string_view why) -> std::optional<Host> {
    if (problem != nullptr) *problem = why;
    return std::nullopt;
  };
  if (name.empty()) return refuse("is empty");
  if (name.size() > kMaxNameLen) return refuse("is longer than 255 bytes");
  for (char c : name) {
    if (!IsHostChar(c)) return refuse("holds a byte other than letters, digits, '.', '-' and '_'");
  }
  if (name.back() == '.') name.remove_suffix(1);  // the root label: "example.com." is absolute
  if (name.empty()) return refuse("is only a dot");
  std::string lower = absl::AsciiStrToLower(Absl(name));
  std::string_view last_label;
  for (size_t start = 0;;) {
    const size_t dot = lower.find('.', start);
    const std::string_view label = std::string_view(lower).substr(start, dot - start);
    if (label.empty()) return refuse("has an empty label");
    if (label.size() > kMaxLabelLen) return refuse("has a label longer than 63 bytes");
    if (dot == std::string::npos) {
      last_label = label;
      break;
    }
    start = dot + 1;
  }
  if (EndsInNumber(last_label)) {
    // inet_pton takes only the strict dotted quad, without leading zeros.
    absl::StatusOr<base::IpAddress> ip = base::IpAddress::Parse(lower);
    if (ip.ok() && ip->family == base::IpAddress::kV4) return Host(*ip);
    return refuse("ends in a number but is not an IPv4 address a.b.c.d");
  }
  return Host(std::move(lower));
}

std::string_view ErrorName(Error error) {
  switch (error) {
    case Error::kNone: return "no error";
    case Error::kSocks4: return "SOCKS version 4 is not supported: use SOCKS5";
    case Error::kBadVersion: return "not SOCKS version 5";
    case Error::kNoMethods: return "SOCKS5 greeting offers no methods";
    case Error::kBadReserved: return "SOCKS5 reserved field is not zero";
    case Error::kBadCommand: return "SOCKS5 command not supported";
    case Error::kBadReply: return "SOCKS5 reply code not defined";
    case Error::kBadAddressType: return "SOCKS5 address type not supported";
    case Error::kEmptyName: return "SOCKS5 domain name of length 0";
    case Error::kBadName: return "SOCKS5 domain name is not a host name";
    case Error::kFragmented: return "SOCKS5 UDP fragments are not supported (FRAG must be 0)";
    case Error::kTruncated: return "SOCKS5 UDP datagram shorter than its header";
  }
  return "unknown error";
}

Result<Greeting> ParseGreeting(base::ByteSpan in) {
  if (in.empty()) return {};
  if (in[0] != kVersion5) {
    return Fail<Greeting>(in[0] == kVersion4 ? Error::kSocks4 : Error::kBadVersion, VersionProblem(in[0]));
  }
  if (in.size() < 2) return {};
  const size_t num_methods = in[1];
  if (num_methods == 0) return Fail<Greeting>(Error::kNoMethods, "SOCKS5 greeting offers no authentication methods");
  if (in.size() < 2 + num_methods) return {};
  Result<Greeting> r;
  r.outcome = Outcome::kDone;
  r.consumed = 2 + num_methods;
  for (uint8_t method : in.subspan(2, num_methods)) {
    if (method == kMethodNoAuth) r.value.no_auth_offered = true;
  }
  return r;
}

std::array<uint8_t, 2> EncodeMethodSelection(bool no_auth_offered) {
  return {kVersion5, no_auth_offered ? kMethodNoAuth : kMethodNoAcceptable};
}

Result<Request> ParseRequest(base::ByteSpan in) {
  Request request;
  Result<Request> r = ParseCommandMessage<Request>(in, /*is_reply=*/false, &request.command, &request.destination);
  if (r.outcome == Outcome::kDone) r.value = std::move(request);
  return r;
}

Result<Reply> ParseReply(base::ByteSpan in) {
  Reply reply;
  Result<Reply> r = ParseCommandMessage<Reply>(in, /*is_reply=*/true, &reply.reply, &reply.bound);
  if (r.outcome == Outcome::kDone) r.value = std::move(reply);
  return r;
}

std::vector<uint8_t> EncodeReply(uint8_t reply, const base::IpAddress& bound, uint16_t bound_port) {
  base::ByteWriter w;
  w.AddU8(kVersion5);
  w.AddU8(reply);
  w.AddU8(kReserved);
  if (!WriteHost(w, bound)) {  // family kNone: 0.0.0.0
    w.AddU8(kAtypIpv4);
    w.AddZeros(4);
  }
  w.AddU16(bound_port);
  return w.Take();
}

std::optional<UdpDatagram> ParseUdpDatagram(base::ByteSpan in, Error* error) {
  Error unused;
  if (error == nullptr) error = &unused;
  *error = Error::kNone;
  if (in.size() < kUdpFixedLen) {
    *error = Error::kTruncated;
    return std::nullopt;
  }
  if (in[0] != kReserved || in[1] != kReserved) {
    *error = Error::kBadReserved;
    return std::nullopt;
  }
  if (in[2] != 0) {
    // A FRAG above 0 is one piece of a datagram split by the client; the RFC makes reassembly
    // optional, and nothing p2proxy relays needs it.
    *error = Error::kFragmented;
    return std::nullopt;
  }
  UdpDatagram d;
  size_t len = 0;
  switch (ReadDestination(in.subspan(kUdpFixedLen), &d.destination, &len, error)) {
    case Outcome::kNeedMore:
      *error = Error::kTruncated;
      return std::nullopt;
    case Outcome::kError:
      return std::nullopt;
    case Outcome::kDone:
      break;
  }
  d.payload = in.subspan(kUdpFixedLen + len);
  return d;
}

std::vector<uint8_t> EncodeUdpHeader(const Host& host, uint16_t port) {
  base::ByteWriter w;
  w.AddU16(0);  // RSV
  w.AddU8(0);   // FRAG
  if (!WriteHost(w, host)) return {};
  w.AddU16(port);
  return w.Take();
}

}  // namespace p2proxy::client::socks5
