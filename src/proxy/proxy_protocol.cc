// proxy_protocol.cc: PROXY protocol v2 encoding, parsing and CRC32C.
#include "proxy/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace p2proxy::proxy {
namespace {

constexpr uint8_t kVersion2 = 0x2;
constexpr uint8_t kCommandLocal = 0x0;
constexpr uint8_t kCommandProxy = 0x1;
constexpr uint8_t kFamilyUnspec = 0x0, kFamilyInet = 0x1, kFamilyInet6 = 0x2, kFamilyUnix = 0x3;
constexpr size_t kAddrLenInet = 4 + 4 + 2 + 2;
constexpr size_t kAddrLenInet6 = 16 + 16 + 2 + 2;
constexpr size_t kAddrLenUnix = 108 + 108;
constexpr size_t kMaxBodyLen = 0xFFFF;
constexpr size_t kTlvHeaderLen = 3;  // type, 16-bit length
constexpr std::string_view kV1Prefix = "PROXY ";

// The CRC-32C table for the reflected Castagnoli polynomial, one entry per byte value.
constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();

// AddressBlockLen is the size of the address block for a family nibble (one that passed
// KnownFamilyTransport).
size_t AddressBlockLen(uint8_t family) {
  switch (family) {
    case kFamilyInet: return kAddrLenInet;
    case kFamilyInet6: return kAddrLenInet6;
    case kFamilyUnix: return kAddrLenUnix;
    default: return 0;
  }
}

// KnownFamilyTransport: the pairs the spec defines (UNSPEC, TCP4, UDP4, TCP6, UDP6,
// UNIX_STREAM, UNIX_DGRAM). UNSPEC goes only with UNSPEC.
bool KnownFamilyTransport(uint8_t byte) {
  switch (byte) {
    case 0x00: case 0x11: case 0x12: case 0x21: case 0x22: case 0x31: case 0x32: return true;
    default: return false;
  }
}

// ReadAddresses reads the INET or INET6 address block into |h|.
bool ReadAddresses(base::ByteReader& r, uint8_t family, ProxyHeader& h) {
  sockaddr_in6 src6{}, dst6{};
  sockaddr_in src4{}, dst4{};
  uint16_t src_port, dst_port;
  if (family == kFamilyInet) {
    if (!r.CopyBytes(base::MutableByteSpan(reinterpret_cast<uint8_t*>(&src4.sin_addr), 4)) ||
        !r.CopyBytes(base::MutableByteSpan(reinterpret_cast<uint8_t*>(&dst4.sin_addr), 4)) ||
        !r.ReadU16(&src_port) || !r.ReadU16(&dst_port)) {
      return false;
    }
    src4.sin_family = dst4.sin_family = AF_INET;
    src4.sin_port = htons(src_port);
    dst4.sin_port = htons(dst_port);
    h.source = base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&src4));
    h.destination = base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&dst4));
    return true;
  }
  if (!r.CopyBytes(base::MutableByteSpan(src6.sin6_addr.s6_addr, 16)) ||
      !r.CopyBytes(base::MutableByteSpan(dst6.sin6_addr.s6_addr, 16)) || !r.ReadU16(&src_port) ||
      !r.ReadU16(&dst_port)) {
    return false;
  }
  src6.sin6_family = dst6.sin6_family = AF_INET6;
  src6.sin6_port = htons(src_port);
  dst6.sin6_port = htons(dst_port);
  h.source = base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&src6));
  h.destination = base::SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&dst6));
  return true;
}

bool WriteAddress(base::ByteWriter& w, const base::SocketAddress& a) {
  if (a.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(a.sa());
    return w.AddBytes(base::ByteSpan(reinterpret_cast<const uint8_t*>(&v4->sin_addr), 4));
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(a.sa());
  return w.AddBytes(base::ByteSpan(v6->sin6_addr.s6_addr, 16));
}

bool HasNul(const std::vector<uint8_t>& v) { return std::find(v.begin(), v.end(), 0) != v.end(); }

// TlvValueProblem says what is wrong with the value of a TLV whose type we know, or "".
std::string TlvValueProblem(const Tlv& t) {
  switch (t.type) {
    case kTlvCrc32c:
      if (t.value.size() != 4) return absl::StrCat("CRC32C TLV of ", t.value.size(), " bytes, not 4");
      break;
    case kTlvUniqueId:
      if (t.value.size() > kMaxUniqueIdLen) {
        return absl::StrCat("UNIQUE_ID TLV of ", t.value.size(), " bytes, more than ", kMaxUniqueIdLen);
      }
      break;
    case kTlvP2proxyUser:
      if (t.value.empty()) return "p2proxy user TLV is empty";
      if (HasNul(t.value)) return "p2proxy user TLV contains a NUL byte";
      break;
    case kTlvP2proxyRoles:
      if (HasNul(t.value)) return "p2proxy roles TLV contains a NUL byte";
      break;
    case kTlvP2proxyPeerKey:
      if (t.value.size() != kPeerKeyLen) {
        return absl::StrCat("p2proxy peer key TLV of ", t.value.size(), " bytes, not ", kPeerKeyLen);
      }
      break;
    default:
      break;
  }
  return "";
}

}  // namespace

