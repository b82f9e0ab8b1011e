// http_connect.cc: the HTTP CONNECT head parser and the local HTTP proxy's responses.
#include "client/http_connect.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace p2proxy::client {
namespace {

constexpr size_t kMaxQuoted = 80;  // of a peer's value in an error message

// Absl: this Abseil's string_view is its own type, not std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// IsTokenChar: tchar of RFC 9110 §5.6.2.
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar); }

// IsFieldValueChar: HTAB, SP, VCHAR or obs-text (RFC 9110 §5.5); no other control byte, no DEL.
bool IsFieldValueChar(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

bool IsVisible(char c) { return c > 0x20 && c < 0x7F; }

bool IsWhitespace(char c) { return c == ' ' || c == '\t'; }

// Quote gives |s| quoted and escaped, cut at kMaxQuoted bytes, for an error message that goes
// to a log and back to the peer.
std::string Quote(std::string_view s) {
  if (s.size() <= kMaxQuoted) return absl::StrCat("\"", absl::CHexEscape(Absl(s)), "\"");
  return absl::StrCat("\"", absl::CHexEscape(Absl(s.substr(0, kMaxQuoted))), "\"...");
}

// ParsePort reads 1 to 5 digits giving 1..65535.
bool ParsePort(std::string_view text, uint16_t* port) {
  uint32_t value = 0;
  if (text.empty() || text.size() > 5 || !std::all_of(text.begin(), text.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(Absl(text), &value) || value == 0 || value > 65535) {
    return false;
  }
  *port = static_cast<uint16_t>(value);
  return true;
}

// ParseAuthority reads a CONNECT target, host ":" port; "" on success, else what is wrong.
std::string ParseAuthority(std::string_view target, socks5::Destination* out) {
  if (target.find('/') != std::string_view::npos) {
    return absl::StrCat("target ", Quote(target), " is not host:port (CONNECT takes no scheme or path)");
  }
  std::string_view port_text;
  if (target[0] == '[') {
    const size_t close = target.find(']');
    if (close == std::string_view::npos) return absl::StrCat("target ", Quote(target), " has no closing ']'");
    const std::string_view inner = target.substr(1, close - 1);
    absl::StatusOr<base::IpAddress> ip = base::IpAddress::Parse(Absl(inner));
    if (!ip.ok() || ip->family != base::IpAddress::kV6) {
      return absl::StrCat("target ", Quote(target), ": ", Quote(inner), " is not an IPv6 address");
    }
    if (close + 1 == target.size() || target[close + 1] != ':') {
      return absl::StrCat("target ", Quote(target), " has no port: it must be host:port");
    }
    out->host = *ip;
    port_text = target.substr(close + 2);
  } else {
    const size_t colon = target.rfind(':');
    if (colon == std::string_view::npos) {
      return absl::StrCat("target ", Quote(target), " has no port: it must be host:port");
    }
    const std::string_view host = target.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return absl::StrCat("target ", Quote(target), ": an IPv6 address must be in brackets, [addr]:port");
    }
    std::string_view problem;
    std::optional<socks5::Host> parsed = socks5::ParseHostName(host, &problem);
    if (!parsed) return absl::StrCat("target host ", Quote(host), " ", Absl(problem));
    out->host = std::move(*parsed);
    port_text = target.substr(colon + 1);
  }
  if (!ParsePort(port_text, &out->port)) {
    return absl::StrCat("target ", Quote(target), ": port ", Quote(port_text), " is not 1..65535");
  }
  return "";
}

}  // namespace

HttpConnectParser::Result HttpConnectParser::Fail(int status, std::string message) {
  result_ = Result::kError;
  error_status_ = status;
  error_ = std::move(message);
  consumed_ = 0;
  head_ = std::string();
  return result_;
}

HttpConnectParser::Result HttpConnectParser::Feed(base::ByteSpan piece) {
  consumed_ = 0;
  if (result_ != Result::kNeedMore) return result_;
  const size_t before = head_.size();
  const size_t take = std::min(piece.size(), kMaxHead - before);
  head_.append(reinterpret_cast<const char*>(piece.data()), take);
  for (;;) {
    const size_t lf = head_.find('\n', scan_from_);
    if (lf == std::string::npos) {
      scan_from_ = head_.size();
      break;
    }
    ++line_number_;
    if (lf == line_start_ || head_[lf - 1] != '\r') {
      return Fail(400, absl::StrCat("line ", line_number_, " ends in a bare LF: lines end in CRLF"));
    }
    const std::string_view line(head_.data() + line_start_, lf - 1 - line_start_);
    line_start_ = scan_from_ = lf + 1;
    const Result r = TakeLine(line);
    if (r == Result::kError) return r;
    if (r == Result::kDone) {
      head_len_ = lf + 1;
      consumed_ = head_len_ - before;
      head_ = std::string();  // request_ holds copies of what it needs
      result_ = Result::kDone;
      return result_;
    }
  }
  if (head_.size() >= kMaxHead) {
    return Fail(431, absl::StrCat("request head is longer than ", kMaxHead, " bytes"));
  }
  consumed_ = take;
  return Result::kNeedMore;
}

