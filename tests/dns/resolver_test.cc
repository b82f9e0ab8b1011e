// The resolver on loopback, against a fake upstream: private names answered locally and never
// forwarded (I2), forwarding, the cache and its TTLs, truncation and TCP, malformed queries.
#include "dns/resolver.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "base/clock.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "net/udp.h"

using namespace p2proxy;
using namespace p2proxy::dns;

namespace {

Name N(const char* text) { return *Name::Parse(text); }

std::vector<uint8_t> Query(uint16_t id, const char* name, uint16_t type, bool edns = false) {
  Message q;
  q.header.id = id;
  q.header.rd = true;
  q.questions.push_back(Question{N(name), type, kClassIn});
  if (edns) {
    Edns e;
    e.udp_payload_size = 4096;
    q.edns = e;
  }
  std::vector<uint8_t> out;
  REQUIRE(BuildMessage(q, 65535, &out));
  return out;
}

// FakeUpstream answers A queries with 192.0.2.1 (TTL 30), or with 100 addresses for names that
// start with "big", and records every question it is asked.
struct FakeUpstream {
  explicit FakeUpstream(net::Loop& loop, bool silent = false) {
    socket = *net::UdpSocket::Bind(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                   [this, silent](absl::Span<const base::Datagram> batch) {
                                     for (const auto& d : batch) Answer(d, silent);
                                   });
  }
  void Answer(const base::Datagram& d, bool silent) {
    Message q;
    REQUIRE(ParseMessage(d.data, &q) == ParseError::kOk);
    asked.push_back(q.questions.at(0).name.Key());
    if (silent) return;
    Message r;
    r.header = q.header;
    r.header.qr = true;
    r.header.ra = true;
    r.questions = q.questions;
    const bool big = absl::StartsWith(q.questions[0].name.Key(), "big");
    for (int i = 0; i < (big ? 100 : 1); ++i) {
      r.answers.push_back(MakeA(q.questions[0].name, 30, base::IpAddress::V4(192, 0, 2, static_cast<uint8_t>(i + 1))));
    }
    std::vector<uint8_t> out;
    REQUIRE(BuildMessage(r, 65535, &out));
    socket->Send(d.addr, out);
  }
  std::unique_ptr<net::UdpSocket> socket;
  std::vector<std::string> asked;
};

struct Rig {
  explicit Rig(bool silent_upstream = false) : upstream(loop, silent_upstream) {
    ZoneTable zones;
    REQUIRE(zones.AddZone("example.internal").ok());
    REQUIRE(zones.AddRecord("vault.example.internal", base::IpAddress::V4(100, 96, 128, 20)).ok());
    REQUIRE(zones.AddReverse(*base::IpPrefix::Parse("100.96.128.0/18")).ok());
    Resolver::Options o;
    o.listen = *base::SocketAddress::Parse("127.0.0.1:0");
    o.upstreams = {upstream.socket->local_address()};
    o.upstream_timeout = absl::Milliseconds(200);
    resolver = *Resolver::Create(loop, clock, std::move(zones), o);
    client = *net::UdpSocket::Bind(loop, *base::SocketAddress::Parse("127.0.0.1:0"),
                                   [this](absl::Span<const base::Datagram> batch) {
                                     for (const auto& d : batch) replies.emplace_back(d.data.begin(), d.data.end());
                                   });
  }
  // Ask sends one query over UDP and waits (bounded) for one reply, parsed into |out|.
  bool Ask(const std::vector<uint8_t>& query, Message* out) {
    const size_t before = replies.size();
    client->Send(resolver->local_address(), query);
    if (!loop.RunUntil([&] { return replies.size() > before; }, absl::Seconds(10))) return false;
    last_wire = replies.back();
    return ParseMessage(last_wire, out) == ParseError::kOk;
  }
  net::Loop loop;
  base::FakeClock clock;
  FakeUpstream upstream;
  std::unique_ptr<Resolver> resolver;
  std::unique_ptr<net::UdpSocket> client;
  std::vector<std::vector<uint8_t>> replies;
  std::vector<uint8_t> last_wire;
};

std::string FirstA(const Message& m) {
  for (const auto& r : m.answers) {
    if (r.type == kTypeA && r.rdata.size() == 4) return base::IpAddress::FromBytes(r.rdata).ToString();
  }
  return "";
}

// Reader keeps what a TCP connection to the resolver sends back.
struct Reader : net::StreamHandler {
  void OnData(base::ByteSpan d) override { bytes.insert(bytes.end(), d.begin(), d.end()); }
  void OnEnd() override { ended = true; }
  void OnError(const absl::Status&) override { ended = true; }
  std::vector<uint8_t> bytes;
  bool ended = false;
};

// ConnectTcp opens a TCP connection to the rig's resolver, read by |reader|.
std::unique_ptr<net::TcpStream> ConnectTcp(Rig& rig, Reader& reader) {
  std::unique_ptr<net::TcpStream> tcp;
  net::TcpStream::Connect(rig.loop, rig.resolver->local_address(),
                          [&](absl::StatusOr<std::unique_ptr<net::TcpStream>> s) { tcp = std::move(*s); });
  REQUIRE(rig.loop.RunUntil([&] { return tcp != nullptr; }, absl::Seconds(10)));
  tcp->SetHandler(&reader);
  return tcp;
}

// Frame appends |q| with TCP's two-byte length prefix (RFC 1035 §4.2.2).
void Frame(const std::vector<uint8_t>& q, std::vector<uint8_t>* out) {
  out->push_back(static_cast<uint8_t>(q.size() >> 8));
  out->push_back(static_cast<uint8_t>(q.size()));
  out->insert(out->end(), q.begin(), q.end());
}

}  // namespace

