// Tests for the userspace API: the exact requests wg(8) sends, the answer `wg show` reads, and
// request framing over a stream split anywhere.
#include "wg/uapi.h"

#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "base/encoding.h"

using namespace p2proxy;
using p2proxy::wg::UapiRequestReader;
using Result = p2proxy::wg::UapiRequestReader::Result;

namespace {

// RFC 7748 §6.1's Alice (the device) and Bob (a peer), as wg(8) writes keys on the socket.
constexpr char kAlicePrivateHex[] =
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
constexpr char kBobPublicHex[] =
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
constexpr char kPskHex[] = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf";
constexpr char kCarolPublicHex[] =
    "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
constexpr char kZeroHex[] = "0000000000000000000000000000000000000000000000000000000000000000";

std::vector<uint8_t> Bytes(const char* hex) { return base::HexDecode(hex).value(); }

crypto::PublicKey Pub(const char* hex) {
  crypto::PublicKey pub;
  auto b = Bytes(hex);
  std::copy(b.begin(), b.end(), pub.begin());
  return pub;
}

crypto::Key Secret(const char* hex) { return crypto::Key(Bytes(hex)); }

std::string Message(absl::string_view body) {
  auto set = wg::ParseUapiSet(body);
  REQUIRE_FALSE(set.ok());
  return std::string(set.status().message());
}

std::string Prefixes(const std::vector<base::IpPrefix>& prefixes) {
  std::string out;
  for (const auto& p : prefixes) out += p.ToString() + " ";
  return out;
}

}  // namespace

TEST_CASE("ParseUapiSet reads what `wg set` sends to add a peer") {
  // wg set wg0 private-key alice.key listen-port 51820 peer BOB preshared-key psk.key
  //   endpoint 192.0.2.7:51820 persistent-keepalive 25 allowed-ips 10.100.0.2/32,fd00:100::2/128
  const std::string body = absl::StrCat(  //
      "private_key=", kAlicePrivateHex, "\n",
      "listen_port=51820\n",
      "public_key=", kBobPublicHex, "\n",
      "preshared_key=", kPskHex, "\n",
      "endpoint=192.0.2.7:51820\n",
      "persistent_keepalive_interval=25\n",
      "replace_allowed_ips=true\n",
      "allowed_ip=10.100.0.2/32\n",
      "allowed_ip=fd00:100::2/128\n");
  auto set = wg::ParseUapiSet(body);
  REQUIRE(set.ok());
  REQUIRE(set->private_key.has_value());
  REQUIRE(set->private_key->Equals(Secret(kAlicePrivateHex)));
  REQUIRE(set->listen_port == 51820);
  REQUIRE_FALSE(set->fwmark.has_value());
  REQUIRE_FALSE(set->replace_peers);
  REQUIRE(set->peers.size() == 1);
  const wg::UapiPeerSet& bob = set->peers[0];
  REQUIRE(bob.public_key == Pub(kBobPublicHex));
  REQUIRE_FALSE(bob.remove);
  REQUIRE_FALSE(bob.update_only);
  REQUIRE(bob.preshared_key.has_value());
  REQUIRE(bob.preshared_key->Equals(Secret(kPskHex)));
  REQUIRE(bob.endpoint.has_value());
  REQUIRE(bob.endpoint->ToString() == "192.0.2.7:51820");
  REQUIRE(bob.persistent_keepalive_interval == 25);
  REQUIRE(bob.replace_allowed_ips);
  REQUIRE(Prefixes(bob.allowed_ips) == "10.100.0.2/32 fd00:100::2/128 ");
}

TEST_CASE("ParseUapiSet reads a removal") {
  // wg set wg0 peer BOB remove
  auto set = wg::ParseUapiSet(std::string("public_key=") + kBobPublicHex + "\nremove=true\n");
  REQUIRE(set.ok());
  REQUIRE_FALSE(set->private_key.has_value());
  REQUIRE_FALSE(set->listen_port.has_value());
  REQUIRE(set->peers.size() == 1);
  REQUIRE(set->peers[0].public_key == Pub(kBobPublicHex));
  REQUIRE(set->peers[0].remove);
  REQUIRE_FALSE(set->peers[0].endpoint.has_value());
  REQUIRE(set->peers[0].allowed_ips.empty());
}

