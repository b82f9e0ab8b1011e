// PROXY protocol v2: known-answer vectors built by hand from the spec, round trips, CRC32C,
// and every class of refusal.
#include "proxy/proxy_protocol.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace p2proxy;
using proxy::ProxyHeader;
using proxy::ProxyV2Parser;
using Result = ProxyV2Parser::Result;
using Error = ProxyV2Parser::Error;

namespace {

std::vector<uint8_t> Bytes(std::initializer_list<int> v) {
  std::vector<uint8_t> out;
  for (int b : v) out.push_back(static_cast<uint8_t>(b));
  return out;
}

std::vector<uint8_t> Cat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<uint8_t> Str(std::string_view s) { return std::vector<uint8_t>(s.begin(), s.end()); }

const std::vector<uint8_t> kSig = Bytes({0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A});

// IPv4 TCP 1.2.3.4:1000 -> 5.6.7.8:443, no TLVs, written out from the spec.
const std::vector<uint8_t> kV4Tcp = Cat(kSig, Bytes({0x21, 0x11, 0x00, 0x0C,     // PROXY, TCP4, len 12
                                                     0x01, 0x02, 0x03, 0x04,     // source
                                                     0x05, 0x06, 0x07, 0x08,     // destination
                                                     0x03, 0xE8, 0x01, 0xBB}));  // ports 1000, 443

base::SocketAddress Addr(const char* text) { return *base::SocketAddress::Parse(text); }

ProxyHeader V4Header() {
  ProxyHeader h;
  h.source = Addr("1.2.3.4:1000");
  h.destination = Addr("5.6.7.8:443");
  return h;
}

// ParseAll feeds |in| at once and returns the parser.
ProxyV2Parser ParseAll(const std::vector<uint8_t>& in, size_t max = ProxyV2Parser::kDefaultMaxHeaderLen) {
  ProxyV2Parser p(max);
  p.Parse(in);
  return p;
}

Error ErrorOf(const std::vector<uint8_t>& in) {
  ProxyV2Parser p;
  REQUIRE(p.Parse(in) == Result::kError);
  REQUIRE_FALSE(p.error().empty());
  return p.error_code();
}

ProxyHeader RoundTrip(const ProxyHeader& h, proxy::EncodeOptions options = {}) {
  std::vector<uint8_t> wire = proxy::EncodeProxyV2(h, options);
  REQUIRE(!wire.empty());
  ProxyV2Parser p;
  REQUIRE(p.Parse(wire) == Result::kDone);
  REQUIRE(p.header_len() == wire.size());
  return p.header();
}

}  // namespace

TEST_CASE("CRC32C known answers (RFC 3720 B.4 and the check value)") {
  REQUIRE(proxy::Crc32c(Str("123456789")) == 0xE3069283u);
  REQUIRE(proxy::Crc32c(std::vector<uint8_t>(32, 0x00)) == 0x8A9136AAu);
  REQUIRE(proxy::Crc32c(std::vector<uint8_t>(32, 0xFF)) == 0x62A8AB43u);
  std::vector<uint8_t> up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<uint8_t>(i);
    down[i] = static_cast<uint8_t>(31 - i);
  }
  REQUIRE(proxy::Crc32c(up) == 0x46DD794Eu);
  REQUIRE(proxy::Crc32c(down) == 0x113FDB5Cu);
  // Continuing from a previous value is the same as one pass.
  auto all = Str("123456789");
  REQUIRE(proxy::Crc32c(base::ByteSpan(all).subspan(4), proxy::Crc32c(base::ByteSpan(all).first(4))) ==
          0xE3069283u);
}

TEST_CASE("PROXY v2 known answer: IPv4 TCP, encode and parse, payload left alone") {
  REQUIRE(proxy::EncodeProxyV2(V4Header()) == kV4Tcp);
  auto in = Cat(kV4Tcp, Str("GET / HTTP/1.1\r\n"));
  ProxyV2Parser p;
  REQUIRE(p.Parse(in) == Result::kDone);
  REQUIRE(p.header_len() == 28);
  REQUIRE_FALSE(p.header().local);
  REQUIRE(p.header().transport == ProxyHeader::kStream);
  REQUIRE(p.header().source.ToString() == "1.2.3.4:1000");
  REQUIRE(p.header().destination.ToString() == "5.6.7.8:443");
  REQUIRE(p.header().tlvs.empty());
  // Results are sticky.
  REQUIRE(p.Parse(in) == Result::kDone);
}