TEST_CASE("resolver: a private name is answered locally over UDP, with the query's id and case") {
  Rig rig;
  Message m;
  REQUIRE(rig.Ask(Query(0x1234, "Vault.Example.Internal", kTypeA), &m));
  REQUIRE(m.header.id == 0x1234);
  REQUIRE(m.header.qr);
  REQUIRE(m.header.aa);
  REQUIRE(m.header.rcode == kRcodeNoError);
  REQUIRE(FirstA(m) == "100.96.128.20");
  REQUIRE(m.questions.at(0).name.ToString() == "Vault.Example.Internal");
  REQUIRE(rig.resolver->counters().answered_locally == 1);
}

TEST_CASE("resolver: no query for a private name ever reaches the upstream") {
  Rig rig;
  Message m;
  REQUIRE(rig.Ask(Query(1, "vault.example.internal", kTypeAaaa), &m));
  REQUIRE(m.header.rcode == kRcodeNoError);
  REQUIRE(m.answers.empty());
  REQUIRE(rig.Ask(Query(2, "missing.example.internal", kTypeA), &m));
  REQUIRE(m.header.rcode == kRcodeNxDomain);
  REQUIRE(rig.Ask(Query(3, "a.b.c.example.internal", kTypeTxt), &m));
  REQUIRE(m.header.rcode == kRcodeNxDomain);
  REQUIRE(rig.Ask(Query(4, "20.128.96.100.in-addr.arpa", kTypePtr), &m));
  REQUIRE(m.answers.size() == 1);
  REQUIRE(rig.Ask(Query(5, "99.160.96.100.in-addr.arpa", kTypePtr), &m));
  REQUIRE(m.header.rcode == kRcodeNxDomain);
  REQUIRE(rig.upstream.asked.empty());
  REQUIRE(rig.resolver->counters().forwarded == 0);
}

TEST_CASE("resolver: other names are forwarded, answered with the client's id, then cached for their TTL") {
  Rig rig;
  Message m;
  REQUIRE(rig.Ask(Query(0xbeef, "www.example.com", kTypeA), &m));
  REQUIRE(m.header.id == 0xbeef);
  REQUIRE(FirstA(m) == "192.0.2.1");
  REQUIRE(rig.upstream.asked == std::vector<std::string>{"www.example.com"});
  // Within the TTL: from the cache, TTL aged.
  rig.clock.Advance(absl::Seconds(10));
  REQUIRE(rig.Ask(Query(0xbef0, "WWW.example.com", kTypeA), &m));
  REQUIRE(m.header.id == 0xbef0);
  REQUIRE(FirstA(m) == "192.0.2.1");
  REQUIRE(m.answers.at(0).ttl == 20);
  REQUIRE(rig.upstream.asked.size() == 1);
  REQUIRE(rig.resolver->counters().cache_hits == 1);
  // After it: asked again.
  rig.clock.Advance(absl::Seconds(25));
  REQUIRE(rig.Ask(Query(7, "www.example.com", kTypeA), &m));
  REQUIRE(rig.upstream.asked.size() == 2);
}

