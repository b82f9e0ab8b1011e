// relay_frame_test.cc: relay frames parse only as nat/relay_frame.h says; pseudo endpoints
// round-trip and are never mistaken for real ones.
#include "nat/relay_frame.h"

#include <catch2/catch.hpp>
#include <vector>

namespace p2proxy {
namespace {

std::vector<uint8_t> Frame(const base::IpAddress& dst, const base::IpAddress& src, size_t payload, uint8_t type = 4) {
  std::vector<uint8_t> f(nat::kRelayHeaderSize + payload, 0xAB);
  nat::WriteRelayHeader(dst, src, f.data());
  if (payload >= 4) {
    f[12] = type;
    f[13] = f[14] = f[15] = 0;
  }
  return f;
}

const base::IpAddress kSite = base::IpAddress::V4(100, 96, 0, 2);
const base::IpAddress kClient = base::IpAddress::V4(100, 96, 0, 3);

TEST_CASE("relay frames: a good one parses, each broken field is refused", "[nat]") {
  auto good = Frame(kSite, kClient, 148, 1);
  nat::RelayFrame f;
  REQUIRE(nat::ParseRelayFrame(good, &f));
  CHECK(f.dst == kSite);
  CHECK(f.src == kClient);
  CHECK(f.payload.size() == 148);
  CHECK(f.payload[0] == 1);

  CHECK_FALSE(nat::ParseRelayFrame(Frame(kSite, kClient, 31), &f));                            // below a keepalive
  CHECK(nat::ParseRelayFrame(Frame(kSite, kClient, 32), &f));                                  // a keepalive
  CHECK(nat::ParseRelayFrame(Frame(kSite, kClient, nat::kMaxRelayPayload), &f));
  CHECK_FALSE(nat::ParseRelayFrame(Frame(kSite, kClient, nat::kMaxRelayPayload + 1), &f));
  CHECK_FALSE(nat::ParseRelayFrame(Frame(kSite, kClient, 148, 0), &f));                        // no WireGuard type
  CHECK_FALSE(nat::ParseRelayFrame(Frame(kSite, kClient, 148, 5), &f));
  CHECK_FALSE(nat::ParseRelayFrame(Frame(kSite, kSite, 148), &f));                             // to itself
  CHECK_FALSE(nat::ParseRelayFrame(Frame(base::IpAddress::V4(0, 0, 0, 0), kClient, 148), &f));  // unspecified
  auto bad_type = good;
  bad_type[1] = 1;  // the type word's upper bytes must be zero
  CHECK_FALSE(nat::IsRelayFrame(bad_type));
  CHECK_FALSE(nat::ParseRelayFrame(bad_type, &f));
  auto wg_reserved = good;
  wg_reserved[13] = 1;
  CHECK_FALSE(nat::ParseRelayFrame(wg_reserved, &f));
  // WireGuard's own messages are never relay frames.
  std::vector<uint8_t> initiation(148, 0);
  initiation[0] = 1;
  CHECK_FALSE(nat::IsRelayFrame(initiation));
  CHECK_FALSE(nat::IsRelayFrame({}));
}

TEST_CASE("relay pseudo endpoints round-trip and real endpoints are not taken for them", "[nat]") {
  const base::SocketAddress ep = nat::RelayEndpoint(kSite);
  base::IpAddress node;
  REQUIRE(nat::RelayNodeOf(ep, &node));
  CHECK(node == kSite);
  CHECK(ep.ToString() == "[100::6460:2]:1");
  for (const char* real : {"198.18.5.2:51820", "[100::6460:2]:2", "[2001:db8::6460:2]:1", "[100:0:0:1::6460:2]:1"}) {
    INFO(real);
    auto a = base::SocketAddress::Parse(real);
    REQUIRE(a.ok());
    CHECK_FALSE(nat::RelayNodeOf(*a, &node));
  }
}

}  // namespace
}  // namespace p2proxy
