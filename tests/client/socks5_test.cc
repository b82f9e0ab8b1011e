// SOCKS5: the messages of RFC 1928 written out by hand (as curl --socks5-hostname sends them),
// every refusal, incremental parsing against whole parsing, and encoder round trips.
#include "client/socks5.h"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

using namespace p2proxy;
using namespace p2proxy::client::socks5;
using base::IpAddress;

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

// NameRequest is a request for |cmd| to DOMAINNAME |name| (length byte from its size), port 443.
std::vector<uint8_t> NameRequest(std::string_view name, int cmd = kCmdConnect) {
  return Cat(Cat(Bytes({0x05, cmd, 0x00, 0x03, static_cast<int>(name.size())}), Str(name)), Bytes({0x01, 0xBB}));
}

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

template <typename T>
bool Same(const Result<T>& a, const Result<T>& b) {
  return a.outcome == b.outcome && a.consumed == b.consumed && a.value == b.value && a.error == b.error &&
         a.reply == b.reply && a.message == b.message;
}

// Checked parses |in| whole and checks it against every prefix, as bytes arriving one at a
// time would show it: kNeedMore with nothing consumed until some length, then from there on the
// whole input's result. Returns the whole input's result.
template <typename T>
Result<T> Checked(Result<T> (*parse)(base::ByteSpan), const std::vector<uint8_t>& in) {
  const Result<T> whole = parse(in);
  bool settled = false;
  for (size_t n = 0; n <= in.size(); ++n) {
    const Result<T> r = parse(base::ByteSpan(in.data(), n));
    if (!settled && r.outcome == Outcome::kNeedMore) {
      REQUIRE(r.consumed == 0);
      REQUIRE(r.error == Error::kNone);
      continue;
    }
    settled = true;
    REQUIRE(Same(r, whole));
  }
  if (whole.outcome == Outcome::kError) {
    REQUIRE(whole.error != Error::kNone);
    REQUIRE_FALSE(whole.message.empty());
  }
  return whole;
}

Result<Request> RequestOf(const std::vector<uint8_t>& in) { return Checked(ParseRequest, in); }

Error NameError(std::string_view name) {
  const Result<Request> r = RequestOf(NameRequest(name));
  REQUIRE(r.outcome == Outcome::kError);
  REQUIRE(r.reply == kRepGeneralFailure);
  return r.error;
}

}  // namespace

TEST_CASE("socks5: greeting of curl --socks5-hostname", "[socks5]") {
  const Result<Greeting> r = Checked(ParseGreeting, Bytes({0x05, 0x01, 0x00}));
  REQUIRE(r.outcome == Outcome::kDone);
  REQUIRE(r.consumed == 3);
  REQUIRE(r.value.no_auth_offered);
  REQUIRE(EncodeMethodSelection(true) == std::array<uint8_t, 2>{0x05, 0x00});
}

TEST_CASE("socks5: greeting methods", "[socks5]") {
  // curl with credentials offers no-auth and username/password.
  REQUIRE(Checked(ParseGreeting, Bytes({0x05, 0x02, 0x00, 0x02})).value.no_auth_offered);
  // Username/password alone: the answer is 05 FF.
  const Result<Greeting> only_userpass = Checked(ParseGreeting, Bytes({0x05, 0x01, 0x02}));
  REQUIRE(only_userpass.outcome == Outcome::kDone);
  REQUIRE_FALSE(only_userpass.value.no_auth_offered);
  REQUIRE(EncodeMethodSelection(false) == std::array<uint8_t, 2>{0x05, 0xFF});
  // No-auth last of 255 methods.
  std::vector<uint8_t> all = Bytes({0x05, 0xFF});
  for (int m = 1; m <= 255; ++m) all.push_back(static_cast<uint8_t>(m == 255 ? 0 : m));
  const Result<Greeting> r = Checked(ParseGreeting, all);
  REQUIRE(r.outcome == Outcome::kDone);
  REQUIRE(r.consumed == 257);
  REQUIRE(r.value.no_auth_offered);
}