TEST_CASE("resolver: an answer too big for 512 bytes is truncated over UDP and whole over TCP") {
  Rig rig;
  Message m;
  REQUIRE(rig.Ask(Query(9, "big.example.com", kTypeA), &m));
  REQUIRE(m.header.tc);
  REQUIRE(rig.last_wire.size() <= 512);
  // With EDNS the client may take more (up to 1232), still not 100 records.
  REQUIRE(rig.Ask(Query(10, "big.example.com", kTypeA, true), &m));
  REQUIRE(m.header.tc);
  REQUIRE(rig.last_wire.size() <= 1232);
  REQUIRE(m.edns.has_value());

  // TCP: two pipelined queries in one write, each framed; both come back whole.
  Reader reader;
  auto tcp = ConnectTcp(rig, reader);
  std::vector<uint8_t> framed;
  for (uint16_t id : {21, 22}) {
    Frame(Query(id, id == 21 ? "big.example.com" : "vault.example.internal", kTypeA), &framed);
  }
  tcp->Write(framed);
  std::vector<Message> got;
  REQUIRE(rig.loop.RunUntil([&] {
    got.clear();
    size_t off = 0;
    while (reader.bytes.size() - off >= 2) {
      const size_t len = (size_t{reader.bytes[off]} << 8) | reader.bytes[off + 1];
      if (reader.bytes.size() - off - 2 < len) break;
      Message msg;
      if (ParseMessage(base::ByteSpan(reader.bytes.data() + off + 2, len), &msg) == ParseError::kOk) got.push_back(msg);
      off += 2 + len;
    }
    return got.size() == 2;
  }, absl::Seconds(10)));
  for (const Message& msg : got) {
    REQUIRE_FALSE(msg.header.tc);
    if (msg.header.id == 21) REQUIRE(msg.answers.size() == 100);
    if (msg.header.id == 22) REQUIRE(FirstA(msg) == "100.96.128.20");
  }
  REQUIRE(rig.resolver->counters().tcp_queries == 2);
}

TEST_CASE("resolver: malformed queries get FORMERR, runts and responses get nothing") {
  Rig rig;
  // A compression pointer that loops onto itself.
  const std::vector<uint8_t> loop_query = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                                           0x00, 0x00, 0x00, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01};
  Message m;
  REQUIRE(rig.Ask(loop_query, &m));
  REQUIRE(m.header.id == 0x1234);
  REQUIRE(m.header.rcode == kRcodeFormErr);
  const uint64_t dropped = rig.resolver->counters().dropped;
  rig.client->Send(rig.resolver->local_address(), std::vector<uint8_t>{0x12, 0x34, 0x01});
  auto response = Query(5, "vault.example.internal", kTypeA);
  response[2] |= 0x80;  // QR: a response, never answered (no reflection loops)
  rig.client->Send(rig.resolver->local_address(), response);
  REQUIRE(rig.loop.RunUntil([&] { return rig.resolver->counters().dropped == dropped + 2; }, absl::Seconds(10)));
  // Still serving.
  REQUIRE(rig.Ask(Query(6, "vault.example.internal", kTypeA), &m));
  REQUIRE(FirstA(m) == "100.96.128.20");
  REQUIRE(rig.upstream.asked.empty());
}

TEST_CASE("resolver: an upstream that never answers gives SERVFAIL") {
  Rig rig(/*silent_upstream=*/true);
  Message m;
  REQUIRE(rig.Ask(Query(3, "slow.example.com", kTypeA), &m));
  REQUIRE(m.header.id == 3);
  REQUIRE(m.header.rcode == kRcodeServFail);
  REQUIRE(rig.resolver->counters().servfail == 1);
}

// A client that sends its query and half-closes still gets the answer: the session ends only
// once its answers have left the stream.
TEST_CASE("resolver: a TCP client that half-closes after its query still gets the answer") {
  Rig rig;
  for (int round = 0; round < 20; ++round) {
    Reader reader;
    auto tcp = ConnectTcp(rig, reader);
    std::vector<uint8_t> framed;
    Frame(Query(static_cast<uint16_t>(100 + round), round % 2 ? "vault.example.internal" : "missing.example.internal",
                kTypeTxt),
          &framed);
    tcp->Write(framed);
    tcp->Shutdown();
    REQUIRE(rig.loop.RunUntil([&] { return reader.ended; }, absl::Seconds(10)));
    REQUIRE(reader.bytes.size() > 2);
    Message m;
    REQUIRE(ParseMessage(base::ByteSpan(reader.bytes.data() + 2, reader.bytes.size() - 2), &m) == ParseError::kOk);
    REQUIRE(m.header.id == 100 + round);
  }
}

