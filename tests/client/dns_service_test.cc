// DnsService::ApplyNames: the client's resolver takes new private names live. Real DNS queries
// over loopback to a DnsService with the OS hook off and a fake upstream.
#include "client/dns_service.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../dns/resolver_rig.h"

using namespace p2proxy;
using dns::testing::FakeUpstream;
using dns::testing::FirstA;
using dns::testing::Query;

namespace {

// Service is a DnsService on 127.0.0.1 with hook "none", a fake upstream and a UDP client.
struct Service {
  explicit Service(bool silent_upstream = false) : upstream(loop, silent_upstream) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "p2p-client-dns-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    state_dir = tmpl;
    client::ClientConfig config;
    config.dns.hook = client::DnsHookMode::kNone;
    config.dns.state_dir = state_dir;
    config.dns.upstreams = {upstream.socket->local_address()};
    config.zones = {"example.internal"};
    config.resources = {client::ClientResource{"vault.example.internal", base::IpAddress::V4(100, 96, 128, 20)}};
    // Port 0 picks a free UDP port and TCP then takes the same number, which another socket may
    // hold: try a few.
    client::DnsService::Options options;
    options.live_zones = true;
    for (int attempt = 0; attempt < 20 && service == nullptr; ++attempt) {
      auto s = client::DnsService::Start(loop, clock, config, *base::SocketAddress::Parse("127.0.0.1:0"), "",
                                         options);
      if (s.ok()) service = std::move(*s);
    }
    REQUIRE(service != nullptr);
    client_socket = *net::UdpSocket::Bind(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                          [this](absl::Span<const base::Datagram> batch) {
                                            for (const auto& d : batch) replies.emplace_back(d.data.begin(), d.data.end());
                                          });
  }
  ~Service() {
    service.reset();
    std::error_code ec;
    std::filesystem::remove_all(state_dir, ec);
  }
  void Send(const std::vector<uint8_t>& query) {
    client_socket->Send(service->resolver().local_address(), query);
  }
  // Ask sends one A query and waits (bounded) for one reply.
  dns::Message Ask(uint16_t id, const char* name) {
    const size_t before = replies.size();
    Send(Query(id, name, dns::kTypeA));
    REQUIRE(loop.RunUntil([&] { return replies.size() > before; }, absl::Seconds(10)));
    dns::Message m;
    REQUIRE(dns::ParseMessage(replies.back(), &m) == dns::ParseError::kOk);
    REQUIRE(m.header.id == id);
    return m;
  }
  size_t Asked(const std::string& key) const {
    size_t n = 0;
    for (const auto& a : upstream.asked) n += a == key ? 1 : 0;
    return n;
  }

  net::Loop loop;
  base::FakeClock clock;
  FakeUpstream upstream;
  std::string state_dir;
  std::unique_ptr<client::DnsService> service;
  std::unique_ptr<net::UdpSocket> client_socket;
  std::vector<std::vector<uint8_t>> replies;
};

client::ClientResource R(const char* name, uint8_t last) {
  return client::ClientResource{name, base::IpAddress::V4(100, 96, 128, last)};
}

}  // namespace

TEST_CASE("DnsService::ApplyNames: new names answer, removed ones are NXDOMAIN, removed zones go upstream") {
  Service s;
  dns::Message m = s.Ask(1, "vault.example.internal");
  CHECK(m.header.rcode == dns::kRcodeNoError);
  CHECK(FirstA(m) == "100.96.128.20");
  m = s.Ask(2, "new.example.internal");
  CHECK(m.header.rcode == dns::kRcodeNxDomain);
  m = s.Ask(3, "www.other.internal");  // not private yet: forwarded
  CHECK(FirstA(m) == "192.0.2.1");
  CHECK(s.Asked("www.other.internal") == 1);

  REQUIRE(s.service->ApplyNames({"example.internal", "other.internal"},
                                {R("new.example.internal", 21), R("*.apps.other.internal", 22)})
              .ok());
  m = s.Ask(4, "new.example.internal");
  CHECK(m.header.rcode == dns::kRcodeNoError);
  CHECK(m.header.aa);
  CHECK(FirstA(m) == "100.96.128.21");
  m = s.Ask(5, "vault.example.internal");  // removed from a zone that stays
  CHECK(m.header.rcode == dns::kRcodeNxDomain);
  CHECK(m.header.aa);
  m = s.Ask(6, "grafana.apps.other.internal");
  CHECK(FirstA(m) == "100.96.128.22");
  m = s.Ask(7, "www.other.internal");  // private now: answered here, never asked upstream (I2)
  CHECK(m.header.rcode == dns::kRcodeNxDomain);
  CHECK(s.Asked("www.other.internal") == 1);
  CHECK(s.service->config().zones == std::vector<std::string>{"example.internal", "other.internal"});

  // example.internal goes: its names are no longer private and go to the upstream again.
  REQUIRE(s.service->ApplyNames({"other.internal"}, {R("*.apps.other.internal", 22)}).ok());
  m = s.Ask(8, "new.example.internal");
  CHECK(m.header.rcode == dns::kRcodeNoError);
  CHECK(FirstA(m) == "192.0.2.1");
  CHECK(s.Asked("new.example.internal") == 1);
  m = s.Ask(9, "x.apps.other.internal");
  CHECK(FirstA(m) == "100.96.128.22");
}

TEST_CASE("DnsService::ApplyNames: a refused table changes nothing") {
  Service s;
  // A record outside every zone cannot be built into the table.
  const absl::Status st = s.service->ApplyNames({"example.internal"}, {R("wiki.corp.example", 30)});
  CHECK_FALSE(st.ok());
  dns::Message m = s.Ask(1, "vault.example.internal");
  CHECK(FirstA(m) == "100.96.128.20");
  CHECK(s.service->config().resources.size() == 1);
}

TEST_CASE("DnsService::ApplyNames: a query in flight upstream is answered after the apply") {
  Service s(/*silent_upstream=*/true);
  const size_t before = s.replies.size();
  s.Send(Query(41, "slow.example.net", dns::kTypeA));
  REQUIRE(s.loop.RunUntil([&] { return s.upstream.held.size() == 1; }, absl::Seconds(10)));
  REQUIRE(s.service->ApplyNames({"example.internal", "example.net"}, {R("vault.example.internal", 20)}).ok());
  s.upstream.Release();
  REQUIRE(s.loop.RunUntil([&] { return s.replies.size() > before; }, absl::Seconds(10)));
  dns::Message m;
  REQUIRE(dns::ParseMessage(s.replies.back(), &m) == dns::ParseError::kOk);
  CHECK(m.header.id == 41);
  CHECK(FirstA(m) == "192.0.2.1");
  // The next query for it is private: NXDOMAIN from the new table, not the upstream's cached answer.
  m = s.Ask(42, "slow.example.net");
  CHECK(m.header.rcode == dns::kRcodeNxDomain);
  CHECK(s.Asked("slow.example.net") == 1);
}