TEST_CASE("socks5: a greeting pipelined with its request consumes only itself", "[socks5]") {
  const std::vector<uint8_t> stream = Cat(Bytes({0x05, 0x01, 0x00}), NameRequest("example.com"));
  const Result<Greeting> g = Checked(ParseGreeting, stream);
  REQUIRE(g.outcome == Outcome::kDone);
  REQUIRE(g.consumed == 3);
  const Result<Request> r = ParseRequest(base::ByteSpan(stream).subspan(g.consumed));
  REQUIRE(r.outcome == Outcome::kDone);
  REQUIRE(r.consumed == stream.size() - 3);
}

TEST_CASE("socks5: greeting refusals", "[socks5]") {
  // SOCKS4 CONNECT to 1.2.3.4:80 with an empty user id: refused at its first byte.
  const Result<Greeting> v4 = Checked(ParseGreeting, Bytes({0x04, 0x01, 0x00, 0x50, 1, 2, 3, 4, 0x00}));
  REQUIRE(v4.outcome == Outcome::kError);
  REQUIRE(v4.error == Error::kSocks4);
  REQUIRE(v4.message == "SOCKS version 4 is not supported: use SOCKS5 (curl --socks5-hostname)");
  REQUIRE(ParseGreeting(Bytes({0x04})).error == Error::kSocks4);

  const Result<Greeting> http = Checked(ParseGreeting, Str("CONNECT example.com:443 HTTP/1.1\r\n\r\n"));
  REQUIRE(http.error == Error::kBadVersion);
  REQUIRE(http.message.find("HTTP") != std::string::npos);

  const Result<Greeting> v6 = Checked(ParseGreeting, Bytes({0x06, 0x01, 0x00}));
  REQUIRE(v6.error == Error::kBadVersion);
  REQUIRE(v6.message.find("version 6") != std::string::npos);

  const Result<Greeting> none = Checked(ParseGreeting, Bytes({0x05, 0x00}));
  REQUIRE(none.error == Error::kNoMethods);
  REQUIRE(ParseGreeting({}).outcome == Outcome::kNeedMore);
  REQUIRE(ParseGreeting(Bytes({0x05, 0x03, 0x00, 0x01})).outcome == Outcome::kNeedMore);
}

TEST_CASE("socks5: CONNECT to a domain name as curl sends it", "[socks5]") {
  const std::vector<uint8_t> in = Bytes({0x05, 0x01, 0x00, 0x03, 0x0B, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c',
                                         'o', 'm', 0x01, 0xBB});
  const Result<Request> r = RequestOf(in);
  REQUIRE(r.outcome == Outcome::kDone);
  REQUIRE(r.consumed == in.size());
  REQUIRE(r.value.command == kCmdConnect);
  REQUIRE(r.value.destination.name() != nullptr);
  REQUIRE(*r.value.destination.name() == "example.com");
  REQUIRE(r.value.destination.ip() == nullptr);
  REQUIRE(r.value.destination.port == 443);
  REQUIRE(r.value.destination.ToString() == "example.com:443");
  // Trailing bytes (the tunnel's first data) are not part of the request.
  REQUIRE(RequestOf(Cat(in, Str("GET /"))).consumed == in.size());
}

TEST_CASE("socks5: CONNECT to IPv4 and IPv6 addresses", "[socks5]") {
  const Result<Request> v4 = RequestOf(Bytes({0x05, 0x01, 0x00, 0x01, 192, 0, 2, 1, 0x00, 0x16}));
  REQUIRE(v4.outcome == Outcome::kDone);
  REQUIRE(v4.consumed == 10);
  REQUIRE(*v4.value.destination.ip() == IpAddress::V4(192, 0, 2, 1));
  REQUIRE(v4.value.destination.port == 22);
  REQUIRE(v4.value.destination.ToString() == "192.0.2.1:22");

  const Result<Request> v6 = RequestOf(Bytes({0x05, 0x01, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0,
                                              0, 0, 0, 1, 0xFF, 0xFF}));
  REQUIRE(v6.outcome == Outcome::kDone);
  REQUIRE(v6.consumed == 22);
  REQUIRE(*v6.value.destination.ip() == Ip("2001:db8::1"));
  REQUIRE(v6.value.destination.port == 65535);
  REQUIRE(v6.value.destination.ToString() == "[2001:db8::1]:65535");
}