// Over UDP the common private query takes AnswerFast; its bytes are those the general path
// gives the same query over TCP (where the fast path is never used), and a burst that mixes
// fast, local-but-unusual, forwarded and malformed queries gets every answer, each to its id.
TEST_CASE("resolver: private names over UDP take the fast path, with the general path's bytes") {
  Rig rig;
  const std::vector<uint8_t> queries[] = {
      Query(31, "Vault.Example.Internal", kTypeA, true), Query(32, "vault.example.internal", kTypeAaaa),
      Query(33, "missing.example.internal", kTypeA, true), Query(34, "20.128.96.100.in-addr.arpa", kTypePtr)};
  std::vector<std::vector<uint8_t>> udp_answers;
  for (const auto& q : queries) {
    Message m;
    REQUIRE(rig.Ask(q, &m));
    udp_answers.push_back(rig.last_wire);
  }
  REQUIRE(rig.resolver->counters().fast_path == 4);
  REQUIRE(rig.resolver->counters().answered_locally == 4);

  Reader reader;
  auto tcp = ConnectTcp(rig, reader);
  std::vector<uint8_t> framed;
  for (const auto& q : queries) Frame(q, &framed);
  tcp->Write(framed);
  std::vector<std::vector<uint8_t>> tcp_answers;
  REQUIRE(rig.loop.RunUntil([&] {
    tcp_answers.clear();
    size_t off = 0;
    while (reader.bytes.size() - off >= 2) {
      const size_t len = (size_t{reader.bytes[off]} << 8) | reader.bytes[off + 1];
      if (reader.bytes.size() - off - 2 < len) break;
      tcp_answers.emplace_back(reader.bytes.begin() + off + 2, reader.bytes.begin() + off + 2 + len);
      off += 2 + len;
    }
    return tcp_answers.size() == 4;
  }, absl::Seconds(10)));
  // Local answers over TCP are synchronous, so they come back in order.
  REQUIRE(tcp_answers == udp_answers);
  REQUIRE(rig.resolver->counters().fast_path == 4);

  // A burst: 40 fast ones, then two questions (FORMERR, local), a forwarded name, a loop.
  Message two;
  REQUIRE(ParseMessage(Query(60, "vault.example.internal", kTypeA), &two) == ParseError::kOk);
  two.questions.push_back(two.questions[0]);
  std::vector<uint8_t> two_wire;
  REQUIRE(BuildMessage(two, 512, &two_wire));
  const size_t before = rig.replies.size();
  for (uint16_t id = 100; id < 140; ++id) {
    rig.client->Send(rig.resolver->local_address(), Query(id, "x.example.internal", kTypeA, id % 2 == 0));
  }
  rig.client->Send(rig.resolver->local_address(), two_wire);
  rig.client->Send(rig.resolver->local_address(), Query(61, "www.example.com", kTypeA));
  rig.client->Send(rig.resolver->local_address(),
                   std::vector<uint8_t>{0, 62, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1});
  REQUIRE(rig.loop.RunUntil([&] { return rig.replies.size() == before + 43; }, absl::Seconds(10)));
  std::vector<int> rcode_by_id(141 + 62, -1);
  for (size_t i = before; i < rig.replies.size(); ++i) {
    Message m;
    REQUIRE(ParseMessage(rig.replies[i], &m) == ParseError::kOk);
    REQUIRE(m.header.qr);
    rcode_by_id.at(m.header.id) = m.header.rcode;
  }
  for (uint16_t id = 100; id < 140; ++id) REQUIRE(rcode_by_id[id] == kRcodeNxDomain);
  REQUIRE(rcode_by_id[60] == kRcodeFormErr);
  REQUIRE(rcode_by_id[61] == kRcodeNoError);
  REQUIRE(rcode_by_id[62] == kRcodeFormErr);
  REQUIRE(rig.resolver->counters().fast_path == 44);
  REQUIRE(rig.upstream.asked == std::vector<std::string>{"www.example.com"});
}