TEST_CASE("PROXY v2 known answer: CRC32C TLV computed by an independent implementation") {
  // kV4Tcp with length 19 and a CRC32C TLV; the value came from a bit-by-bit CRC-32C in Python.
  auto expected = Cat(kSig, Bytes({0x21, 0x11, 0x00, 0x13, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                   0x03, 0xE8, 0x01, 0xBB, 0x03, 0x00, 0x04, 0x4F, 0x8D, 0xA1, 0x84}));
  REQUIRE(proxy::EncodeProxyV2(V4Header(), {.add_crc32c = true}) == expected);
  ProxyV2Parser p;
  REQUIRE(p.Parse(expected) == Result::kDone);
  REQUIRE(p.header().FindTlv(proxy::kTlvCrc32c) != nullptr);
  // A stale value in the header's own CRC TLV is recomputed.
  ProxyHeader h = V4Header();
  h.tlvs.push_back({proxy::kTlvCrc32c, {1, 2, 3, 4}});
  REQUIRE(proxy::EncodeProxyV2(h) == expected);
}

TEST_CASE("PROXY v2 round trips: IPv6 UDP, LOCAL, UNSPEC, TLVs") {
  SECTION("IPv6 DGRAM") {
    ProxyHeader h;
    h.transport = ProxyHeader::kDgram;
    h.source = Addr("[2001:db8::1]:53000");
    h.destination = Addr("[fd00::53]:53");
    auto wire = proxy::EncodeProxyV2(h);
    REQUIRE(wire.size() == 16 + 36);
    REQUIRE(wire[13] == 0x22);
    REQUIRE(RoundTrip(h) == h);
  }
  SECTION("LOCAL drops addresses and transport") {
    ProxyHeader h = V4Header();
    h.local = true;
    auto wire = proxy::EncodeProxyV2(h);
    REQUIRE(wire == Cat(kSig, Bytes({0x20, 0x00, 0x00, 0x00})));
    ProxyHeader back = RoundTrip(h);
    REQUIRE(back.local);
    REQUIRE(back.transport == ProxyHeader::kUnspec);
    REQUIRE_FALSE(back.source.valid());
    REQUIRE_FALSE(back.destination.valid());
  }
  SECTION("LOCAL sent with an address block (as some proxies do): the block is skipped") {
    auto in = kV4Tcp;
    in[12] = 0x20;
    ProxyV2Parser p;
    REQUIRE(p.Parse(in) == Result::kDone);
    REQUIRE(p.header().local);
    REQUIRE_FALSE(p.header().source.valid());
  }
  SECTION("PROXY with UNSPEC family: no addresses") {
    ProxyHeader h;
    h.transport = ProxyHeader::kUnspec;
    REQUIRE(RoundTrip(h) == h);
  }
  SECTION("TLVs, including the p2proxy identity range and repeated NOOPs") {
    ProxyHeader h = V4Header();
    h.tlvs = {{proxy::kTlvAlpn, Str("h2")},
              {proxy::kTlvAuthority, Str("app.example.com")},
              {proxy::kTlvNoop, {}},
              {proxy::kTlvNoop, {0, 0, 0}},
              {proxy::kTlvUniqueId, std::vector<uint8_t>(128, 7)},
              {proxy::kTlvP2proxyUser, Str("alice")},
              {proxy::kTlvP2proxyRoles, Str("admin,dev")},
              {proxy::kTlvP2proxyPeerKey, std::vector<uint8_t>(32, 0xAB)},
              {0xF0, std::vector<uint8_t>(600, 1)}};
    REQUIRE(RoundTrip(h) == h);
    ProxyHeader with_crc = RoundTrip(h, {.add_crc32c = true});
    REQUIRE(with_crc.tlvs.size() == h.tlvs.size() + 1);
    REQUIRE(with_crc.tlvs.back().type == proxy::kTlvCrc32c);
    REQUIRE(with_crc.FindTlv(proxy::kTlvP2proxyUser)->value == Str("alice"));
  }
}

