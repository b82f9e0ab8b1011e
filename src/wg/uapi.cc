// uapi.cc: WireGuard userspace API framing, set parsing and get formatting.
#include "wg/uapi.h"

#include <openssl/mem.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/encoding.h"

namespace p2proxy::wg {
namespace {

constexpr absl::string_view kGetRequest = "get=1\n\n";
constexpr absl::string_view kSetLine = "set=1\n";
constexpr size_t kKeyHexLen = 64;
// kMaxEchoLen bounds how much of a bad value an error message repeats. Every legitimate
// endpoint or allowed_ip is shorter ("[" + 45-character IPv6 + "]:65535").
constexpr size_t kMaxEchoLen = 64;

// The keys of protocol version 1. Device keys are valid only before the first public_key;
// peer keys only after one.
enum class Field {
  kPrivateKey,
  kListenPort,
  kFwmark,
  kReplacePeers,
  kPublicKey,
  kRemove,
  kUpdateOnly,
  kPresharedKey,
  kEndpoint,
  kPersistentKeepaliveInterval,
  kReplaceAllowedIps,
  kAllowedIp,
  kProtocolVersion,
};

struct FieldInfo {
  absl::string_view name;
  Field field;
  bool device;
};

constexpr FieldInfo kFields[] = {
    {"private_key", Field::kPrivateKey, true},
    {"listen_port", Field::kListenPort, true},
    {"fwmark", Field::kFwmark, true},
    {"replace_peers", Field::kReplacePeers, true},
    {"public_key", Field::kPublicKey, false},
    {"remove", Field::kRemove, false},
    {"update_only", Field::kUpdateOnly, false},
    {"preshared_key", Field::kPresharedKey, false},
    {"endpoint", Field::kEndpoint, false},
    {"persistent_keepalive_interval", Field::kPersistentKeepaliveInterval, false},
    {"replace_allowed_ips", Field::kReplaceAllowedIps, false},
    {"allowed_ip", Field::kAllowedIp, false},
    {"protocol_version", Field::kProtocolVersion, false},
};

const FieldInfo* FindField(absl::string_view name) {
  for (const FieldInfo& f : kFields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

int LowerHexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// DecodeKeyHex decodes exactly 64 lowercase hex digits into |out| (32 bytes), straight into
// the destination so no temporary copy of a secret is left behind. On failure |out| holds
// garbage, which the caller's Secret wipes.
bool DecodeKeyHex(absl::string_view hex, uint8_t* out) {
  if (hex.size() != kKeyHexLen) return false;
  for (size_t i = 0; i < kKeyHexLen; i += 2) {
    const int hi = LowerHexValue(hex[i]), lo = LowerHexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i / 2] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

void AppendKeyHex(std::string* out, absl::string_view name, absl::Span<const uint8_t> key) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out->append(name.data(), name.size());
  out->push_back('=');
  for (uint8_t b : key) {
    out->push_back(kDigits[b >> 4]);
    out->push_back(kDigits[b & 0xf]);
  }
  out->push_back('\n');
}

// Quote repeats a (non-secret) value in an error, cut short if long.
std::string Quote(absl::string_view value) {
  if (value.size() <= kMaxEchoLen) return absl::StrCat("'", value, "'");
  return absl::StrCat("'", value.substr(0, kMaxEchoLen), "...'");
}

// LooksLikeKeyName is true for short [a-z0-9_] names: only those are repeated in "unknown key"
// errors, so a hex key pasted into the wrong place is never echoed.
bool LooksLikeKeyName(absl::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

absl::Status LineError(size_t line_no, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", what));
}

absl::Status FieldError(size_t line_no, absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", name, ": ", what));
}

absl::Status KeyError(size_t line_no, absl::string_view name, absl::string_view value) {
  if (value.size() != kKeyHexLen) {
    return FieldError(line_no, name,
                      absl::StrCat("expected 64 lowercase hex digits, got ", value.size(),
                                   " characters"));
  }
  return FieldError(line_no, name, "expected 64 lowercase hex digits");
}

absl::Status NumberError(size_t line_no, absl::string_view name, absl::string_view value,
                         uint64_t max) {
  return FieldError(line_no, name,
                    absl::StrCat(Quote(value), " is not a number from 0 to ", max));
}

// ParseFlag accepts "true", the only value wg sends and wireguard-go accepts.
absl::Status ParseFlag(size_t line_no, absl::string_view name, absl::string_view value,
                       bool* out) {
  if (value != "true") {
    return FieldError(line_no, name, absl::StrCat("expected 'true', got ", Quote(value)));
  }
  *out = true;
  return absl::OkStatus();
}

// ParsePeerField handles one line inside a peer block (anything but public_key).
absl::Status ParsePeerField(size_t line_no, const FieldInfo& f, absl::string_view value,
                            UapiPeerSet* peer) {
  switch (f.field) {
    case Field::kRemove:
      return ParseFlag(line_no, f.name, value, &peer->remove);
    case Field::kUpdateOnly:
      return ParseFlag(line_no, f.name, value, &peer->update_only);
    case Field::kPresharedKey: {
      crypto::Key psk;
      if (!DecodeKeyHex(value, psk.data())) return KeyError(line_no, f.name, value);
      peer->preshared_key = psk;
      return absl::OkStatus();
    }
    case Field::kEndpoint: {
      if (value.size() > kMaxEchoLen) {
        return FieldError(line_no, f.name,
                          absl::StrCat("too long (", value.size(), " characters)"));
      }
      auto endpoint = base::SocketAddress::Parse(value);
      if (!endpoint.ok()) return FieldError(line_no, f.name, endpoint.status().message());
      peer->endpoint = *endpoint;
      return absl::OkStatus();
    }
    case Field::kPersistentKeepaliveInterval: {
      uint64_t secs;
      if (!base::ParseDecimal(value, 65535, &secs)) return NumberError(line_no, f.name, value, 65535);
      peer->persistent_keepalive_interval = static_cast<uint16_t>(secs);
      return absl::OkStatus();
    }
    case Field::kReplaceAllowedIps:
      // The protocol applies lines in order: replacing drops what this block added so far.
      peer->allowed_ips.clear();
      return ParseFlag(line_no, f.name, value, &peer->replace_allowed_ips);
    case Field::kAllowedIp: {
      if (value.size() > kMaxEchoLen) {
        return FieldError(line_no, f.name,
                          absl::StrCat("too long (", value.size(), " characters)"));
      }
      // wg always sends the length; a bare address is a client bug, not a /32.
      if (value.find('/') == absl::string_view::npos) {
        return FieldError(line_no, f.name,
                          absl::StrCat(Quote(value), ": expected address/length"));
      }
      auto prefix = base::IpPrefix::Parse(value);
      if (!prefix.ok()) return FieldError(line_no, f.name, prefix.status().message());
      peer->allowed_ips.push_back(*prefix);
      return absl::OkStatus();
    }
    case Field::kProtocolVersion:
      if (value != "1") {
        return FieldError(line_no, f.name,
                          absl::StrCat(Quote(value), " is not a supported version (only 1)"));
      }
      return absl::OkStatus();
    default:
      return FieldError(line_no, f.name, "not a peer key");  // unreachable: caller checks
  }
}

absl::Status ParseDeviceField(size_t line_no, const FieldInfo& f, absl::string_view value,
                              UapiSet* set) {
  switch (f.field) {
    case Field::kPrivateKey: {
      crypto::Key key;
      if (!DecodeKeyHex(value, key.data())) return KeyError(line_no, f.name, value);
      set->private_key = key;
      return absl::OkStatus();
    }
    case Field::kListenPort: {
      uint64_t port;
      if (!base::ParseDecimal(value, 65535, &port)) return NumberError(line_no, f.name, value, 65535);
      set->listen_port = static_cast<uint16_t>(port);
      return absl::OkStatus();
    }
    case Field::kFwmark: {
      uint64_t mark;
      if (!base::ParseDecimal(value, 0xffffffff, &mark)) {
        return NumberError(line_no, f.name, value, 0xffffffff);
      }
      set->fwmark = static_cast<uint32_t>(mark);
      return absl::OkStatus();
    }
    case Field::kReplacePeers:
      return ParseFlag(line_no, f.name, value, &set->replace_peers);
    default:
      return FieldError(line_no, f.name, "not a device key");  // unreachable: caller checks
  }
}

}  // namespace

absl::StatusOr<UapiSet> ParseUapiSet(absl::string_view body) {
  UapiSet set;
  if (body.empty()) return set;  // "set=1\n\n" changes nothing
  if (body.back() == '\n') body.remove_suffix(1);

  // Which fields this block (the device block, then each peer block) has already seen, one bit
  // per Field: a key given twice in one block is a client bug, so it is refused rather than
  // letting the last one silently win.
  uint32_t seen = 0;
  size_t line_no = 0;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    ++line_no;
    for (size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      if (c < 0x20 || c > 0x7e) {
        return LineError(line_no, absl::StrCat("byte ", i + 1, " is not printable ASCII"));
      }
    }
    if (line.empty()) return LineError(line_no, "empty line inside a set request");
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) return LineError(line_no, "expected key=value");
    const absl::string_view name = line.substr(0, eq);
    const absl::string_view value = line.substr(eq + 1);

    const FieldInfo* f = FindField(name);
    if (f == nullptr) {
      if (!LooksLikeKeyName(name)) return LineError(line_no, "unknown key (not shown)");
      return LineError(line_no, absl::StrCat("'", name, "': unknown key"));
    }
    const bool in_peer = !set.peers.empty();
    if (f->field == Field::kPublicKey) {
      UapiPeerSet& peer = set.peers.emplace_back();
      if (!DecodeKeyHex(value, peer.public_key.data())) return KeyError(line_no, f->name, value);
      seen = 0;
      continue;
    }
    if (f->device && in_peer) {
      return FieldError(line_no, f->name, "device key after the first public_key");
    }
    if (!f->device && !in_peer) {
      return FieldError(line_no, f->name, "peer key before any public_key");
    }
    const uint32_t bit = uint32_t{1} << static_cast<int>(f->field);
    if (f->field != Field::kAllowedIp) {
      if (seen & bit) {
        return FieldError(line_no, f->name,
                          in_peer ? "given twice for the same peer" : "given twice");
      }
      seen |= bit;
    }
    absl::Status status = in_peer ? ParsePeerField(line_no, *f, value, &set.peers.back())
                                  : ParseDeviceField(line_no, *f, value, &set);
    if (!status.ok()) return status;
  }
  return set;
}

std::string FormatUapiGet(const UapiState& state) {
  // Reserve up front: growing would leave copies of the keys in freed memory.
  size_t estimate = 256;
  for (const UapiPeerState& peer : state.peers) estimate += 512 + 64 * peer.allowed_ips.size();
  std::string out;
  out.reserve(estimate);

  if (state.private_key.has_value() && !state.private_key->IsZero()) {
    AppendKeyHex(&out, "private_key", state.private_key->span());
  }
  absl::StrAppend(&out, "listen_port=", state.listen_port, "\n");
  if (state.fwmark != 0) absl::StrAppend(&out, "fwmark=", state.fwmark, "\n");
  for (const UapiPeerState& peer : state.peers) {
    AppendKeyHex(&out, "public_key", peer.public_key);
    AppendKeyHex(&out, "preshared_key", peer.preshared_key.span());
    out.append("protocol_version=1\n");
    if (peer.endpoint.has_value() && peer.endpoint->valid()) {
      absl::StrAppend(&out, "endpoint=", peer.endpoint->ToString(), "\n");
    }
    int64_t sec = 0, nsec = 0;
    if (peer.last_handshake > absl::UnixEpoch() && peer.last_handshake < absl::InfiniteFuture()) {
      sec = absl::ToUnixSeconds(peer.last_handshake);  // rounds down
      nsec = absl::ToInt64Nanoseconds(peer.last_handshake - absl::FromUnixSeconds(sec));
    }
    absl::StrAppend(&out, "last_handshake_time_sec=", sec, "\n");
    absl::StrAppend(&out, "last_handshake_time_nsec=", nsec, "\n");
    absl::StrAppend(&out, "tx_bytes=", peer.tx_bytes, "\n");
    absl::StrAppend(&out, "rx_bytes=", peer.rx_bytes, "\n");
    absl::StrAppend(&out, "persistent_keepalive_interval=", peer.persistent_keepalive_interval,
                    "\n");
    for (const base::IpPrefix& prefix : peer.allowed_ips) {
      if (prefix.address.family == base::IpAddress::kNone) continue;
      absl::StrAppend(&out, "allowed_ip=", prefix.ToString(), "\n");
    }
  }
  out.append("errno=0\n\n");
  return out;
}

std::string FormatUapiErrno(int err) { return absl::StrCat("errno=", err, "\n\n"); }

UapiRequestReader::~UapiRequestReader() { OPENSSL_cleanse(buffer_.data(), buffer_.size()); }

UapiRequestReader::Result UapiRequestReader::Feed(absl::string_view bytes) {
  if (error_) return Result::kError;
  if (bytes.size() > kMaxBuffered - buffered_len()) {
    Fail();
    return Result::kError;
  }
  Compact();
  if (buffer_.size() + bytes.size() > buffer_.capacity()) {
    // Grow by hand so the old allocation is wiped rather than freed with keys in it.
    std::string bigger;
    bigger.reserve(std::max(buffer_.capacity() * 2, buffer_.size() + bytes.size()));
    bigger.append(buffer_);
    OPENSSL_cleanse(buffer_.data(), buffer_.size());
    buffer_.swap(bigger);
  }
  buffer_.append(bytes.data(), bytes.size());
  size_t request_len, body_len;
  const Result r = Scan(&request_len, &body_len);
  if (r == Result::kError) Fail();
  return r;
}

UapiRequestReader::Result UapiRequestReader::Next(std::string* set_body) {
  if (error_) return Result::kError;
  size_t request_len = 0, body_len = 0;
  const Result r = Scan(&request_len, &body_len);
  if (r == Result::kError) {
    Fail();
    return r;
  }
  if (r == Result::kNeedMore) return r;
  if (r == Result::kSet && set_body != nullptr) {
    set_body->assign(buffer_, consumed_ + kSetLine.size(), body_len);
  }
  OPENSSL_cleanse(&buffer_[consumed_], request_len);
  consumed_ += request_len;
  scanned_ = 0;
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return r;
}

UapiRequestReader::Result UapiRequestReader::Scan(size_t* request_len, size_t* body_len) {
  const absl::string_view data = absl::string_view(buffer_).substr(consumed_);
  // Every prefix of a valid stream is a prefix of one of the two request lines, so a stray byte
  // is refused as soon as it arrives.
  const size_t get_n = std::min(data.size(), kGetRequest.size());
  if (data.substr(0, get_n) == kGetRequest.substr(0, get_n)) {
    if (data.size() < kGetRequest.size()) return Result::kNeedMore;
    *request_len = kGetRequest.size();
    return Result::kGet;
  }
  const size_t set_n = std::min(data.size(), kSetLine.size());
  if (data.substr(0, set_n) != kSetLine.substr(0, set_n)) return Result::kError;
  if (data.size() < kSetLine.size()) return Result::kNeedMore;
  // The request ends at the first empty line: a '\n' right after another '\n'. The search
  // starts at the body (the '\n' ending "set=1" is its predecessor) or where the last one
  // stopped.
  size_t p = std::max(scanned_, kSetLine.size());
  while ((p = data.find('\n', p)) != absl::string_view::npos) {
    if (data[p - 1] == '\n') {
      *body_len = p - kSetLine.size();
      *request_len = p + 1;
      return Result::kSet;
    }
    ++p;
  }
  scanned_ = data.size();
  return Result::kNeedMore;
}

void UapiRequestReader::Compact() {
  if (consumed_ == 0) return;
  // Consumed bytes were wiped in Next; wipe the tail the move leaves behind as well.
  const size_t remaining = buffer_.size() - consumed_;
  std::memmove(buffer_.data(), buffer_.data() + consumed_, remaining);
  OPENSSL_cleanse(buffer_.data() + remaining, consumed_);
  buffer_.resize(remaining);
  consumed_ = 0;
}

void UapiRequestReader::Fail() {
  error_ = true;
  OPENSSL_cleanse(buffer_.data(), buffer_.size());
  buffer_.clear();
  consumed_ = 0;
  scanned_ = 0;
}

}  // namespace p2proxy::wg
