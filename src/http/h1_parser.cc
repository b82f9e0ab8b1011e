// h1_parser.cc: H1Parser over http-parser.
//
// http-parser is paused from inside its own callbacks at the end of each head and each message,
// so Parse can (a) count exactly how many bytes a head took, and (b) call OnHead and
// OnMessageEnd after http-parser has returned, never from inside it. Only OnBody runs inside.
#include "http/h1_parser.h"

#include <array>

#include "absl/strings/ascii.h"

namespace p2proxy::http {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// kCharClass: per byte, kToken for a tchar (RFC 9110 section 5.6.2) and kBadInValue for what a
// field value may not hold (RFC 9110 section 5.5: VCHAR, obs-text, SP and HTAB only).
constexpr uint8_t kToken = 1, kBadInValue = 2;
constexpr std::array<uint8_t, 256> MakeCharClass() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    bool tchar = alnum;
    for (char x : std::string_view("!#$%&'*+-.^_`|~")) tchar = tchar || c == static_cast<unsigned char>(x);
    t[c] = static_cast<uint8_t>((tchar ? kToken : 0) | (((c < 0x20 && c != '\t') || c == 0x7f) ? kBadInValue : 0));
  }
  return t;
}
constexpr std::array<uint8_t, 256> kCharClass = MakeCharClass();

bool IsTokenChar(unsigned char c) { return (kCharClass[c] & kToken) != 0; }

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) != lower[i]) return false;
  }
  return true;
}