TEST_CASE("PROXY v2 encoder refuses what it cannot express") {
  ProxyHeader mixed = V4Header();
  mixed.destination = Addr("[::1]:443");
  REQUIRE(proxy::EncodeProxyV2(mixed).empty());
  ProxyHeader no_transport = V4Header();
  no_transport.transport = ProxyHeader::kUnspec;
  REQUIRE(proxy::EncodeProxyV2(no_transport).empty());
  ProxyHeader huge = V4Header();
  huge.tlvs.push_back({0xF0, std::vector<uint8_t>(0xFFFF, 0)});
  REQUIRE(proxy::EncodeProxyV2(huge).empty());
}

TEST_CASE("PROXY v2 byte-by-byte feeding continues until the last byte") {
  ProxyHeader h;
  h.source = Addr("[2001:db8::1]:1");
  h.destination = Addr("[2001:db8::2]:2");
  h.tlvs = {{proxy::kTlvAuthority, Str("x.example")}};
  auto wire = proxy::EncodeProxyV2(h, {.add_crc32c = true});
  ProxyV2Parser p;
  for (size_t n = 0; n < wire.size(); ++n) {
    INFO("prefix " << n);
    REQUIRE(p.Parse(base::ByteSpan(wire).first(n)) == Result::kContinue);
  }
  REQUIRE(p.Parse(wire) == Result::kDone);
  REQUIRE(p.header_len() == wire.size());
  REQUIRE(p.header().source == h.source);
}

