// The resolver on loopback, against a fake upstream: private names answered locally and never
// forwarded (I2), forwarding, the cache and its TTLs, truncation and TCP, malformed queries.
#include "dns/resolver.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "resolver_rig.h"

using namespace p2proxy;
using namespace p2proxy::dns;
using namespace p2proxy::dns::testing;

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