void AsciiLowerInPlace(std::string* s) {
  for (char& c : *s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
}

bool HasToken(std::string_view value, std::string_view lower_token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view item = Trim(value.substr(0, comma));
    if (EqualsIgnoreCase(item, lower_token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

const Header* H1Head::Find(std::string_view lower_name) const {
  for (const Header& h : headers) {
    if (h.name == lower_name) return &h;
  }
  return nullptr;
}

void H1Head::Clear() {
  method.clear();
  target.clear();
  status = 0;
  version = 11;
  headers.clear();
  headers.reserve(16);  // one allocation per message, not one per doubling (consumers move it out)
  content_length = -1;
  chunked = false;
  transfer_encoding = false;
  keep_alive = true;
  upgrade = false;
  expect_continue = false;
}

int H1ErrorStatus(H1Error error) {
  switch (error) {
    case H1Error::kHeaderTooLarge:
      return 431;
    case H1Error::kBadVersion:
      return 505;
    default:
      return 400;
  }
}

std::string_view H1ErrorName(H1Error error) {
  switch (error) {
    case H1Error::kNone:
      return "none";
    case H1Error::kMalformed:
      return "malformed";
    case H1Error::kHeaderTooLarge:
      return "header_too_large";
    case H1Error::kBadFraming:
      return "bad_framing";
    case H1Error::kBadHost:
      return "bad_host";
    case H1Error::kBadVersion:
      return "bad_version";
    case H1Error::kTruncated:
      return "truncated";
  }
  return "unknown";
}

H1Parser::H1Parser(Kind kind, Visitor* visitor, size_t max_header_bytes)
    : kind_(kind), visitor_(visitor), max_header_bytes_(max_header_bytes) {
  parser_.data = this;
  http_parser_init(&parser_, kind_ == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE);
}

void H1Parser::Reset() {
  http_parser_init(&parser_, kind_ == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE);
  head_.Clear();
  head_bytes_ = 0;
  in_message_ = false;
  head_done_ = false;
  head_pending_ = false;
  message_pending_ = false;
  in_value_ = false;
  paused_ = false;
  skip_body_ = false;
  upgraded_ = false;
  keep_alive_ = true;
  error_ = H1Error::kNone;
  error_detail_.clear();
}

void H1Parser::Pause() {
  paused_ = true;
  if (executing_) http_parser_pause(&parser_, 1);
}

void H1Parser::Resume() { paused_ = false; }

void H1Parser::Fail(H1Error error, std::string_view detail) {
  if (error_ != H1Error::kNone) return;
  error_ = error;
  error_detail_.assign(detail.data(), detail.size());
}

void H1Parser::FailFromParser() {
  const auto err = HTTP_PARSER_ERRNO(&parser_);
  H1Error kind = H1Error::kMalformed;
  switch (err) {
    case HPE_HEADER_OVERFLOW:
      kind = H1Error::kHeaderTooLarge;
      break;
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_CHUNK_SIZE:
    case HPE_INVALID_TRANSFER_ENCODING:
      kind = H1Error::kBadFraming;
      break;
    case HPE_INVALID_EOF_STATE:
      kind = H1Error::kTruncated;
      break;
    default:
      break;
  }
  Fail(kind, http_errno_name(err));
}

size_t H1Parser::Parse(base::ByteSpan data) {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_begin = &H1Parser::OnMessageBeginCb;
    s.on_url = &H1Parser::OnUrlCb;
    s.on_header_field = &H1Parser::OnHeaderFieldCb;
    s.on_header_value = &H1Parser::OnHeaderValueCb;
    s.on_headers_complete = &H1Parser::OnHeadersCompleteCb;
    s.on_body = &H1Parser::OnBodyCb;
    s.on_message_complete = &H1Parser::OnMessageCompleteCb;
    return s;
  }();
  size_t used = 0;
  call_used_ = 0;
  while (used < data.size() && error_ == H1Error::kNone && !paused_ && !upgraded_) {
    const bool counting = !head_done_;
    executing_ = true;
    const size_t n = http_parser_execute(&parser_, &settings,
                                         reinterpret_cast<const char*>(data.data()) + used,
                                         data.size() - used);
    executing_ = false;
    const auto err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) {
      http_parser_pause(&parser_, 0);
    } else if (err != HPE_OK) {
      FailFromParser();
      return used + n;
    } else if (error_ != H1Error::kNone) {
      return used + n;
    }
    used += n;
    call_used_ = used;
    if (counting) {
      // A completed head stops http-parser on its final LF, so n covers the head but that byte.
      head_bytes_ += n + (head_pending_ ? 1 : 0);
      if (head_bytes_ > max_header_bytes_) {
        Fail(H1Error::kHeaderTooLarge, "max_header_bytes");
        return used;
      }
    }
    const bool event = head_pending_ || message_pending_;
    if (head_pending_) {
      head_pending_ = false;
      if (!CheckHead()) return used;
      head_done_ = true;
      visitor_->OnHead(head_);
    }
    if (message_pending_) {
      message_pending_ = false;
      in_message_ = false;
      head_done_ = false;
      head_bytes_ = 0;
      if (parser_.upgrade) upgraded_ = true;
      visitor_->OnMessageEnd();
    }
    if (n == 0 && !event && !paused_ && error_ == H1Error::kNone && !upgraded_) {
      // http-parser consumed nothing and did not pause: never spin.
      if (used < data.size()) {
        Fail(H1Error::kMalformed, "no progress");
      }
      break;
    }
  }
  return used;
}

bool H1Parser::Finish() {
  if (error_ != H1Error::kNone) return false;
  if (!in_message_) return true;
  if (upgraded_) return true;
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_complete = &H1Parser::OnMessageCompleteCb;
    return s;
  }();
  executing_ = true;
  http_parser_execute(&parser_, &settings, nullptr, 0);
  executing_ = false;
  const auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err == HPE_PAUSED) {
    http_parser_pause(&parser_, 0);
  } else if (err != HPE_OK) {
    FailFromParser();
    if (error_ == H1Error::kNone) Fail(H1Error::kTruncated, "eof");
    return false;
  }
  if (!message_pending_) {
    Fail(H1Error::kTruncated, "eof");
    return false;
  }
  message_pending_ = false;
  in_message_ = false;
  head_done_ = false;
  visitor_->OnMessageEnd();
  return true;
}

