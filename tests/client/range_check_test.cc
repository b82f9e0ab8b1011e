// The client's range clash check: ReadSystemRoutes on sample /proc/net/route files (written to a
// temporary directory), ReadSystemAddresses on this machine, and CheckRanges on made-up tables.
#include "client/range_check.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

using namespace p2proxy;
using client::OverlayRange;
using client::SystemAddress;
using client::SystemRoute;

namespace {

base::IpPrefix P(const char* text) { return *base::IpPrefix::Parse(text); }

// A(text, dev) is an interface address "a.b.c.d/len" with its host bits kept.
SystemAddress A(const char* text, const char* dev) {
  const std::string s(text);
  const size_t slash = s.find('/');
  SystemAddress a;
  a.prefix.address = *base::IpAddress::Parse(s.substr(0, slash));
  a.prefix.length = static_cast<uint8_t>(std::stoi(s.substr(slash + 1)));
  a.interface = dev;
  return a;
}

SystemRoute R(const char* prefix, const char* dev) {
  const base::IpPrefix p = P(prefix);
  return SystemRoute{p, dev, p.length == 0};
}

constexpr char kResourceFix[] =
    "choose another range with resource_range (client config) / the server's --resource_range";

OverlayRange Resources(const char* prefix = "100.96.128.0/18") {
  return OverlayRange{"resource_range", P(prefix), kResourceFix};
}

// RouteFile is a file in a fresh temporary directory, removed with it.
class RouteFile {
 public:
  explicit RouteFile(const std::string& text) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "p2p-client-route-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "route").string();
    std::ofstream out(path_, std::ios::binary);
    out << text;
    REQUIRE(out.good());
  }
  ~RouteFile() { std::filesystem::remove_all(dir_); }
  RouteFile(const RouteFile&) = delete;
  RouteFile& operator=(const RouteFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

// As the kernel prints it (x86: the address bytes reversed), trailing spaces included.
constexpr char kHeader[] =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
    "                                                       \n";
constexpr char kSampleRoutes[] =
    "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0                 \n"  // default via 192.168.1.1
    "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0                 \n"  // 192.168.1.0/24
    "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0               \n"   // 172.17.0.0/16
    "tailscale0\t00004064\t00000000\t0001\t0\t0\t0\t0000C0FF\t0\t0\t0            \n"   // 100.64.0.0/10
    "lo\t0000007F\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0                    \n"   // 127.0.0.0/8
    "p2p0\t00806064\t00000000\t0001\t0\t0\t0\t00C0FFFF\t0\t0\t0                  \n";  // 100.96.128.0/18

std::string Routes(const std::string& body) { return std::string(kHeader) + body; }

}  // namespace

TEST_CASE("range_check: ReadSystemRoutes parses a /proc/net/route file", "[range_check]") {
  RouteFile file(Routes(kSampleRoutes));
  auto routes = client::ReadSystemRoutes(file.path());
  REQUIRE(routes.ok());
  REQUIRE(routes->size() == 6);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"0.0.0.0/0", "eth0"},         {"192.168.1.0/24", "eth0"}, {"172.17.0.0/16", "docker0"},
      {"100.64.0.0/10", "tailscale0"}, {"127.0.0.0/8", "lo"},      {"100.96.128.0/18", "p2p0"},
  };
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("route " << i);
    CHECK((*routes)[i].prefix.ToString() == want[i].first);
    CHECK((*routes)[i].interface == want[i].second);
    CHECK((*routes)[i].is_default == (i == 0));
  }

  // The sample through CheckRanges: tailscale0's /10 loses our /18 (a warning), the rest is
  // default, disjoint, lo or our own.
  const client::RangeCheck check =
      client::CheckRanges({Resources()}, *routes, {A("100.96.128.1/32", "p2p0")}, "p2p0");
  CHECK(check.refusals.empty());
  REQUIRE(check.warnings.size() == 1);
  CHECK(absl::StrContains(check.warnings[0], "route 100.64.0.0/10 dev tailscale0"));

  // A header alone is an empty table.
  RouteFile empty(kHeader);
  auto none = client::ReadSystemRoutes(empty.path());
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("range_check: malformed route files name the line", "[range_check]") {
  auto error = [](const std::string& text) {
    RouteFile file(text);
    auto routes = client::ReadSystemRoutes(file.path());
    REQUIRE_FALSE(routes.ok());
    CHECK(routes.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(absl::StrContains(routes.status().message(), file.path()));
    return std::string(routes.status().message());
  };
  const std::string good = "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";

  CHECK(absl::StrContains(error(Routes(good + "eth0\t0001A8C0\t00000000\t0001\n")),
                          "line 3: expected 11 fields, got 4"));
  CHECK(absl::StrContains(error(Routes(good + good + "eth0\t0001A8CG\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")),
                          "line 4: destination '0001A8CG' is not 8 hex digits"));
  CHECK(absl::StrContains(error(Routes("eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t0FFFFFF\t0\t0\t0\n")),
                          "line 2: mask '0FFFFFF' is not 8 hex digits"));
  CHECK(absl::StrContains(error(Routes("eth0\t0001A8C0\t0000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")),
                          "line 2: gateway '0000000' is not 8 hex digits"));
  // 255.0.255.0: a hole in the mask.
  CHECK(absl::StrContains(error(Routes("eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0\n")),
                          "line 2: mask 255.0.255.0 is not contiguous"));
  CHECK(absl::StrContains(
      error(Routes("averyveryverylongname\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")),
      "line 2: interface name 'averyveryverylongname' is longer than 15 characters"));
  CHECK(absl::StrContains(error(good), "line 1: expected the header line"));
  CHECK(absl::StrContains(error(""), "is empty"));

  // Bounded: one line over kMaxRouteLines is refused; exactly kMaxRouteLines is read.
  std::string many = kHeader;
  for (size_t i = 1; i < client::kMaxRouteLines; ++i) many += good;
  {
    RouteFile file(many);
    auto routes = client::ReadSystemRoutes(file.path());
    REQUIRE(routes.ok());
    CHECK(routes->size() == client::kMaxRouteLines - 1);
  }
  CHECK(absl::StrContains(error(many + good), "more than 100000 lines"));

  // A missing file is not a parse error.
  auto missing = client::ReadSystemRoutes("/nonexistent/p2proxy/route");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(missing.status().message(), "cannot read /nonexistent/p2proxy/route"));
}