TEST_CASE("ParseUapiSet reads `wg syncconf`: replace_peers and several peers") {
  const std::string body = absl::StrCat(  //
      "private_key=", kAlicePrivateHex, "\n",
      "listen_port=51820\n",
      "fwmark=51820\n",
      "replace_peers=true\n",
      "public_key=", kBobPublicHex, "\n",
      "protocol_version=1\n",
      "endpoint=[2001:db8::7]:51820\n",
      "replace_allowed_ips=true\n",
      "allowed_ip=10.100.0.2/32\n",
      "public_key=", kCarolPublicHex, "\n",
      "update_only=true\n",
      "preshared_key=", kZeroHex, "\n",
      "persistent_keepalive_interval=0\n",
      "replace_allowed_ips=true\n");
  auto set = wg::ParseUapiSet(body);
  REQUIRE(set.ok());
  REQUIRE(set->fwmark == 51820u);
  REQUIRE(set->replace_peers);
  REQUIRE(set->peers.size() == 2);
  REQUIRE(set->peers[0].endpoint->ToString() == "[2001:db8::7]:51820");
  REQUIRE(Prefixes(set->peers[0].allowed_ips) == "10.100.0.2/32 ");
  REQUIRE_FALSE(set->peers[0].preshared_key.has_value());
  const wg::UapiPeerSet& carol = set->peers[1];
  REQUIRE(carol.public_key == Pub(kCarolPublicHex));
  REQUIRE(carol.update_only);
  // A zero preshared key is present (it removes the key), not absent.
  REQUIRE(carol.preshared_key.has_value());
  REQUIRE(carol.preshared_key->IsZero());
  REQUIRE(carol.persistent_keepalive_interval == 0);
  REQUIRE(carol.replace_allowed_ips);
  REQUIRE(carol.allowed_ips.empty());
}

TEST_CASE("ParseUapiSet: edge cases that are valid") {
  SECTION("an empty body changes nothing") {
    auto set = wg::ParseUapiSet("");
    REQUIRE(set.ok());
    REQUIRE_FALSE(set->private_key.has_value());
    REQUIRE(set->peers.empty());
  }
  SECTION("a zero private key (private-key /dev/null) is kept, to clear the key") {
    auto set = wg::ParseUapiSet(std::string("private_key=") + kZeroHex);  // no final newline
    REQUIRE(set.ok());
    REQUIRE(set->private_key->IsZero());
  }
  SECTION("replace_allowed_ips after allowed_ip drops the earlier ones, as applied in order") {
    auto set = wg::ParseUapiSet(std::string("public_key=") + kBobPublicHex +
                                "\nallowed_ip=10.0.0.0/8\nreplace_allowed_ips=true\n"
                                "allowed_ip=10.1.2.3/16\n");
    REQUIRE(set.ok());
    REQUIRE(set->peers[0].replace_allowed_ips);
    REQUIRE(Prefixes(set->peers[0].allowed_ips) == "10.1.0.0/16 ");  // host bits cleared
  }
  SECTION("the same peer twice is two blocks, applied in order") {
    auto set = wg::ParseUapiSet(std::string("public_key=") + kBobPublicHex +
                                "\nendpoint=192.0.2.1:1\npublic_key=" + kBobPublicHex +
                                "\nendpoint=192.0.2.2:2\n");
    REQUIRE(set.ok());
    REQUIRE(set->peers.size() == 2);
    REQUIRE(set->peers[1].endpoint->ToString() == "192.0.2.2:2");
  }
  SECTION("numbers at their limits") {
    auto set = wg::ParseUapiSet(std::string("listen_port=65535\nfwmark=4294967295\npublic_key=") +
                                kBobPublicHex + "\npersistent_keepalive_interval=65535\n");
    REQUIRE(set.ok());
    REQUIRE(set->listen_port == 65535);
    REQUIRE(set->fwmark == 4294967295u);
    REQUIRE(set->peers[0].persistent_keepalive_interval == 65535);
  }
}