HttpConnectParser::Result HttpConnectParser::TakeLine(std::string_view line) {
  if (line.find('\r') != std::string_view::npos) {
    return Fail(400, absl::StrCat("line ", line_number_, " holds a bare CR"));
  }
  if (line.find('\0') != std::string_view::npos) {
    return Fail(400, absl::StrCat("line ", line_number_, " holds a NUL byte"));
  }
  if (line_number_ == 1) return TakeRequestLine(line);
  if (line.empty()) return Result::kDone;
  if (IsWhitespace(line[0])) {
    // obs-fold (RFC 9112 §5.2), or whitespace before the first field (§2.2): a server must
    // refuse both rather than guess where the field ends.
    return Fail(400, absl::StrCat("line ", line_number_, " starts with whitespace (obs-fold is not accepted)"));
  }
  return TakeField(line);
}

HttpConnectParser::Result HttpConnectParser::TakeRequestLine(std::string_view line) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    return Fail(400, absl::StrCat("request line ", Quote(line), " is not: method SP target SP HTTP-version"));
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Fail(400, absl::StrCat("method ", Quote(method), " is not a token"));
  if (target.empty() || !std::all_of(target.begin(), target.end(), IsVisible)) {
    return Fail(400, absl::StrCat("request target ", Quote(target), " is empty or holds spaces or control bytes"));
  }
  if (version.size() != 8 || !absl::StartsWith(Absl(version), "HTTP/") || !absl::ascii_isdigit(version[5]) ||
      version[6] != '.' || !absl::ascii_isdigit(version[7])) {
    return Fail(400, absl::StrCat("HTTP version ", Quote(version), " is not HTTP/d.d"));
  }
  if (method != "CONNECT") {
    // Methods are case-sensitive (RFC 9110 §9.1): "connect" is another method.
    return Fail(405, absl::StrCat("method ", Quote(method),
                                  " is not allowed: this is an HTTP CONNECT proxy (Allow: CONNECT); "
                                  "use it as an HTTPS proxy, or tunnel with CONNECT"));
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return Fail(505, absl::StrCat("HTTP version ", Quote(version), " is not supported: use HTTP/1.1"));
  }
  request_.minor_version = version[7] - '0';
  if (std::string problem = ParseAuthority(target, &request_.target); !problem.empty()) {
    return Fail(400, std::move(problem));
  }
  return Result::kNeedMore;
}

HttpConnectParser::Result HttpConnectParser::TakeField(std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return Fail(400, absl::StrCat("line ", line_number_, ": field ", Quote(line), " has no colon"));
  }
  const std::string_view name = line.substr(0, colon);
  if (!IsToken(name)) {
    if (!name.empty() && IsWhitespace(name.back())) {
      // RFC 9112 §5.1: whitespace before the colon must be refused (a smuggling vector).
      return Fail(400, absl::StrCat("line ", line_number_, ": whitespace between field name ", Quote(name),
                                    " and its colon"));
    }
    return Fail(400, absl::StrCat("line ", line_number_, ": field name ", Quote(name), " is not a token"));
  }
  const std::string_view value = line.substr(colon + 1);
  if (!std::all_of(value.begin(), value.end(), IsFieldValueChar)) {
    return Fail(400, absl::StrCat("line ", line_number_, ": field ", Quote(name), " has a control byte in its value"));
  }
  if (++num_fields_ > kMaxFields) {
    return Fail(431, absl::StrCat("request head has more than ", kMaxFields, " fields"));
  }
  if (absl::EqualsIgnoreCase(Absl(name), "Proxy-Authorization")) request_.has_proxy_authorization = true;
  return Result::kNeedMore;
}

std::string HttpConnectParser::ErrorResponse() const {
  return EncodeConnectResponse(error_status_, ReasonPhrase(error_status_), error_);
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

std::string EncodeConnectResponse(int status, std::string_view reason, std::string_view body) {
  if (status < 200 || status > 599) status = 500;
  std::string safe_reason(reason);
  for (char& c : safe_reason) {
    if (!IsFieldValueChar(c)) c = '?';
  }
  std::string out = absl::StrCat("HTTP/1.1 ", status, " ", safe_reason, "\r\n");
  if (status < 300) return absl::StrCat(out, "\r\n");
  const std::string text = absl::StrCat(body.empty() ? absl::string_view(safe_reason) : Absl(body), "\n");
  if (status == 405) absl::StrAppend(&out, "Allow: CONNECT\r\n");
  absl::StrAppend(&out, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ", text.size(),
                  "\r\nConnection: close\r\n\r\n", text);
  return out;
}

std::string EncodeConnectRequest(const socks5::Destination& target) {
  if (target.port == 0) return "";
  std::string authority;
  if (const std::string* name = target.name()) {
    std::optional<socks5::Host> canonical = socks5::ParseHostName(*name);
    if (!canonical || !(*canonical == socks5::Host(*name))) return "";
  } else if (target.ip()->family == base::IpAddress::kNone) {
    return "";
  }
  authority = target.ToString();
  return absl::StrCat("CONNECT ", authority, " HTTP/1.1\r\nHost: ", authority, "\r\n\r\n");
}

}  // namespace p2proxy::client