TEST_CASE("range_check: a route equal to or inside a range is refused", "[range_check]") {
  SECTION("exact overlap") {
    const client::RangeCheck check =
        client::CheckRanges({Resources()}, {R("100.96.128.0/18", "wg1")}, {}, "p2p0");
    CHECK(check.warnings.empty());
    REQUIRE(check.refusals.size() == 1);
    CHECK(check.refusals[0] ==
          "resource range 100.96.128.0/18 overlaps route 100.96.128.0/18 dev wg1: addresses in 100.96.128.0/18 "
          "would go to wg1 instead of the overlay; choose another range with resource_range (client config) / "
          "the server's --resource_range, or move that network");
  }
  SECTION("the range contains the route") {
    const client::RangeCheck check =
        client::CheckRanges({Resources()}, {R("100.96.130.0/24", "docker0")}, {}, "p2p0");
    CHECK(check.warnings.empty());
    REQUIRE(check.refusals.size() == 1);
    CHECK(check.refusals[0] ==
          "resource range 100.96.128.0/18 overlaps route 100.96.130.0/24 dev docker0: addresses in "
          "100.96.130.0/24 would go to docker0 instead of the overlay; choose another range with resource_range "
          "(client config) / the server's --resource_range, or move that network");
    CHECK(check.refusals[0].find('\n') == std::string::npos);
  }
  SECTION("a host route inside the range, and the setting named in the message") {
    const OverlayRange nodes{"node_range", P("100.96.0.0/18"), "choose another range with the server's --node_range"};
    const client::RangeCheck check = client::CheckRanges({nodes}, {R("100.96.0.7/32", "eth1")}, {}, "p2p0");
    REQUIRE(check.refusals.size() == 1);
    CHECK(absl::StartsWith(check.refusals[0], "node range 100.96.0.0/18 overlaps route 100.96.0.7/32 dev eth1:"));
    CHECK(absl::EndsWith(check.refusals[0], "; choose another range with the server's --node_range, or move that network"));
  }
  SECTION("without a fix, only the other side is named") {
    const OverlayRange bare{"resource_range", P("100.96.128.0/18"), ""};
    const client::RangeCheck check = client::CheckRanges({bare}, {R("100.96.128.0/18", "wg1")}, {}, "p2p0");
    REQUIRE(check.refusals.size() == 1);
    CHECK(absl::EndsWith(check.refusals[0], "instead of the overlay; move that network"));
  }
}