TEST_CASE("ParseUapiSet errors name the line and key") {
  const std::string bob = std::string("public_key=") + kBobPublicHex + "\n";
  REQUIRE(Message("listen_port=70000\n") ==
          "line 1: listen_port: '70000' is not a number from 0 to 65535");
  REQUIRE(Message("listen_port=+1\n") ==
          "line 1: listen_port: '+1' is not a number from 0 to 65535");
  REQUIRE(Message("listen_port=\n") == "line 1: listen_port: '' is not a number from 0 to 65535");
  REQUIRE(Message("fwmark=4294967296\n") ==
          "line 1: fwmark: '4294967296' is not a number from 0 to 4294967295");
  REQUIRE(Message("replace_peers=false\n") ==
          "line 1: replace_peers: expected 'true', got 'false'");
  REQUIRE(Message("endpoint=192.0.2.7:51820\n") ==
          "line 1: endpoint: peer key before any public_key");
  REQUIRE(Message(bob + "listen_port=1\n") ==
          "line 2: listen_port: device key after the first public_key");
  REQUIRE(Message("listen_port=1\nlisten_port=2\n") == "line 2: listen_port: given twice");
  REQUIRE(Message(bob + "endpoint=192.0.2.7:1\nendpoint=192.0.2.7:2\n") ==
          "line 3: endpoint: given twice for the same peer");
  REQUIRE(Message(bob + "remove=yes\n") == "line 2: remove: expected 'true', got 'yes'");
  REQUIRE(Message(bob + "update_only=1\n") == "line 2: update_only: expected 'true', got '1'");
  REQUIRE(Message(bob + "replace_allowed_ips=\n") ==
          "line 2: replace_allowed_ips: expected 'true', got ''");
  REQUIRE(Message(bob + "protocol_version=2\n") ==
          "line 2: protocol_version: '2' is not a supported version (only 1)");
  REQUIRE(Message(bob + "persistent_keepalive_interval=-1\n") ==
          "line 2: persistent_keepalive_interval: '-1' is not a number from 0 to 65535");
  REQUIRE(Message(bob + "allowed_ip=10.0.0.1\n") ==
          "line 2: allowed_ip: '10.0.0.1': expected address/length");
  REQUIRE(Message(bob + "allowed_ip=10.0.0.0/33\n") ==
          "line 2: allowed_ip: '10.0.0.0/33': prefix length must be 0 to 32");
  REQUIRE(Message(bob + "allowed_ip=" + std::string(65, '1') + "\n") ==
          "line 2: allowed_ip: too long (65 characters)");
  REQUIRE(Message(bob + "endpoint=vpn.example.com:51820\n") ==
          "line 2: endpoint: 'vpn.example.com:51820': 'vpn.example.com' is not an IPv4 or IPv6 "
          "address");
  REQUIRE(Message(bob + "endpoint=[fe80::1]:70000\n") ==
          "line 2: endpoint: '[fe80::1]:70000': '70000' is not a port (0-65535)");
  REQUIRE(Message("jc=4\n") == "line 1: 'jc': unknown key");
  REQUIRE(Message("private_key=" + std::string(kZeroHex) + "\n\nlisten_port=1\n") ==
          "line 2: empty line inside a set request");
  REQUIRE(Message("\n") == "line 1: empty line inside a set request");
  REQUIRE(Message("listen_port=1\r\n") == "line 1: byte 14 is not printable ASCII");
  REQUIRE(Message(std::string("listen_port=1\0", 14)) == "line 1: byte 14 is not printable ASCII");
  REQUIRE(Message("get=1\n") == "line 1: 'get': unknown key");
}

TEST_CASE("ParseUapiSet never repeats key material") {
  // Uppercase hex: wg writes lowercase, and one spelling keeps the parser strict.
  std::string upper = kAlicePrivateHex;
  for (char& c : upper) c = static_cast<char>(toupper(c));
  std::string msg = Message("private_key=" + upper + "\n");
  REQUIRE(msg == "line 1: private_key: expected 64 lowercase hex digits");
  const std::string short_psk = std::string(kPskHex).substr(0, 62);
  msg = Message(std::string("public_key=") + kBobPublicHex + "\npreshared_key=" + short_psk + "\n");
  REQUIRE(msg == "line 2: preshared_key: expected 64 lowercase hex digits, got 62 characters");
  msg = Message(std::string("public_key=") + kBobPublicHex + "z\n");
  REQUIRE(msg == "line 1: public_key: expected 64 lowercase hex digits, got 65 characters");
  // A key where a name belongs: a line of hex with no '=' or a stray '='.
  msg = Message(std::string(kAlicePrivateHex) + "\n");
  REQUIRE(msg == "line 1: expected key=value");
  msg = Message(std::string(kAlicePrivateHex) + "=\n");
  REQUIRE(msg == "line 1: unknown key (not shown)");
  REQUIRE(msg.find("77076d0a") == std::string::npos);
}

