// Tests for SocketAddress parsing and printing.
#include "base/address.h"

#include <catch2/catch.hpp>

using p2proxy::base::SocketAddress;

TEST_CASE("SocketAddress parses and prints IPv4 and IPv6") {
  auto v4 = SocketAddress::Parse("100.96.128.20:443");
  REQUIRE(v4.ok());
  REQUIRE(v4->family() == AF_INET);
  REQUIRE(v4->port() == 443);
  REQUIRE(v4->ToString() == "100.96.128.20:443");
  auto v6 = SocketAddress::Parse("[::1]:51820");
  REQUIRE(v6.ok());
  REQUIRE(v6->family() == AF_INET6);
  REQUIRE(v6->ToString() == "[::1]:51820");
  REQUIRE(*v4 == *SocketAddress::Parse("100.96.128.20:443"));
  REQUIRE_FALSE(*v4 == *v6);
}

TEST_CASE("SocketAddress errors name the problem") {
  REQUIRE(SocketAddress::Parse("1.2.3.4").status().message() ==
          "'1.2.3.4' is not an address: expected IPv4:port or [IPv6]:port");
  REQUIRE(SocketAddress::Parse("1.2.3.4:70000").status().message() ==
          "'1.2.3.4:70000': '70000' is not a port (0-65535)");
  REQUIRE(SocketAddress::Parse("1.2.3.4:+80").status().message() ==
          "'1.2.3.4:+80': '+80' is not a port (0-65535)");
  REQUIRE(SocketAddress::Parse("vault:80").status().message() ==
          "'vault:80': 'vault' is not an IPv4 or IPv6 address");
  REQUIRE_FALSE(SocketAddress::Parse("::1:80").ok());
  REQUIRE_FALSE(SocketAddress::Parse("[::1]80").ok());
}

#include "base/ip_prefix.h"

using p2proxy::base::IpAddress;
using p2proxy::base::IpPrefix;

TEST_CASE("IpPrefix parses, canonicalizes and matches") {
  auto p = IpPrefix::Parse("100.96.128.7/18");
  REQUIRE(p.ok());
  REQUIRE(p->ToString() == "100.96.128.0/18");
  REQUIRE(p->Contains(*IpAddress::Parse("100.96.191.255")));
  REQUIRE_FALSE(p->Contains(*IpAddress::Parse("100.96.192.0")));
  REQUIRE_FALSE(p->Contains(*IpAddress::Parse("::1")));
  REQUIRE(IpPrefix::Parse("10.1.2.3")->ToString() == "10.1.2.3/32");
  REQUIRE(IpPrefix::Parse("fd00:1::5/16")->ToString() == "fd00::/16");
  REQUIRE(IpPrefix::Parse("0.0.0.0/0")->Contains(*IpAddress::Parse("8.8.8.8")));
  REQUIRE(IpPrefix::Parse("10.0.0.0/33").status().message() == "'10.0.0.0/33': prefix length must be 0 to 32");
  REQUIRE_FALSE(IpPrefix::Parse("10.0.0.0/").ok());
  REQUIRE_FALSE(IpPrefix::Parse("10.0.0.0/-1").ok());
  REQUIRE(IpAddress::V4(100, 96, 0, 1).v4() == 0x64600001u);
}

TEST_CASE("an embedded NUL never passes as a shorter address") {
  using namespace std::string_literals;
  REQUIRE_FALSE(SocketAddress::Parse(absl::string_view("1.2.3.4\0junk:5"s)).ok());
  REQUIRE_FALSE(IpPrefix::Parse(absl::string_view("10.0.0.0\0junk/8"s)).ok());
  REQUIRE_FALSE(IpAddress::Parse(absl::string_view("::1\0"s)).ok());
}