TEST_CASE("range_check: a less specific route is a warning", "[range_check]") {
  // Another VPN routes all of CGNAT space; our /18 wins for our range.
  const client::RangeCheck check =
      client::CheckRanges({Resources()}, {R("100.64.0.0/10", "tailscale0")}, {}, "p2p0");
  CHECK(check.refusals.empty());
  REQUIRE(check.warnings.size() == 1);
  CHECK(check.warnings[0] ==
        "resource range 100.96.128.0/18 lies inside route 100.64.0.0/10 dev tailscale0: the overlay's more specific "
        "routes take 100.96.128.0/18 from tailscale0, which can no longer reach addresses in it; if tailscale0 "
        "needs them, choose another range with resource_range (client config) / the server's --resource_range, "
        "or move that network");
  // One bit less specific is still less specific.
  CHECK(client::CheckRanges({Resources()}, {R("100.96.128.0/17", "docker0")}, {}, "p2p0").warnings.size() == 1);
}

TEST_CASE("range_check: disjoint, default, lo and own routes are fine", "[range_check]") {
  const std::vector<SystemRoute> routes = {
      R("0.0.0.0/0", "eth0"),         // default: anything more specific wins
      R("172.17.0.0/16", "docker0"),  // disjoint
      R("100.96.192.0/18", "wg1"),    // the neighbouring /18
      R("100.96.0.0/17", "wg2"),      // just below
      R("100.96.128.0/18", "p2p0"),   // our own
      R("100.64.0.0/10", "p2p0"),     // our own, even less specific
      R("100.96.128.0/24", "lo"),     // lo
  };
  const client::RangeCheck check = client::CheckRanges({Resources()}, routes, {}, "p2p0");
  CHECK(check.refusals.empty());
  CHECK(check.warnings.empty());

  // Only the TUN named is ignored: with another own interface, p2p0's routes count.
  const client::RangeCheck other = client::CheckRanges({Resources()}, routes, {}, "p2p1");
  CHECK(other.refusals.size() == 1);
  CHECK(other.warnings.size() == 1);

  // An IPv6 range never clashes with IPv4 routes.
  const OverlayRange v6{"resource_range", P("fd00:96::/64"), kResourceFix};
  CHECK(client::CheckRanges({v6}, {R("100.64.0.0/10", "tailscale0")}, {A("100.96.128.1/24", "eth1")}, "p2p0")
            .refusals.empty());
}