bool H1Parser::FinishField() {
  if (head_.headers.empty()) return true;
  Header& h = head_.headers.back();
  std::string_view v = Trim(h.value);
  if (v.size() != h.value.size()) h.value.assign(v.data(), v.size());
  // http-parser lets whitespace before the colon through; RFC 9112 section 5.1 says reject.
  if (h.name.empty()) return false;
  // It also lets some control bytes into values (a NUL right after the colon): a field value
  // is VCHAR, obs-text, SP and HTAB only (RFC 9110 section 5.5).
  for (char ch : h.value) {
    if (kCharClass[static_cast<unsigned char>(ch)] & kBadInValue) return false;
  }
  for (char c : h.name) {
    if (!IsTokenChar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool H1Parser::CheckHead() {
  if (!FinishField()) {
    Fail(H1Error::kMalformed, "field");
    return false;
  }
  head_.version = parser_.http_major * 10 + parser_.http_minor;
  if (parser_.http_major != 1 || parser_.http_minor > 1) {
    Fail(H1Error::kBadVersion, "version");
    return false;
  }
  head_.content_length = (parser_.flags & F_CONTENTLENGTH) ? static_cast<int64_t>(parser_.content_length) : -1;
  head_.chunked = (parser_.flags & F_CHUNKED) != 0;
  head_.transfer_encoding = parser_.uses_transfer_encoding != 0;
  head_.keep_alive = http_should_keep_alive(&parser_) != 0;
  head_.upgrade = parser_.upgrade != 0;
  if (kind_ == Kind::kRequest) {
    head_.method = http_method_str(static_cast<http_method>(parser_.method));
    int hosts = 0;
    for (const Header& h : head_.headers) {
      if (h.name == "host") ++hosts;
      if (h.name == "expect" && EqualsIgnoreCase(h.value, "100-continue")) head_.expect_continue = true;
    }
    if (hosts > 1 || (hosts == 0 && head_.version == 11)) {
      Fail(H1Error::kBadHost, "host");
      return false;
    }
  } else {
    head_.status = parser_.status_code;
    // A status is three digits (RFC 9110 §15); http-parser takes any number, even "0".
    if (head_.status < 100 || head_.status > 999) {
      Fail(H1Error::kMalformed, "status");
      return false;
    }
  }
  if (head_.transfer_encoding) {
    // Only plain "chunked": we de-chunk and forward, so another coding would go on unlabelled.
    int count = 0;
    bool plain = true;
    for (const Header& h : head_.headers) {
      if (h.name != "transfer-encoding") continue;
      ++count;
      plain = plain && EqualsIgnoreCase(h.value, "chunked");
    }
    if (count != 1 || !plain || !head_.chunked || head_.content_length >= 0) {
      Fail(H1Error::kBadFraming, "transfer-encoding");
      return false;
    }
  }
  return true;
}

int H1Parser::OnMessageBeginCb(http_parser* p) {
  auto* self = static_cast<H1Parser*>(p->data);
  self->in_message_ = true;
  self->head_done_ = false;
  self->in_value_ = false;
  self->head_.Clear();
  return 0;
}

int H1Parser::OnUrlCb(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<H1Parser*>(p->data);
  self->head_.target.append(at, len);
  return 0;
}

int H1Parser::OnHeaderFieldCb(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<H1Parser*>(p->data);
  if (self->head_done_) return 0;  // a trailer field: dropped
  auto& headers = self->head_.headers;
  if (self->in_value_ || headers.empty()) {
    if (!self->FinishField()) {
      self->Fail(H1Error::kMalformed, "field");
      return 1;
    }
    if (headers.size() >= kMaxFields) {
      self->Fail(H1Error::kHeaderTooLarge, "max_fields");
      return 1;
    }
    headers.emplace_back();
    self->in_value_ = false;
  }
  std::string& name = headers.back().name;
  const size_t old = name.size();
  name.append(at, len);
  for (size_t i = old; i < name.size(); ++i) {
    char& c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
  return 0;
}

int H1Parser::OnHeaderValueCb(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<H1Parser*>(p->data);
  if (self->head_done_) return 0;
  if (self->head_.headers.empty()) return 1;
  self->in_value_ = true;
  self->head_.headers.back().value.append(at, len);
  return 0;
}

int H1Parser::OnHeadersCompleteCb(http_parser* p) {
  auto* self = static_cast<H1Parser*>(p->data);
  self->head_pending_ = true;
  http_parser_pause(p, 1);
  if (self->kind_ == Kind::kResponse) {
    // 1xx, 204 and 304 never have a body (RFC 9112 section 6.3), whatever Content-Length says;
    // http-parser would wait for one. Neither has a reply to HEAD.
    const unsigned st = p->status_code;
    if (st < 200 || st == 204 || st == 304 || self->skip_body_) return 1;
  }
  return 0;
}

int H1Parser::OnBodyCb(http_parser* p, const char* at, size_t len) {
  auto* self = static_cast<H1Parser*>(p->data);
  self->visitor_->OnBody(base::ByteSpan(reinterpret_cast<const uint8_t*>(at), len));
  return self->error_ == H1Error::kNone ? 0 : 1;
}

int H1Parser::OnMessageCompleteCb(http_parser* p) {
  auto* self = static_cast<H1Parser*>(p->data);
  self->message_pending_ = true;
  self->keep_alive_ = http_should_keep_alive(p) != 0;
  http_parser_pause(p, 1);
  return 0;
}

}  // namespace p2proxy::http