TEST_CASE("socks5: BIND and UDP ASSOCIATE keep their command and allow port 0", "[socks5]") {
  const Result<Request> bind = RequestOf(NameRequest("ftp.example.com", kCmdBind));
  REQUIRE(bind.outcome == Outcome::kDone);
  REQUIRE(bind.value.command == kCmdBind);
  // UDP ASSOCIATE from a client that does not know its address yet: all zeros (RFC 1928 §4).
  const Result<Request> udp = RequestOf(Bytes({0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
  REQUIRE(udp.outcome == Outcome::kDone);
  REQUIRE(udp.value.command == kCmdUdpAssociate);
  REQUIRE(*udp.value.destination.ip() == IpAddress::V4(0, 0, 0, 0));
  REQUIRE(udp.value.destination.port == 0);
}

TEST_CASE("socks5: a domain name is lowercased without its trailing dot", "[socks5]") {
  const Result<Request> r = RequestOf(NameRequest("WWW.Example.COM."));
  REQUIRE(r.outcome == Outcome::kDone);
  REQUIRE(*r.value.destination.name() == "www.example.com");
  REQUIRE(*RequestOf(NameRequest("_svc.my-host_1.internal")).value.destination.name() == "_svc.my-host_1.internal");
  // A dotted quad sent as a name is an address, never a DNS query.
  const Result<Request> quad = RequestOf(NameRequest("10.0.0.1"));
  REQUIRE(*quad.value.destination.ip() == IpAddress::V4(10, 0, 0, 1));
  REQUIRE(*RequestOf(NameRequest("10.0.0.1.")).value.destination.ip() == IpAddress::V4(10, 0, 0, 1));
}

TEST_CASE("socks5: names of the longest lengths", "[socks5]") {
  // 255 bytes in labels of 63: the most a DOMAINNAME can hold.
  const std::string label(63, 'a');
  const std::string longest = label + "." + label + "." + label + "." + std::string(63, 'b');
  REQUIRE(longest.size() == 255);
  REQUIRE(*RequestOf(NameRequest(longest)).value.destination.name() == longest);
  REQUIRE(NameError(std::string(64, 'a') + ".com") == Error::kBadName);
}

TEST_CASE("socks5: domain names refused", "[socks5]") {
  const Result<Request> empty = RequestOf(Bytes({0x05, 0x01, 0x00, 0x03, 0x00, 0x01, 0xBB}));
  REQUIRE(empty.error == Error::kEmptyName);
  // Refused as soon as the zero length arrives.
  REQUIRE(ParseRequest(Bytes({0x05, 0x01, 0x00, 0x03, 0x00})).error == Error::kEmptyName);

  REQUIRE(NameError(std::string("exa\0mple.com", 12)) == Error::kBadName);
  for (std::string_view bad : {"exa mple.com", "user@example.com", "example.com:443", "ex%61mple.com", "::1",
                               "example.com/", "caf\xc3\xa9.example", "tab\t.com", "a\r\nb"}) {
    INFO(bad);
    REQUIRE(NameError(bad) == Error::kBadName);
  }
  for (std::string_view bad : {".", "..", ".example.com", "example..com", "example.com.."}) {
    INFO(bad);
    REQUIRE(NameError(bad) == Error::kBadName);
  }
  // Numbers that inet_aton would read as IPv4 shorthand.
  for (std::string_view bad : {"2130706433", "127.1", "10.0.0.256", "01.2.3.4", "0x7f.0.0.1", "127.0.0.0x1",
                               "example.123", "1.2.3.4.5", "0x"}) {
    INFO(bad);
    REQUIRE(NameError(bad) == Error::kBadName);
  }
  const Result<Request> r = RequestOf(NameRequest("a..b"));
  REQUIRE(r.message == "SOCKS5 domain name \"a..b\" has an empty label");
  const Result<Request> nul = RequestOf(NameRequest(std::string("a\0z", 3)));
  INFO(nul.message);
  REQUIRE(nul.message.find("\"a\\x00z\"") != std::string::npos);  // escaped in the message
}

TEST_CASE("socks5: ParseHostName", "[socks5]") {
  std::string_view problem;
  REQUIRE_FALSE(ParseHostName("", &problem));
  REQUIRE(problem == "is empty");
  REQUIRE_FALSE(ParseHostName(std::string(256, 'a'), &problem));
  REQUIRE(problem == "is longer than 255 bytes");
  REQUIRE_FALSE(ParseHostName("10.1", &problem));
  REQUIRE(problem == "ends in a number but is not an IPv4 address a.b.c.d");
  REQUIRE(*ParseHostName("Localhost") == Host(std::string("localhost")));
  REQUIRE(*ParseHostName("192.0.2.1") == Host(IpAddress::V4(192, 0, 2, 1)));
  REQUIRE(*ParseHostName("1a.example") == Host(std::string("1a.example")));
  REQUIRE(*ParseHostName("x.0xg") == Host(std::string("x.0xg")));  // not hex: a name
}

TEST_CASE("socks5: unknown command and address type carry their REP codes", "[socks5]") {
  for (int cmd : {0x00, 0x04, 0x80, 0xFF}) {
    const Result<Request> r = RequestOf(NameRequest("example.com", cmd));
    REQUIRE(r.outcome == Outcome::kError);
    REQUIRE(r.error == Error::kBadCommand);
    REQUIRE(r.reply == kRepCommandNotSupported);
    // Known as soon as CMD arrives.
    REQUIRE(ParseRequest(Bytes({0x05, cmd})).reply == kRepCommandNotSupported);
  }
  for (int atyp : {0x00, 0x02, 0x05, 0xFF}) {
    const Result<Request> r = RequestOf(Bytes({0x05, 0x01, 0x00, atyp, 1, 2, 3, 4, 0, 80}));
    REQUIRE(r.outcome == Outcome::kError);
    REQUIRE(r.error == Error::kBadAddressType);
    REQUIRE(r.reply == kRepAddressTypeNotSupported);
    REQUIRE(ParseRequest(Bytes({0x05, 0x01, 0x00, atyp})).reply == kRepAddressTypeNotSupported);
  }
  REQUIRE(RequestOf(NameRequest("example.com", 0x09)).message ==
          "SOCKS5 command 0x09 is not supported (1 CONNECT, 2 BIND, 3 UDP ASSOCIATE)");
}

TEST_CASE("socks5: request refusals", "[socks5]") {
  const Result<Request> rsv = RequestOf(Bytes({0x05, 0x01, 0x01, 0x01, 1, 2, 3, 4, 0, 80}));
  REQUIRE(rsv.error == Error::kBadReserved);
  REQUIRE(rsv.reply == kRepGeneralFailure);
  REQUIRE(RequestOf(Bytes({0x04, 0x01, 0x00, 0x50, 1, 2, 3, 4, 0})).error == Error::kSocks4);
  REQUIRE(RequestOf(Bytes({0x00, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0, 80})).error == Error::kBadVersion);
  // The first bad byte decides: a bad CMD before a bad ATYP.
  REQUIRE(RequestOf(Bytes({0x05, 0x07, 0x00, 0x07})).error == Error::kBadCommand);
  // Truncated requests are only incomplete.
  const std::vector<uint8_t> v6 = Bytes({0x05, 0x01, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0});
  REQUIRE(ParseRequest(v6).outcome == Outcome::kNeedMore);
  REQUIRE(ParseRequest(v6).consumed == 0);
}

TEST_CASE("socks5: EncodeReply writes ATYP by family", "[socks5]") {
  REQUIRE(EncodeReply(kRepSucceeded, IpAddress::V4(127, 0, 0, 1), 1080) ==
          Bytes({0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0x04, 0x38}));
  REQUIRE(EncodeReply(kRepSucceeded, Ip("::1"), 1080) ==
          Bytes({0x05, 0x00, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x04, 0x38}));
  // Error replies carry no address: 0.0.0.0:0.
  REQUIRE(EncodeReply(kRepHostUnreachable, IpAddress{}, 0) == Bytes({0x05, 0x04, 0x00, 0x01, 0, 0, 0, 0, 0, 0}));
}

TEST_CASE("socks5: EncodeReply and ParseReply round trip", "[socks5]") {
  for (uint8_t rep = kRepSucceeded; rep <= kRepAddressTypeNotSupported; ++rep) {
    for (const IpAddress& ip : {IpAddress::V4(10, 1, 2, 3), Ip("fd00::53"), Ip("::ffff:192.0.2.1")}) {
      const std::vector<uint8_t> wire = EncodeReply(rep, ip, 53);
      const Result<Reply> r = Checked(ParseReply, wire);
      REQUIRE(r.outcome == Outcome::kDone);
      REQUIRE(r.consumed == wire.size());
      REQUIRE(r.value == Reply{rep, Destination{ip, 53}});
    }
  }
  // ParseReply is as strict as ParseRequest, and takes a domain name too.
  const Result<Reply> name = Checked(ParseReply, Bytes({0x05, 0x00, 0x00, 0x03, 0x01, 'A', 0x00, 0x50}));
  REQUIRE(name.value == Reply{kRepSucceeded, Destination{std::string("a"), 80}});
  REQUIRE(Checked(ParseReply, Bytes({0x05, 0x09, 0x00, 0x01, 0, 0, 0, 0, 0, 0})).error == Error::kBadReply);
  REQUIRE(Checked(ParseReply, Bytes({0x05, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0})).error == Error::kBadAddressType);
}

TEST_CASE("socks5: UDP datagrams", "[socks5]") {
  const std::vector<uint8_t> dns = Bytes({0x00, 0x00, 0x00, 0x01, 10, 0, 0, 53, 0x00, 0x35, 0xAB, 0xCD, 0x01});
  Error error = Error::kBadVersion;
  std::optional<UdpDatagram> d = ParseUdpDatagram(dns, &error);
  REQUIRE(d);
  REQUIRE(error == Error::kNone);
  REQUIRE(d->frag == 0);
  REQUIRE(*d->destination.ip() == IpAddress::V4(10, 0, 0, 53));
  REQUIRE(d->destination.port == 53);
  REQUIRE(std::vector<uint8_t>(d->payload.begin(), d->payload.end()) == Bytes({0xAB, 0xCD, 0x01}));
  REQUIRE(d->payload.data() == dns.data() + 10);  // a view, not a copy

  const std::vector<uint8_t> named = Cat(Bytes({0, 0, 0, 0x03, 7, 'N', 'S', '.', 'L', 'A', 'N', '.', 0, 53}), Str("q"));
  d = ParseUdpDatagram(named);
  REQUIRE(d);
  REQUIRE(*d->destination.name() == "ns.lan");
  REQUIRE(d->payload.size() == 1);

  // An empty payload is a valid (empty) datagram.
  d = ParseUdpDatagram(Bytes({0, 0, 0, 0x01, 1, 2, 3, 4, 0, 9}));
  REQUIRE(d);
  REQUIRE(d->payload.empty());
}

TEST_CASE("socks5: UDP datagrams refused", "[socks5]") {
  auto error_of = [](const std::vector<uint8_t>& in) {
    Error error = Error::kNone;
    REQUIRE_FALSE(ParseUdpDatagram(in, &error));
    REQUIRE(error != Error::kNone);
    return error;
  };
  REQUIRE(error_of(Bytes({0, 0, 1, 0x01, 1, 2, 3, 4, 0, 9, 0xAA})) == Error::kFragmented);
  REQUIRE(error_of(Bytes({0, 0, 0x80, 0x01, 1, 2, 3, 4, 0, 9, 0xAA})) == Error::kFragmented);
  REQUIRE(ErrorName(Error::kFragmented) == "SOCKS5 UDP fragments are not supported (FRAG must be 0)");
  REQUIRE(error_of(Bytes({0, 1, 0, 0x01, 1, 2, 3, 4, 0, 9})) == Error::kBadReserved);
  REQUIRE(error_of(Bytes({1, 0, 0, 0x01, 1, 2, 3, 4, 0, 9})) == Error::kBadReserved);
  REQUIRE(error_of(Bytes({0, 0, 0, 0x02, 1, 2, 3, 4, 0, 9})) == Error::kBadAddressType);
  REQUIRE(error_of(Bytes({0, 0, 0, 0x03, 0, 0, 9})) == Error::kEmptyName);
  REQUIRE(error_of(Cat(Cat(Bytes({0, 0, 0, 0x03, 3}), Str("a b")), Bytes({0, 9}))) == Error::kBadName);
  // Every strict prefix of a header is truncated.
  const std::vector<uint8_t> v6 = Bytes({0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 53});
  REQUIRE(ParseUdpDatagram(v6));
  for (size_t n = 0; n < v6.size(); ++n) {
    INFO(n);
    REQUIRE(error_of(std::vector<uint8_t>(v6.begin(), v6.begin() + static_cast<long>(n))) == Error::kTruncated);
  }
  REQUIRE(ParseUdpDatagram(Bytes({0, 0, 1}), nullptr) == std::nullopt);  // no out-parameter needed
}

TEST_CASE("socks5: EncodeUdpHeader round trips", "[socks5]") {
  REQUIRE(EncodeUdpHeader(IpAddress::V4(10, 0, 0, 53), 53) == Bytes({0, 0, 0, 0x01, 10, 0, 0, 53, 0, 53}));
  REQUIRE(EncodeUdpHeader(std::string("ns.lan"), 53) == Cat(Cat(Bytes({0, 0, 0, 0x03, 6}), Str("ns.lan")), Bytes({0, 53})));
  for (const Host& host : {Host(Ip("2001:db8::53")), Host(IpAddress::V4(1, 1, 1, 1)), Host(std::string("a.b_c-d"))}) {
    const std::vector<uint8_t> datagram = Cat(EncodeUdpHeader(host, 5353), Str("payload"));
    const std::optional<UdpDatagram> d = ParseUdpDatagram(datagram);
    REQUIRE(d);
    REQUIRE(d->destination == Destination{host, 5353});
    REQUIRE(std::string_view(reinterpret_cast<const char*>(d->payload.data()), d->payload.size()) == "payload");
  }
  // What would not parse back to the same host is not written.
  REQUIRE(EncodeUdpHeader(IpAddress{}, 53).empty());
  REQUIRE(EncodeUdpHeader(std::string("Upper.case"), 53).empty());
  REQUIRE(EncodeUdpHeader(std::string("dot."), 53).empty());
  REQUIRE(EncodeUdpHeader(std::string("10.0.0.1"), 53).empty());
  REQUIRE(EncodeUdpHeader(std::string(""), 53).empty());
  REQUIRE(EncodeUdpHeader(std::string("a b"), 53).empty());
}

TEST_CASE("socks5: every error has a name", "[socks5]") {
  for (int e = static_cast<int>(Error::kNone); e <= static_cast<int>(Error::kTruncated); ++e) {
    REQUIRE_FALSE(ErrorName(static_cast<Error>(e)).empty());
    REQUIRE(ErrorName(static_cast<Error>(e)) != "unknown error");
  }
}