TEST_CASE("range_check: an interface address inside a range is refused", "[range_check]") {
  SECTION("a host address (as another VPN assigns)") {
    const client::RangeCheck check =
        client::CheckRanges({Resources()}, {}, {A("100.96.130.5/32", "tailscale0")}, "p2p0");
    CHECK(check.warnings.empty());
    REQUIRE(check.refusals.size() == 1);
    CHECK(check.refusals[0] ==
          "resource range 100.96.128.0/18 contains address 100.96.130.5/32 of tailscale0: packets to 100.96.130.5 "
          "would stay on this machine instead of going through the overlay; choose another range with "
          "resource_range (client config) / the server's --resource_range, or move that address");
  }
  SECTION("inside even when its network is less specific than the range") {
    const client::RangeCheck check =
        client::CheckRanges({Resources()}, {R("100.64.0.0/10", "cgnat0")}, {A("100.96.130.5/10", "cgnat0")}, "p2p0");
    REQUIRE(check.refusals.size() == 1);
    CHECK(absl::StrContains(check.refusals[0], "contains address 100.96.130.5/10 of cgnat0"));
    REQUIRE(check.warnings.size() == 1);  // the route's
    CHECK(absl::StrContains(check.warnings[0], "route 100.64.0.0/10 dev cgnat0"));
  }
  SECTION("an address whose network holds the range, outside it: a warning, once") {
    // The kernel's route for the network says it already.
    const client::RangeCheck with_route =
        client::CheckRanges({Resources()}, {R("100.64.0.0/10", "cgnat0")}, {A("100.64.0.1/10", "cgnat0")}, "p2p0");
    CHECK(with_route.refusals.empty());
    CHECK(with_route.warnings.size() == 1);
    // Without that route (noprefixroute), the address says it.
    const client::RangeCheck alone = client::CheckRanges({Resources()}, {}, {A("100.64.0.1/10", "cgnat0")}, "p2p0");
    CHECK(alone.refusals.empty());
    REQUIRE(alone.warnings.size() == 1);
    CHECK(absl::StartsWith(alone.warnings[0],
                           "resource range 100.96.128.0/18 lies inside network 100.64.0.0/10 of cgnat0 (address "
                           "100.64.0.1/10): the overlay's more specific routes take 100.96.128.0/18 from cgnat0"));
  }
  SECTION("own, disjoint and neighbouring addresses are fine") {
    const client::RangeCheck check = client::CheckRanges(
        {Resources()}, {},
        {A("100.96.128.1/32", "p2p0"), A("192.168.1.5/24", "eth0"), A("127.0.0.1/8", "lo"),
         A("100.96.127.255/32", "wg1"), A("100.96.192.0/32", "wg1")},
        "p2p0");
    CHECK(check.refusals.empty());
    CHECK(check.warnings.empty());
  }
}

TEST_CASE("range_check: several ranges, in order", "[range_check]") {
  const std::vector<OverlayRange> ranges = {
      OverlayRange{"node_range", P("100.96.0.0/18"), "choose another range with the server's --node_range"},
      Resources(),
  };
  const client::RangeCheck check = client::CheckRanges(
      ranges, {R("100.96.0.0/16", "wg1"), R("100.96.129.0/24", "docker0")}, {A("100.96.0.9/32", "wg1")}, "p2p0");
  REQUIRE(check.refusals.size() == 2);
  CHECK(absl::StartsWith(check.refusals[0], "node range 100.96.0.0/18 contains address 100.96.0.9/32 of wg1"));
  CHECK(absl::StartsWith(check.refusals[1], "resource range 100.96.128.0/18 overlaps route 100.96.129.0/24"));
  REQUIRE(check.warnings.size() == 2);
  CHECK(absl::StartsWith(check.warnings[0], "node range 100.96.0.0/18 lies inside route 100.96.0.0/16 dev wg1"));
  CHECK(absl::StartsWith(check.warnings[1], "resource range 100.96.128.0/18 lies inside route 100.96.0.0/16"));
}

TEST_CASE("range_check: this machine's routes and addresses read", "[range_check]") {
  auto addrs = client::ReadSystemAddresses();
  REQUIRE(addrs.ok());
  for (const SystemAddress& a : *addrs) {
    CHECK(a.prefix.address.family == base::IpAddress::kV4);
    CHECK(a.prefix.length <= 32);
    CHECK_FALSE(a.interface.empty());
  }
  if (std::filesystem::exists("/proc/net/route")) {
    auto routes = client::ReadSystemRoutes();
    INFO(routes.status().ToString());
    CHECK(routes.ok());
  }
}