TEST_CASE("PROXY v2 refusals, each with its named reason") {
  SECTION("bad signature, found at the first wrong byte") {
    REQUIRE(ErrorOf(Str("GET / HTTP/1.1\r\n\r\n")) == Error::kBadSignature);
    REQUIRE(ErrorOf(Bytes({0x0D, 0x0A, 0x0D, 0x0B})) == Error::kBadSignature);
    REQUIRE(ErrorOf(Bytes({0x16, 0x03, 0x01})) == Error::kBadSignature);  // a TLS record
    REQUIRE(ErrorOf(Str("PRONTO")) == Error::kBadSignature);
  }
  SECTION("v1 text") {
    ProxyV2Parser p;
    REQUIRE(p.Parse(Str("PROX")) == Result::kContinue);
    REQUIRE(p.Parse(Str("PROXY TCP4 1.2.3.4 5.6.7.8 1000 443\r\n")) == Result::kError);
    REQUIRE(p.error_code() == Error::kVersion1);
    REQUIRE(p.error() == "PROXY v1 is not supported");
  }
  SECTION("version and command") {
    auto in = kV4Tcp;
    in[12] = 0x11;
    REQUIRE(ErrorOf(in) == Error::kBadVersion);
    in[12] = 0x31;
    REQUIRE(ErrorOf(in) == Error::kBadVersion);
    in[12] = 0x22;
    REQUIRE(ErrorOf(in) == Error::kBadCommand);
    // Refused as soon as byte 12 is in.
    REQUIRE(ErrorOf(Cat(kSig, Bytes({0x11}))) == Error::kBadVersion);
  }
  SECTION("family/transport") {
    for (int bad : {0x01, 0x10, 0x13, 0x41, 0xF1}) {
      auto in = kV4Tcp;
      in[13] = static_cast<uint8_t>(bad);
      INFO("byte " << bad);
      REQUIRE(ErrorOf(in) == Error::kBadFamily);
    }
    auto unix_stream = Cat(kSig, Bytes({0x21, 0x31, 0x00, 0xD8}));
    unix_stream.resize(16 + 216);
    REQUIRE(ErrorOf(unix_stream) == Error::kUnsupportedUnix);
    // LOCAL over UNIX is fine: the addresses are discarded anyway.
    unix_stream[12] = 0x20;
    REQUIRE(ParseAll(unix_stream).header().local);
  }
  SECTION("lengths too short for the address block") {
    auto in = kV4Tcp;
    in[15] = 11;
    in.pop_back();
    REQUIRE(ErrorOf(in) == Error::kShortAddresses);
    REQUIRE(ErrorOf(Cat(kSig, Bytes({0x21, 0x21, 0x00, 0x0C}))) == Error::kShortAddresses);  // v6 needs 36
    REQUIRE(ErrorOf(Cat(kSig, Bytes({0x21, 0x11, 0x00, 0x00}))) == Error::kShortAddresses);
  }
  SECTION("length above the cap, refused before the body arrives") {
    REQUIRE(ErrorOf(Cat(kSig, Bytes({0x21, 0x11, 0xFF, 0xFF}))) == Error::kTooLong);
    auto ok = proxy::EncodeProxyV2(V4Header());
    REQUIRE(ParseAll(ok, ok.size()).header_len() == ok.size());
    auto p = ParseAll(ok, ok.size() - 1);
    REQUIRE(p.error_code() == Error::kTooLong);
  }
  SECTION("truncated TLV and trailing bytes") {
    // Length 12 + 3 + 5 but the TLV says 6 value bytes.
    auto trunc = Cat(kV4Tcp, Bytes({0x02, 0x00, 0x06, 'a', 'b', 'c', 'd', 'e'}));
    trunc[15] = 12 + 8;
    REQUIRE(ErrorOf(trunc) == Error::kTruncatedTlv);
    for (int extra : {1, 2}) {
      auto trailing = kV4Tcp;
      for (int i = 0; i < extra; ++i) trailing.push_back(0x04);
      trailing[15] = static_cast<uint8_t>(12 + extra);
      REQUIRE(ErrorOf(trailing) == Error::kTrailingBytes);
    }
  }
  SECTION("duplicate and malformed known TLVs") {
    ProxyHeader h = V4Header();
    h.tlvs = {{proxy::kTlvAuthority, Str("a")}, {proxy::kTlvAuthority, Str("b")}};
    REQUIRE(ErrorOf(proxy::EncodeProxyV2(h)) == Error::kDuplicateTlv);
    // A CRC32C TLV of the wrong size is sent as given (not overwritten past its end) and refused.
    h.tlvs = {{proxy::kTlvCrc32c, {1, 2, 3}}};
    auto short_crc = proxy::EncodeProxyV2(h);
    REQUIRE(short_crc.size() == 16 + 12 + 3 + 3);
    REQUIRE(std::vector<uint8_t>(short_crc.end() - 3, short_crc.end()) == Bytes({1, 2, 3}));
    REQUIRE(ErrorOf(short_crc) == Error::kBadTlv);
    REQUIRE(proxy::EncodeProxyV2(h, {.add_crc32c = true}) == short_crc);  // it has one already
    h.tlvs = {{proxy::kTlvUniqueId, std::vector<uint8_t>(129, 1)}};
    REQUIRE(ErrorOf(proxy::EncodeProxyV2(h)) == Error::kBadTlv);
    h.tlvs = {{proxy::kTlvP2proxyUser, {}}};
    REQUIRE(ErrorOf(proxy::EncodeProxyV2(h)) == Error::kBadTlv);
    h.tlvs = {{proxy::kTlvP2proxyUser, Str(std::string_view("al\0ce", 5))}};
    REQUIRE(ErrorOf(proxy::EncodeProxyV2(h)) == Error::kBadTlv);
    h.tlvs = {{proxy::kTlvP2proxyPeerKey, std::vector<uint8_t>(31, 1)}};
    REQUIRE(ErrorOf(proxy::EncodeProxyV2(h)) == Error::kBadTlv);
  }
  SECTION("CRC mismatch: any flipped bit after the signature is caught") {
    ProxyHeader h = V4Header();
    h.tlvs = {{proxy::kTlvP2proxyUser, Str("alice")}};
    auto wire = proxy::EncodeProxyV2(h, {.add_crc32c = true});
    REQUIRE(ParseAll(wire).header_len() == wire.size());
    // Flip a bit in the source address, in the user TLV, and in the checksum itself.
    for (size_t at : {size_t{17}, size_t{32}, wire.size() - 1}) {
      auto bad = wire;
      bad[at] ^= 0x01;
      INFO("byte " << at);
      REQUIRE(ErrorOf(bad) == Error::kCrcMismatch);
    }
  }
}
