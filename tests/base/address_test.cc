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
