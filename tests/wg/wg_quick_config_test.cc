// Tests for the wg-quick configuration parser: a realistic file, wg-quick's leniencies, and
// every error, each with its exact message.
#include "wg/wg_quick_config.h"

#include <string>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "crypto/keys.h"

using namespace p2proxy;

namespace {

// RFC 7748 §6.1's Alice as the interface, Bob as a peer, plus a made-up peer and PSK.
constexpr char kAlicePrivate[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
constexpr char kBobPublic[] = "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=";
constexpr char kCarolPublic[] = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
constexpr char kPsk[] = "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=";

std::string Message(const std::string& text) {
  auto config = wg::ParseWgQuickConfig(text);
  REQUIRE_FALSE(config.ok());
  return std::string(config.status().message());
}

// Interface is a minimal valid [Interface] section (lines 1-2).
std::string Interface() { return std::string("[Interface]\nPrivateKey = ") + kAlicePrivate + "\n"; }

std::string Prefixes(const std::vector<base::IpPrefix>& prefixes) {
  std::string out;
  for (const auto& p : prefixes) out += p.ToString() + " ";
  return out;
}

}  // namespace

TEST_CASE("ParseWgQuickConfig reads a realistic wg-quick file") {
  const std::string text = absl::StrCat(  //
      "# /etc/wireguard/wg0.conf on the site gateway\n",
      "[Interface]\n",
      "PrivateKey = ", kAlicePrivate, "\n",
      "Address = 10.100.0.1/24, fd00:100::1/64\n",
      "ListenPort = 51820\n",
      "MTU = 1420\n",
      "DNS = 10.100.0.53, corp.example\n",
      "FwMark = 0xca6c\n",
      "PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j "
      "MASQUERADE\n",
      "PostDown = iptables -D FORWARD -i %i -j ACCEPT\n",
      "\n",
      "[Peer]\n",
      "# bob-laptop\n",
      "PublicKey = ", kBobPublic, "\n",
      "PresharedKey = ", kPsk, "\n",
      "AllowedIPs = 10.100.0.2/32, fd00:100::2/128\n",
      "AllowedIPs = 192.168.50.0/24   # his home LAN\n",
      "Endpoint = 192.0.2.7:51820\n",
      "PersistentKeepalive = 25\n",
      "\n",
      "[Peer]\n",
      "PublicKey = ", kCarolPublic, "\n",
      "AllowedIPs = 10.100.0.3/32\n",
      "Endpoint = [2001:db8::3]:51820\n",
      "PersistentKeepalive = off\n");
  auto config = wg::ParseWgQuickConfig(text);
  REQUIRE(config.ok());
  REQUIRE(config->private_key.Equals(crypto::ParseKey(kAlicePrivate).value()));
  // Interface addresses keep their host bits.
  REQUIRE(Prefixes(config->addresses) == "10.100.0.1/24 fd00:100::1/64 ");
  REQUIRE(config->listen_port == 51820);
  REQUIRE(config->mtu == 1420u);
  REQUIRE(config->dns == std::vector<std::string>{"10.100.0.53", "corp.example"});
  REQUIRE(config->fwmark == 0xca6cu);
  REQUIRE(config->warnings == std::vector<std::string>{
                                  "line 9: [Interface] PostUp: wg-quick only, ignored",
                                  "line 10: [Interface] PostDown: wg-quick only, ignored"});
  REQUIRE(config->peers.size() == 2);

  const wg::WgQuickPeer& bob = config->peers[0];
  REQUIRE(bob.public_key == crypto::ParsePublicKey(kBobPublic).value());
  REQUIRE(bob.preshared_key.has_value());
  REQUIRE(bob.preshared_key->Equals(crypto::ParseKey(kPsk).value()));
  REQUIRE(Prefixes(bob.allowed_ips) == "10.100.0.2/32 fd00:100::2/128 192.168.50.0/24 ");
  REQUIRE(bob.endpoint->ToString() == "192.0.2.7:51820");
  REQUIRE(bob.persistent_keepalive == 25);

  const wg::WgQuickPeer& carol = config->peers[1];
  REQUIRE(carol.public_key == crypto::ParsePublicKey(kCarolPublic).value());
  REQUIRE_FALSE(carol.preshared_key.has_value());
  REQUIRE(carol.endpoint->ToString() == "[2001:db8::3]:51820");
  REQUIRE(carol.persistent_keepalive == 0);
}

TEST_CASE("ParseWgQuickConfig accepts what wg-quick accepts") {
  SECTION("a minimal file: only the private key") {
    auto config = wg::ParseWgQuickConfig(Interface());
    REQUIRE(config.ok());
    REQUIRE(config->addresses.empty());
    REQUIRE_FALSE(config->listen_port.has_value());
    REQUIRE_FALSE(config->mtu.has_value());
    REQUIRE(config->fwmark == 0);
    REQUIRE(config->peers.empty());
    REQUIRE(config->warnings.empty());
  }
  SECTION("any case, no spaces, CRLF, a byte order mark, a peer before [Interface]") {
    const std::string text = std::string("\xEF\xBB\xBF[PEER]\r\npublickey=") + kBobPublic +
                             "\r\nallowedips=0.0.0.0/0,::/0\r\npersistentkeepalive=OFF\r\n"
                             "[interface]\r\nprivatekey=" +
                             kAlicePrivate +
                             "\r\nlistenport=0\r\nfwmark=off\r\naddress=10.0.0.2\r\n";
    auto config = wg::ParseWgQuickConfig(text);
    REQUIRE(config.ok());
    REQUIRE(config->listen_port == 0);
    REQUIRE(Prefixes(config->addresses) == "10.0.0.2/32 ");
    REQUIRE(Prefixes(config->peers[0].allowed_ips) == "0.0.0.0/0 ::/0 ");
  }
  SECTION("empty lists, decimal marks, every ignored key") {
    const std::string text = Interface() +
                             "Address =\nDNS =\nFwMark = 1234\nTable = off\nPreUp = true\n"
                             "PreDown = true\nSaveConfig = true\nPostUp = a\nPostUp = b\n";
    auto config = wg::ParseWgQuickConfig(text);
    REQUIRE(config.ok());
    REQUIRE(config->addresses.empty());
    REQUIRE(config->dns.empty());
    REQUIRE(config->fwmark == 1234);
    REQUIRE(config->warnings == std::vector<std::string>{
                                    "line 6: [Interface] Table: wg-quick only, ignored",
                                    "line 7: [Interface] PreUp: wg-quick only, ignored",
                                    "line 8: [Interface] PreDown: wg-quick only, ignored",
                                    "line 9: [Interface] SaveConfig: wg-quick only, ignored",
                                    "line 10: [Interface] PostUp: wg-quick only, ignored",
                                    "line 11: [Interface] PostUp: wg-quick only, ignored"});
  }
  SECTION("host bits of allowed IPs are cleared, as wg does") {
    auto config = wg::ParseWgQuickConfig(Interface() + "[Peer]\nPublicKey = " + kBobPublic +
                                         "\nAllowedIPs = 10.1.2.3/16, 10.9.9.9\nAllowedIPs =\n");
    REQUIRE(config.ok());
    REQUIRE(Prefixes(config->peers[0].allowed_ips) == "10.1.0.0/16 10.9.9.9/32 ");
  }
}

TEST_CASE("ParseWgQuickConfig: structural errors") {
  const std::string bob = std::string("[Peer]\nPublicKey = ") + kBobPublic + "\n";
  REQUIRE(Message("") == "no [Interface] section");
  REQUIRE(Message("# nothing here\n" + bob) == "no [Interface] section");
  REQUIRE(Message("[Interface]\nListenPort = 51820\n") ==
          "line 1: [Interface] section has no PrivateKey");
  REQUIRE(Message(Interface() + "[Peer]\nAllowedIPs = 10.0.0.2/32\n") ==
          "line 3: [Peer] section has no PublicKey");
  REQUIRE(Message(Interface() + bob + bob) ==
          "line 6: [Peer] PublicKey: same key as the peer on line 3");
  REQUIRE(Message(Interface() + "[Interface]\n") ==
          "line 3: second [Interface] section (first on line 1)");
  REQUIRE(Message(Interface() + "[WireGuard]\n") ==
          "line 3: [WireGuard]: unknown section (expected [Interface] or [Peer])");
  REQUIRE(Message(Interface() + "[10.0.0.1/32]\n") ==
          "line 3: unknown section (expected [Interface] or [Peer])");
  REQUIRE(Message(Interface() + "[Peer\n") == "line 3: expected a [Section] header");
  REQUIRE(Message(Interface() + "ListenPort 51820\n") ==
          "line 3: expected 'Key = Value' or a [Section] header");
  REQUIRE(Message(Interface() + "Foo = 1\n") == "line 3: [Interface] Foo: unknown key");
  REQUIRE(Message("Foo = 1\n") == "line 1: Foo: unknown key");
  REQUIRE(Message(std::string("PrivateKey = ") + kAlicePrivate + "\n") ==
          "line 1: PrivateKey: outside any section (expected [Interface] or [Peer] first)");
  REQUIRE(Message(Interface() + "PublicKey = " + kBobPublic + "\n") ==
          "line 3: [Interface] PublicKey: belongs in [Peer]");
  REQUIRE(Message(Interface() + bob + "ListenPort = 1\n") ==
          "line 5: [Peer] ListenPort: belongs in [Interface]");
  REQUIRE(Message(Interface() + "ListenPort = 1\nlistenport = 2\n") ==
          "line 4: [Interface] ListenPort: given twice in one section (first on line 3)");
  REQUIRE(Message(Interface() + "SaveConfig = true\nSaveConfig = false\n") ==
          "line 4: [Interface] SaveConfig: given twice in one section (first on line 3)");
  REQUIRE(Message(Interface() + "MTU = 14\x01" "20\n") == "line 3: control character in line");
  REQUIRE(Message(Interface() + std::string("MTU = 1420\0\n", 12)) ==
          "line 3: control character in line");
}

TEST_CASE("ParseWgQuickConfig: value errors name line, section and key") {
  const std::string peer = Interface() + "[Peer]\nPublicKey = " + kBobPublic + "\n";  // 1-4
  REQUIRE(Message("[Interface]\nPrivateKey = abc=\n") ==
          "line 2: [Interface] PrivateKey: expected 44 base64 characters, got 4");
  REQUIRE(Message(Interface() + "Address = 10.0.0.1/24, 10.0.0.0/33\n") ==
          "line 3: [Interface] Address: '10.0.0.0/33': prefix length must be 0 to 32");
  REQUIRE(Message(Interface() + "Address = gateway\n") ==
          "line 3: [Interface] Address: 'gateway' is not an IPv4 or IPv6 address");
  REQUIRE(Message(Interface() + "Address = 10.0.0.1/24,,10.0.0.2/24\n") ==
          "line 3: [Interface] Address: empty item in list");
  REQUIRE(Message(Interface() + "Address = " + std::string(65, '1') + "\n") ==
          "line 3: [Interface] Address: '" + std::string(64, '1') + "...': too long");
  REQUIRE(Message(Interface() + "DNS = 1.1.1.1,\n") ==
          "line 3: [Interface] DNS: empty item in list");
  REQUIRE(Message(Interface() + "ListenPort = 65536\n") ==
          "line 3: [Interface] ListenPort: '65536' is not a port (0 to 65535)");
  REQUIRE(Message(Interface() + "ListenPort = -1\n") ==
          "line 3: [Interface] ListenPort: '-1' is not a port (0 to 65535)");
  REQUIRE(Message(Interface() + "MTU = 67\n") ==
          "line 3: [Interface] MTU: '67' is not an MTU (68 to 65535)");
  REQUIRE(Message(Interface() + "MTU = 65536\n") ==
          "line 3: [Interface] MTU: '65536' is not an MTU (68 to 65535)");
  REQUIRE(Message(Interface() + "FwMark = 0x1ffffffff\n") ==
          "line 3: [Interface] FwMark: '0x1ffffffff' is not a mark (a number, 0x-hex, or off)");
  REQUIRE(Message(Interface() + "FwMark = 4294967296\n") ==
          "line 3: [Interface] FwMark: '4294967296' is not a mark (a number, 0x-hex, or off)");
  REQUIRE(Message(Interface() + "FwMark = 0xzz\n") ==
          "line 3: [Interface] FwMark: '0xzz' is not a mark (a number, 0x-hex, or off)");
  REQUIRE(Message(Interface() + "[Peer]\nPublicKey = " + std::string(kBobPublic).substr(1) +
                  "\n") == "line 4: [Peer] PublicKey: expected 44 base64 characters, got 43");
  REQUIRE(Message(peer + "PresharedKey = " + std::string(43, 'A') + "!\n") ==
          "line 5: [Peer] PresharedKey: not a base64-encoded 32-byte key");
  REQUIRE(Message(peer + "AllowedIPs = 10.0.0.0/8\nAllowedIPs = 10.0.0.0/33\n") ==
          "line 6: [Peer] AllowedIPs: '10.0.0.0/33': prefix length must be 0 to 32");
  REQUIRE(Message(peer + "AllowedIPs = fd00::/129\n") ==
          "line 5: [Peer] AllowedIPs: 'fd00::/129': prefix length must be 0 to 128");
  REQUIRE(Message(peer + "Endpoint = vpn.example.com:51820\n") ==
          "line 5: [Peer] Endpoint: 'vpn.example.com:51820': host names are not supported yet; "
          "use an IP address");
  REQUIRE(Message(peer + "Endpoint = 192.0.2.7:70000\n") ==
          "line 5: [Peer] Endpoint: '192.0.2.7:70000': '70000' is not a port (0-65535)");
  REQUIRE(Message(peer + "Endpoint = 192.0.2.7\n") ==
          "line 5: [Peer] Endpoint: '192.0.2.7' is not an address: expected IPv4:port or "
          "[IPv6]:port");
  REQUIRE(Message(peer + "Endpoint = " + std::string(60, '1') + ":51820\n") ==
          "line 5: [Peer] Endpoint: '" + std::string(60, '1') + ":518...': too long");
  REQUIRE(Message(peer + "PersistentKeepalive = forever\n") ==
          "line 5: [Peer] PersistentKeepalive: 'forever' is not a number of seconds (0 to 65535) "
          "or off");
  REQUIRE(Message(peer + "PersistentKeepalive = 65536\n") ==
          "line 5: [Peer] PersistentKeepalive: '65536' is not a number of seconds (0 to 65535) "
          "or off");
}

TEST_CASE("ParseWgQuickConfig never repeats key material") {
  // A key pasted on its own line splits at its '=' padding into a "key name" of 43 characters.
  std::string msg = Message(Interface() + kBobPublic + "\n");
  REQUIRE(msg == "line 3: [Interface] unrecognized line (not shown)");
  // A private key that is not valid base64 is refused without being shown.
  std::string bad = kAlicePrivate;
  bad[0] = '!';
  msg = Message("[Interface]\nPrivateKey = " + bad + "\n");
  REQUIRE(msg == "line 2: [Interface] PrivateKey: not a base64-encoded 32-byte key");
  // A line without '=' is not shown either (it might be a key without padding).
  msg = Message("[Interface]\nPrivateKey " + std::string(kAlicePrivate).substr(0, 43) + "\n");
  REQUIRE(msg == "line 2: expected 'Key = Value' or a [Section] header");
  // A warning does not repeat the ignored command, which may hold secrets.
  auto config = wg::ParseWgQuickConfig(Interface() + "PostUp = wg set %i private-key /secret\n");
  REQUIRE(config.ok());
  REQUIRE(config->warnings[0].find("secret") == std::string::npos);
}
