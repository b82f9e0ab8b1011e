// client_hello.cc: ClientHelloPeek, the record reassembly and the strict ClientHello parser.
#include "tls/client_hello.h"

#include <algorithm>

namespace p2proxy::tls {
namespace {

using base::ByteReader;
using base::ByteSpan;
using Result = ClientHelloPeek::Result;

// ReadU24At reads a big-endian 24-bit length from |p|.
uint32_t ReadU24At(const uint8_t* p) {
  return (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[2]};
}

// ParseServerName parses extension_data of server_name (RFC 6066 3). BoringSSL's server accepts
// exactly one entry, of type host_name; so do we, since that server is what sits behind us.
const char* ParseServerName(ByteReader data, std::string* out) {
  ByteReader list(ByteSpan{});
  if (!data.ReadU16LengthPrefixed(&list) || !data.empty()) return "malformed server_name";
  uint8_t type;
  ByteReader name(ByteSpan{});
  if (!list.ReadU8(&type) || !list.ReadU16LengthPrefixed(&name)) return "malformed server_name";
  if (!list.empty()) return "server_name must hold exactly one name";
  if (type != kServerNameTypeHostName) return "server_name is not a host_name";
  const ByteSpan host = name.rest();
  if (host.empty()) return "empty server_name";
  if (host.size() > kMaxHostNameLen) return "server_name longer than 255 bytes";
  // A NUL would let "a.example\0.evil" compare differently in C and C++ code further on.
  if (std::find(host.begin(), host.end(), uint8_t{0}) != host.end()) return "NUL in server_name";
  out->assign(host.begin(), host.end());
  for (char& c : *out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return nullptr;
}

// ParseAlpn parses extension_data of application_layer_protocol_negotiation (RFC 7301 3.1): a
// non-empty list of non-empty names.
const char* ParseAlpn(ByteReader data, std::vector<std::string>* out) {
  ByteReader list(ByteSpan{});
  if (!data.ReadU16LengthPrefixed(&list) || !data.empty()) return "malformed ALPN";
  if (list.empty()) return "empty ALPN list";
  while (!list.empty()) {
    ByteReader proto(ByteSpan{});
    if (!list.ReadU8LengthPrefixed(&proto)) return "malformed ALPN";
    if (proto.empty()) return "empty ALPN protocol name";
    out->emplace_back(proto.rest().begin(), proto.rest().end());
  }
  return nullptr;
}

// ParseSupportedVersions parses the ClientHello form of supported_versions (RFC 8446 4.2.1).
const char* ParseSupportedVersions(ByteReader data, bool* offers_tls13) {
  ByteReader list(ByteSpan{});
  if (!data.ReadU8LengthPrefixed(&list) || !data.empty()) return "malformed supported_versions";
  if (list.empty() || list.remaining() % 2 != 0) return "malformed supported_versions";
  while (!list.empty()) {
    uint16_t v;
    list.ReadU16(&v);  // cannot fail: the length is even
    if (v == kVersionTls13) *offers_tls13 = true;
  }
  return nullptr;
}

}  // namespace

ClientHelloPeek::ClientHelloPeek(size_t max_hello_len) : max_hello_len_(max_hello_len) {}

Result ClientHelloPeek::Fail(const char* reason) {
  state_ = Result::kError;
  error_ = reason;
  handshake_.clear();
  handshake_.shrink_to_fit();
  return state_;
}

Result ClientHelloPeek::Parse(ByteSpan in) {
  if (state_ != Result::kContinue) return state_;
  if (in.size() < records_end_) return Fail("input shorter than before");
  size_t pos = records_end_;
  for (;;) {
    const ByteSpan rest = in.subspan(pos);
    // The header is checked byte by byte as it arrives, so "GET / HTTP/1.1" fails at once.
    if (rest.size() >= 1 && rest[0] != kContentTypeHandshake) return Fail("not a TLS handshake record");
    if (rest.size() >= 3) {
      const uint16_t version = static_cast<uint16_t>(rest[1] << 8 | rest[2]);
      if (version < kVersionTls10 || version > kVersionTls12) return Fail("unsupported record version");
    }
    if (rest.size() < kRecordHeaderLen) return Result::kContinue;
    const size_t record_len = static_cast<size_t>(rest[3] << 8 | rest[4]);
    if (record_len == 0) return Fail("empty handshake record");  // RFC 8446 5.1 forbids them
    if (record_len > kMaxPlaintextRecordLen) return Fail("record longer than 2^14 bytes");
    if (handshake_.size() + record_len > max_hello_len_) return Fail("ClientHello too large");

    const bool complete = rest.size() >= kRecordHeaderLen + record_len;
    const ByteSpan fragment =
        rest.subspan(kRecordHeaderLen, std::min(record_len, rest.size() - kRecordHeaderLen));
    // The handshake header may already be readable, in part from the fragment so far: check
    // the type and the announced length without waiting for the whole record.
    uint8_t header[kHandshakeHeaderLen];
    size_t have = std::min(handshake_.size(), kHandshakeHeaderLen);
    std::copy_n(handshake_.begin(), have, header);
    for (size_t i = 0; have < kHandshakeHeaderLen && i < fragment.size(); ++i) header[have++] = fragment[i];
    if (have >= 1 && header[0] != kHandshakeTypeClientHello) return Fail("first handshake message is not a ClientHello");
    size_t msg_len = 0;
    if (have == kHandshakeHeaderLen) {
      msg_len = kHandshakeHeaderLen + ReadU24At(header + 1);
      if (msg_len > max_hello_len_) return Fail("ClientHello too large");
      // The ClientHello ends a flight: RFC 8446 5.1 wants the next message in a new record.
      if (handshake_.size() + fragment.size() > msg_len) return Fail("data after ClientHello in its record");
    }
    if (!complete) return Result::kContinue;

    handshake_.insert(handshake_.end(), fragment.begin(), fragment.end());
    pos += kRecordHeaderLen + record_len;
    records_end_ = pos;
    if (msg_len != 0 && handshake_.size() == msg_len) return ParseHello();
  }
}

Result ClientHelloPeek::ParseHello() {
  ByteReader body(ByteSpan(handshake_).subspan(kHandshakeHeaderLen));
  ClientHelloInfo info;
  uint16_t legacy_version;
  if (!body.ReadU16(&legacy_version)) return Fail("malformed ClientHello");
  if ((legacy_version >> 8) != 3) return Fail("unsupported ClientHello version");
  info.legacy_version = legacy_version;
  ByteReader session_id(ByteSpan{}), suites(ByteSpan{}), compression(ByteSpan{});
  if (!body.Skip(32) || !body.ReadU8LengthPrefixed(&session_id) ||
      !body.ReadU16LengthPrefixed(&suites) || !body.ReadU8LengthPrefixed(&compression)) {
    return Fail("malformed ClientHello");
  }
  if (session_id.remaining() > 32) return Fail("session_id longer than 32 bytes");
  if (suites.empty() || suites.remaining() % 2 != 0) return Fail("malformed cipher_suites");
  const ByteSpan methods = compression.rest();
  if (methods.empty()) return Fail("no compression methods");
  if (std::find(methods.begin(), methods.end(), uint8_t{0}) == methods.end()) {
    return Fail("null compression not offered");
  }
  // Extensions are optional before TLS 1.3 (RFC 5246 7.4.1.2): nothing at all may follow.
  if (!body.empty()) {
    ByteReader extensions(ByteSpan{});
    if (!body.ReadU16LengthPrefixed(&extensions)) return Fail("malformed extensions");
    if (!body.empty()) return Fail("bytes after extensions");
    std::vector<uint16_t> types;
    while (!extensions.empty()) {
      uint16_t type;
      ByteReader data(ByteSpan{});
      if (!extensions.ReadU16(&type) || !extensions.ReadU16LengthPrefixed(&data)) {
        return Fail("malformed extensions");
      }
      types.push_back(type);
      const char* err = nullptr;
      switch (type) {
        case kExtServerName:
          err = ParseServerName(data, &info.sni);
          break;
        case kExtAlpn:
          info.alpn.clear();
          err = ParseAlpn(data, &info.alpn);
          break;
        case kExtSupportedVersions:
          err = ParseSupportedVersions(data, &info.offers_tls13);
          break;
        default:
          break;
      }
      if (err) return Fail(err);
    }
    // RFC 8446 4.2: no two extensions of the same type.
    std::sort(types.begin(), types.end());
    if (std::adjacent_find(types.begin(), types.end()) != types.end()) return Fail("duplicate extension");
  }
  info_ = std::move(info);
  state_ = Result::kDone;
  handshake_.clear();
  handshake_.shrink_to_fit();
  return state_;
}

std::vector<uint8_t> AlertRecord(uint8_t description) {
  return {kContentTypeAlert, kVersionTls12 >> 8, kVersionTls12 & 0xff, 0, 2, kAlertLevelFatal, description};
}

}  // namespace p2proxy::tls