TEST_CASE("FormatUapiGet writes exactly what wg show reads") {
  wg::UapiState state;
  state.private_key = Secret(kAlicePrivateHex);
  state.listen_port = 51820;
  wg::UapiPeerState bob;
  bob.public_key = Pub(kBobPublicHex);
  bob.preshared_key = Secret(kPskHex);
  bob.endpoint = base::SocketAddress::Parse("[2001:db8::7]:51820").value();
  bob.persistent_keepalive_interval = 25;
  bob.last_handshake = absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(123456789);
  bob.rx_bytes = 1234;
  bob.tx_bytes = 5678;
  bob.allowed_ips = {base::IpPrefix::Parse("10.100.0.2/32").value(),
                     base::IpPrefix::Parse("fd00:100::2/128").value()};
  wg::UapiPeerState carol;  // configured, never reached: no endpoint, no handshake, no PSK
  carol.public_key = Pub(kCarolPublicHex);
  state.peers = {bob, carol};

  const std::string expected = absl::StrCat(  //
      "private_key=", kAlicePrivateHex, "\n",
      "listen_port=51820\n",
      "public_key=", kBobPublicHex, "\n",
      "preshared_key=", kPskHex, "\n",
      "protocol_version=1\n",
      "endpoint=[2001:db8::7]:51820\n",
      "last_handshake_time_sec=1700000000\n",
      "last_handshake_time_nsec=123456789\n",
      "tx_bytes=5678\n",
      "rx_bytes=1234\n",
      "persistent_keepalive_interval=25\n",
      "allowed_ip=10.100.0.2/32\n",
      "allowed_ip=fd00:100::2/128\n",
      "public_key=", kCarolPublicHex, "\n",
      "preshared_key=", kZeroHex, "\n",
      "protocol_version=1\n",
      "last_handshake_time_sec=0\n",
      "last_handshake_time_nsec=0\n",
      "tx_bytes=0\n",
      "rx_bytes=0\n",
      "persistent_keepalive_interval=0\n",
      "errno=0\n",
      "\n");
  REQUIRE(wg::FormatUapiGet(state) == expected);
}

TEST_CASE("FormatUapiGet leaves out what is unset") {
  wg::UapiState state;
  REQUIRE(wg::FormatUapiGet(state) == "listen_port=0\nerrno=0\n\n");
  state.private_key = crypto::Key();  // all zeros: no key
  state.fwmark = 0xca6c;
  REQUIRE(wg::FormatUapiGet(state) == "listen_port=0\nfwmark=51820\nerrno=0\n\n");
  wg::UapiPeerState peer;
  peer.public_key = Pub(kBobPublicHex);
  peer.endpoint = base::SocketAddress();  // set but unspecified: wg could not parse it
  peer.last_handshake = absl::UnixEpoch() - absl::Seconds(5);  // before the epoch: never
  peer.allowed_ips.push_back(base::IpPrefix());                // no family: skipped
  state.peers.push_back(peer);
  const std::string out = wg::FormatUapiGet(state);
  REQUIRE(out.find("endpoint=") == std::string::npos);
  REQUIRE(out.find("allowed_ip=") == std::string::npos);
  REQUIRE(out.find("last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n") !=
          std::string::npos);
}

TEST_CASE("FormatUapiErrno writes the value as given") {
  REQUIRE(wg::FormatUapiErrno(0) == "errno=0\n\n");
  REQUIRE(wg::FormatUapiErrno(-EINVAL) == "errno=-22\n\n");
}

namespace {

struct Request {
  Result result;
  std::string body;
  friend bool operator==(const Request& a, const Request& b) {
    return a.result == b.result && a.body == b.body;
  }
};

// Drain takes every complete request out of |reader|; it stops at kNeedMore or kError.
void Drain(UapiRequestReader* reader, std::vector<Request>* out) {
  for (;;) {
    std::string body;
    Result r = reader->Next(&body);
    if (r == Result::kNeedMore) return;
    out->push_back({r, r == Result::kSet ? body : ""});
    if (r == Result::kError) return;
  }
}

}  // namespace