uint32_t Crc32c(base::ByteSpan data, uint32_t crc) {
  crc = ~crc;
  for (uint8_t b : data) crc = kCrc32cTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

const Tlv* ProxyHeader::FindTlv(uint8_t type) const {
  for (const Tlv& t : tlvs) {
    if (t.type == type) return &t;
  }
  return nullptr;
}

std::vector<uint8_t> EncodeProxyV2(const ProxyHeader& header, EncodeOptions options) {
  uint8_t family_transport = 0x00;
  if (!header.local) {
    const int sf = header.source.family(), df = header.destination.family();
    if (header.source.valid() || header.destination.valid()) {
      if (sf != df || header.transport == ProxyHeader::kUnspec || header.transport > ProxyHeader::kDgram) {
        return {};
      }
      family_transport = static_cast<uint8_t>(((sf == AF_INET ? kFamilyInet : kFamilyInet6) << 4) |
                                              header.transport);
    }
  }
  base::ByteWriter w;
  w.AddBytes(base::ByteSpan(kProxyV2Signature, sizeof(kProxyV2Signature)));
  w.AddU8(static_cast<uint8_t>((kVersion2 << 4) | (header.local ? kCommandLocal : kCommandProxy)));
  w.AddU8(family_transport);
  w.AddU16(0);  // the length, filled in below
  if (family_transport != 0x00) {
    WriteAddress(w, header.source);
    WriteAddress(w, header.destination);
    w.AddU16(header.source.port());
    w.AddU16(header.destination.port());
  }
  std::optional<size_t> crc_offset;
  auto add_tlv = [&](uint8_t type, base::ByteSpan value) {
    if (value.size() > kMaxBodyLen) return false;
    // Only a 4-byte CRC32C TLV gets the checksum; one of another size is written as it is (a
    // parser refuses it).
    if (type == kTlvCrc32c && value.size() == 4 && !crc_offset) crc_offset = w.size() + kTlvHeaderLen;
    return w.AddU8(type) && w.AddU16(static_cast<uint16_t>(value.size())) && w.AddBytes(value);
  };
  for (const Tlv& t : header.tlvs) {
    // A CRC32C value is recomputed, so its old content does not matter; only its size does.
    if (t.type == kTlvCrc32c && t.value.size() == 4 && !crc_offset) {
      const uint8_t zeros[4] = {0, 0, 0, 0};
      if (!add_tlv(t.type, zeros)) return {};
    } else if (!add_tlv(t.type, t.value)) {
      return {};
    }
  }
  if (options.add_crc32c && header.FindTlv(kTlvCrc32c) == nullptr) {
    const uint8_t zeros[4] = {0, 0, 0, 0};
    add_tlv(kTlvCrc32c, zeros);
  }
  std::vector<uint8_t> out = w.Take();
  const size_t body_len = out.size() - kProxyV2FixedLen;
  if (body_len > kMaxBodyLen) return {};
  out[14] = static_cast<uint8_t>(body_len >> 8);
  out[15] = static_cast<uint8_t>(body_len);
  if (crc_offset) {
    const uint32_t crc = Crc32c(out);
    for (int i = 0; i < 4; ++i) out[*crc_offset + i] = static_cast<uint8_t>(crc >> (24 - 8 * i));
  }
  return out;
}

ProxyV2Parser::ProxyV2Parser(size_t max_header_len) : max_header_len_(max_header_len) {}

ProxyV2Parser::Result ProxyV2Parser::Fail(Error code, std::string message) {
  result_ = Result::kError;
  error_code_ = code;
  error_ = std::move(message);
  return result_;
}

ProxyV2Parser::Result ProxyV2Parser::Parse(base::ByteSpan in) {
  if (result_ != Result::kContinue) return result_;
  if (in.empty()) return Result::kContinue;
  // Each check runs as soon as its bytes are in, so garbage is refused early.
  if (in[0] == kV1Prefix[0]) {
    const size_t n = std::min(in.size(), kV1Prefix.size());
    if (std::memcmp(in.data(), kV1Prefix.data(), n) != 0) {
      return Fail(Error::kBadSignature, "not a PROXY v2 header: bad signature");
    }
    if (n < kV1Prefix.size()) return Result::kContinue;
    return Fail(Error::kVersion1, "PROXY v1 is not supported");
  }
  const size_t sig_n = std::min(in.size(), sizeof(kProxyV2Signature));
  if (std::memcmp(in.data(), kProxyV2Signature, sig_n) != 0) {
    return Fail(Error::kBadSignature, "not a PROXY v2 header: bad signature");
  }
  if (in.size() > 12) {
    const uint8_t version = in[12] >> 4, command = in[12] & 0x0F;
    if (version != kVersion2) {
      return Fail(Error::kBadVersion, absl::StrCat("PROXY protocol version ", version, " is not supported"));
    }
    if (command != kCommandLocal && command != kCommandProxy) {
      return Fail(Error::kBadCommand, absl::StrCat("unknown PROXY v2 command ", command));
    }
  }
  if (in.size() > 13) {
    if (!KnownFamilyTransport(in[13])) {
      return Fail(Error::kBadFamily, absl::StrFormat("unknown PROXY v2 family/transport 0x%02x", in[13]));
    }
    if ((in[12] & 0x0F) == kCommandProxy && (in[13] >> 4) == kFamilyUnix) {
      return Fail(Error::kUnsupportedUnix, "PROXY v2 over AF_UNIX is not supported");
    }
  }
  if (in.size() < kProxyV2FixedLen) return Result::kContinue;
  const size_t body_len = (size_t{in[14]} << 8) | in[15];
  const size_t total = kProxyV2FixedLen + body_len;
  if (total > max_header_len_) {
    return Fail(Error::kTooLong,
                absl::StrCat("PROXY v2 header of ", total, " bytes is above the limit of ", max_header_len_));
  }
  const size_t addr_len = AddressBlockLen(in[13] >> 4);
  if (body_len < addr_len) {
    return Fail(Error::kShortAddresses,
                absl::StrCat("PROXY v2 length ", body_len, " is shorter than the address block (", addr_len, ")"));
  }
  if (in.size() < total) return Result::kContinue;
  return ParseComplete(in.first(total));
}

ProxyV2Parser::Result ProxyV2Parser::ParseComplete(base::ByteSpan bytes) {
  const bool local = (bytes[12] & 0x0F) == kCommandLocal;
  const uint8_t family = bytes[13] >> 4, transport = bytes[13] & 0x0F;
  base::ByteReader r(bytes.subspan(kProxyV2FixedLen));
  ProxyHeader h;
  h.local = local;
  if (local || family == kFamilyUnspec) {
    // LOCAL: the receiver discards the addresses (and uses the real endpoints); UNSPEC has none.
    h.transport = ProxyHeader::kUnspec;
    r.Skip(AddressBlockLen(family));  // cannot fail: Parse checked the length
  } else {
    h.transport = static_cast<ProxyHeader::Transport>(transport);
    ReadAddresses(r, family, h);  // cannot fail: Parse checked the length
  }

  std::optional<size_t> crc_offset;
  while (!r.empty()) {
    if (r.remaining() < kTlvHeaderLen) {
      return Fail(Error::kTrailingBytes,
                  absl::StrCat(r.remaining(), " trailing bytes after the PROXY v2 TLVs"));
    }
    Tlv t;
    uint16_t len;
    base::ByteSpan value;
    r.ReadU8(&t.type);
    r.ReadU16(&len);
    const size_t value_offset = bytes.size() - r.remaining();
    if (!r.ReadBytes(len, &value)) {
      return Fail(Error::kTruncatedTlv, absl::StrFormat("PROXY v2 TLV 0x%02x of %u bytes runs past the header "
                                                        "(%u bytes left)", t.type, len, r.remaining()));
    }
    t.value.assign(value.begin(), value.end());
    if (t.type != kTlvNoop && h.FindTlv(t.type) != nullptr) {
      return Fail(Error::kDuplicateTlv, absl::StrFormat("duplicate PROXY v2 TLV 0x%02x", t.type));
    }
    if (std::string problem = TlvValueProblem(t); !problem.empty()) {
      return Fail(Error::kBadTlv, absl::StrCat("PROXY v2: ", problem));
    }
    if (t.type == kTlvCrc32c) crc_offset = value_offset;
    h.tlvs.push_back(std::move(t));
  }

  if (crc_offset) {
    // The checksum covers the whole header with the checksum field itself zeroed.
    const uint8_t* v = bytes.data() + *crc_offset;
    const uint32_t sent = (uint32_t{v[0]} << 24) | (uint32_t{v[1]} << 16) | (uint32_t{v[2]} << 8) | v[3];
    const uint8_t zeros[4] = {0, 0, 0, 0};
    uint32_t crc = Crc32c(bytes.first(*crc_offset));
    crc = Crc32c(zeros, crc);
    crc = Crc32c(bytes.subspan(*crc_offset + 4), crc);
    if (crc != sent) {
      return Fail(Error::kCrcMismatch,
                  absl::StrFormat("PROXY v2 CRC32C mismatch: header says %08x, bytes give %08x", sent, crc));
    }
  }
  header_ = std::move(h);
  header_len_ = bytes.size();
  result_ = Result::kDone;
  return result_;
}

}  // namespace p2proxy::proxy