TEST_CASE("UapiRequestReader frames get and set") {
  UapiRequestReader reader;
  // Feed reports what is ready without consuming it.
  REQUIRE(reader.Feed("get=1\n\n") == Result::kGet);
  REQUIRE(reader.buffered_len() == 7);
  std::string body = "untouched";
  REQUIRE(reader.Next(&body) == Result::kGet);
  REQUIRE(body == "untouched");
  REQUIRE(reader.Next(&body) == Result::kNeedMore);
  REQUIRE(reader.buffered_len() == 0);

  REQUIRE(reader.Feed("set=1\nlisten_port=51820\n") == Result::kNeedMore);
  REQUIRE(reader.Next(&body) == Result::kNeedMore);
  REQUIRE(reader.Feed("\nset=1\n\nget") == Result::kSet);
  REQUIRE(reader.Next(&body) == Result::kSet);
  REQUIRE(body == "listen_port=51820\n");
  REQUIRE(wg::ParseUapiSet(body).value().listen_port == 51820);
  REQUIRE(reader.Next(nullptr) == Result::kSet);  // "set=1\n\n": empty body, not wanted
  REQUIRE(reader.Next(&body) == Result::kNeedMore);
  REQUIRE(reader.buffered_len() == 3);
  REQUIRE(reader.Feed("=1\n\n") == Result::kGet);
  REQUIRE(reader.Next(&body) == Result::kGet);
}

TEST_CASE("UapiRequestReader gives the same requests however the stream is split") {
  const std::string set_body = std::string("private_key=") + kAlicePrivateHex +
                               "\nreplace_peers=true\npublic_key=" + kBobPublicHex +
                               "\nallowed_ip=10.100.0.2/32\n";
  const std::string stream = "get=1\n\nset=1\n" + set_body + "\nset=1\n\nget=1\n\n";
  const std::vector<Request> expected = {
      {Result::kGet, ""}, {Result::kSet, set_body}, {Result::kSet, ""}, {Result::kGet, ""}};

  for (size_t split = 0; split <= stream.size(); ++split) {
    UapiRequestReader reader;
    std::vector<Request> got;
    REQUIRE(reader.Feed(absl::string_view(stream).substr(0, split)) != Result::kError);
    Drain(&reader, &got);
    REQUIRE(reader.Feed(absl::string_view(stream).substr(split)) != Result::kError);
    Drain(&reader, &got);
    INFO("split at " << split);
    REQUIRE(got == expected);
    REQUIRE(reader.buffered_len() == 0);
  }

  UapiRequestReader one_at_a_time;
  std::vector<Request> got;
  for (char c : stream) {
    REQUIRE(one_at_a_time.Feed(absl::string_view(&c, 1)) != Result::kError);
    Drain(&one_at_a_time, &got);
  }
  REQUIRE(got == expected);
}

TEST_CASE("UapiRequestReader refuses what is not a request, at once and for good") {
  SECTION("not the protocol at all") {
    UapiRequestReader reader;
    REQUIRE(reader.Feed("GET / HTTP/1.1\r\n") == Result::kError);
    REQUIRE(reader.Next(nullptr) == Result::kError);
    REQUIRE(reader.Feed("get=1\n\n") == Result::kError);  // sticky
    REQUIRE(reader.buffered_len() == 0);
  }
  SECTION("a wrong byte is an error as soon as it arrives") {
    UapiRequestReader reader;
    REQUIRE(reader.Feed("se") == Result::kNeedMore);
    REQUIRE(reader.Feed("t=2") == Result::kError);
  }
  SECTION("get takes no body") {
    UapiRequestReader reader;
    REQUIRE(reader.Feed("get=1\nprivate_key=") == Result::kError);
  }
  SECTION("a valid request before garbage is still served") {
    UapiRequestReader reader;
    REQUIRE(reader.Feed("get=1\n\nbogus") == Result::kGet);
    REQUIRE(reader.Next(nullptr) == Result::kGet);
    REQUIRE(reader.Next(nullptr) == Result::kError);
  }
  SECTION("a request that never ends stops at kMaxBuffered") {
    UapiRequestReader reader;
    REQUIRE(reader.Feed("set=1\n") == Result::kNeedMore);
    const std::string filler(UapiRequestReader::kMaxBuffered - 6, 'a');
    REQUIRE(reader.Feed(filler) == Result::kNeedMore);  // exactly at the cap
    REQUIRE(reader.buffered_len() == UapiRequestReader::kMaxBuffered);
    REQUIRE(reader.Feed("\n") == Result::kError);
    REQUIRE(reader.buffered_len() == 0);
  }
}
