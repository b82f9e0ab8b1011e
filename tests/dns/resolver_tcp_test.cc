// The resolver's TCP side under hostile clients (invariant I5): a client that never reads its
// answers, one that trickles a query byte by byte, one source that opens many connections, a
// pipeline longer than max_tcp_pipeline, and queries dropped without an answer. Idle timeouts
// run on the loop's manual time.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dns/resolver.h"
#include "resolver_rig.h"

using namespace p2proxy;
using namespace p2proxy::dns;
using namespace p2proxy::dns::testing;

namespace {

// Ids returns the ids of the messages in |frames|, sorted.
std::vector<uint16_t> Ids(const std::vector<std::vector<uint8_t>>& frames) {
  std::vector<uint16_t> ids;
  for (const auto& f : frames) {
    Message m;
    REQUIRE(ParseMessage(f, &m) == ParseError::kOk);
    ids.push_back(m.header.id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

TEST_CASE("resolver tcp: a client that pipelines queries and never reads holds the resolver's memory flat") {
  // A long idle timeout: the test's client is slow on purpose, and this test is not about idleness.
  Rig rig(Rig::Setup{false, false, [](Resolver::Options& o) { o.tcp_idle_timeout = absl::Seconds(600); }});
  const size_t bound = 64 * 1024;  // the default max_tcp_write_queue
  // Put big.example.com (100 addresses, an answer of about 1.6 KB) in the cache, so that every
  // TCP query for it is answered at once: a 35-byte query then asks for 45 times its size.
  Message m;
  REQUIRE(rig.Ask(Query(1, "big.example.com", kTypeA), &m));
  // 2000 answers are 3.2 MB; the client offers a window of a few KiB, so the kernel buffers
  // between the two sockets hold far less (the resolver's send buffer grows with the window).
  constexpr uint16_t kQueries = 2000;
  std::vector<uint8_t> framed;
  for (uint16_t id = 1; id <= kQueries; ++id) Frame(Query(id, "big.example.com", kTypeA), &framed);

  RawClient client(rig.loop, "127.0.0.1", rig.resolver->local_address(), /*read=*/false,
                   /*rcvbuf=*/4096);
  client.Send(framed);
  TcpBacklog peak;
  auto sample = [&] {
    const TcpBacklog b = rig.resolver->tcp_backlog();
    peak.output_len = std::max(peak.output_len, b.output_len);
    peak.input_len = std::max(peak.input_len, b.input_len);
  };
  // The resolver stops reading once the answers it has queued reach the bound (a resolver
  // that did not would queue megabytes: stop waiting at 8 times the bound).
  rig.loop.RunUntil([&] {
    sample();
    return rig.resolver->counters().tcp_write_paused >= 1 || peak.output_len > 8 * bound;
  }, absl::Seconds(30));
  REQUIRE(peak.output_len < bound + 2 + 65535);
  REQUIRE(rig.resolver->counters().tcp_write_paused >= 1);
  REQUIRE(rig.resolver->counters().tcp_queries < kQueries);
  const uint64_t handled_when_paused = rig.resolver->counters().tcp_queries;

  // The client reads now: every query is answered, and the resolver's queue never passed the
  // bound by more than one answer on the way.
  client.StartReading();
  size_t num_answers = 0, scanned = 0;  // frames counted as they arrive, not re-split each turn
  REQUIRE(rig.loop.RunUntil([&] {
    sample();
    while (client.bytes.size() - scanned >= 2) {
      const size_t len = 2 + ((size_t{client.bytes[scanned]} << 8) | client.bytes[scanned + 1]);
      if (client.bytes.size() - scanned < len) break;
      scanned += len;
      ++num_answers;
    }
    return num_answers == kQueries;
  }, absl::Seconds(60)));
  const std::vector<std::vector<uint8_t>> answers = Unframe(client.bytes);
  size_t largest = 0;
  for (const auto& a : answers) largest = std::max(largest, a.size() + 2);
  INFO("peak output " << peak.output_len << ", peak input " << peak.input_len << ", largest answer "
                      << largest << ", queries handled when reading paused " << handled_when_paused);
  REQUIRE(largest > 1500);
  REQUIRE(peak.output_len < bound + largest);
  // Input: one partial query, plus the rest of the read that filled the queue (64 KiB reads).
  REQUIRE(peak.input_len <= 2 + 65535 + 64 * 1024);
  std::vector<uint16_t> want(kQueries);
  for (uint16_t i = 0; i < kQueries; ++i) want[i] = i + 1;
  REQUIRE(Ids(answers) == want);
  REQUIRE(rig.resolver->counters().tcp_queries == kQueries);
  REQUIRE(rig.resolver->tcp_backlog().output_len == 0);
}

TEST_CASE("resolver tcp: a client that trickles a query byte by byte is closed after the idle timeout") {
  Rig rig(Rig::Setup{false, /*manual_time=*/true, [](Resolver::Options& o) {
                       o.tcp_idle_timeout = absl::Seconds(10);
                     }});
  RawClient client(rig.loop, "127.0.0.1", rig.resolver->local_address());
  REQUIRE(rig.loop.RunUntil([&] { return rig.resolver->counters().tcp_connections == 1; }, absl::Seconds(10)));
  std::vector<uint8_t> framed;
  Frame(Query(7, "vault.example.internal", kTypeA), &framed);
  // One byte every 3 s: each reaches the resolver, none completes the query.
  for (size_t i = 0; i < 4; ++i) {
    REQUIRE_FALSE(client.ended);
    REQUIRE(rig.resolver->counters().tcp_idle_closed == 0);
    client.Send({framed[i]});
    REQUIRE(rig.loop.RunUntil([&] { return rig.resolver->tcp_backlog().input_len == i + 1; },
                              absl::Seconds(10)));
    rig.loop.AdvanceTime(absl::Seconds(3));
  }
  // 12 s after the connection opened (10 s after its start, not after its last byte).
  REQUIRE(rig.resolver->counters().tcp_idle_closed == 1);
  REQUIRE(rig.loop.RunUntil([&] { return client.ended; }, absl::Seconds(10)));
  REQUIRE(client.bytes.empty());
  REQUIRE(rig.resolver->tcp_backlog().num_sessions == 0);
  REQUIRE(rig.resolver->counters().tcp_queries == 0);
}

TEST_CASE("resolver tcp: a client that sends complete queries stays open past the idle timeout") {
  Rig rig(Rig::Setup{false, /*manual_time=*/true, [](Resolver::Options& o) {
                       o.tcp_idle_timeout = absl::Seconds(10);
                     }});
  RawClient client(rig.loop, "127.0.0.1", rig.resolver->local_address());
  REQUIRE(rig.loop.RunUntil([&] { return rig.resolver->counters().tcp_connections == 1; }, absl::Seconds(10)));
  // One query every 6 s for a minute, each answered.
  for (uint16_t i = 0; i < 10; ++i) {
    std::vector<uint8_t> framed;
    Frame(Query(static_cast<uint16_t>(100 + i), "vault.example.internal", kTypeA), &framed);
    client.Send(framed);
    REQUIRE(rig.loop.RunUntil([&] { return Unframe(client.bytes).size() == i + 1u; }, absl::Seconds(10)));
    rig.loop.AdvanceTime(absl::Seconds(6));
  }
  REQUIRE(rig.resolver->counters().tcp_idle_closed == 0);
  REQUIRE(rig.resolver->tcp_backlog().num_sessions == 1);
  REQUIRE_FALSE(client.ended);
  // Then quiet: closed 10 s after the last query.
  rig.loop.AdvanceTime(absl::Seconds(3));
  REQUIRE(rig.resolver->counters().tcp_idle_closed == 0);
  rig.loop.AdvanceTime(absl::Seconds(1));
  REQUIRE(rig.resolver->counters().tcp_idle_closed == 1);
  REQUIRE(rig.loop.RunUntil([&] { return client.ended; }, absl::Seconds(10)));
  REQUIRE(Unframe(client.bytes).size() == 10);
}

TEST_CASE("resolver tcp: one source at its connection cap does not stop another source") {
  Rig rig(Rig::Setup{false, false, [](Resolver::Options& o) { o.max_tcp_connections_per_source = 2; }});
  const base::SocketAddress to = rig.resolver->local_address();
  std::vector<std::unique_ptr<RawClient>> first;
  for (int i = 0; i < 2; ++i) first.push_back(std::make_unique<RawClient>(rig.loop, "127.0.0.1", to));
  REQUIRE(rig.loop.RunUntil([&] { return rig.resolver->counters().tcp_connections == 2; }, absl::Seconds(10)));
  // A third from 127.0.0.1 is closed at once.
  RawClient over(rig.loop, "127.0.0.1", to);
  REQUIRE(rig.loop.RunUntil([&] { return over.ended; }, absl::Seconds(10)));
  REQUIRE(rig.resolver->counters().tcp_refused_per_source == 1);
  REQUIRE(rig.resolver->counters().tcp_refused == 0);
  // 127.0.0.2 is served.
  RawClient other(rig.loop, "127.0.0.2", to);
  std::vector<uint8_t> framed;
  Frame(Query(42, "vault.example.internal", kTypeA), &framed);
  other.Send(framed);
  REQUIRE(rig.loop.RunUntil([&] { return Unframe(other.bytes).size() == 1; }, absl::Seconds(10)));
  Message m;
  REQUIRE(ParseMessage(Unframe(other.bytes)[0], &m) == ParseError::kOk);
  REQUIRE(m.header.id == 42);
  REQUIRE(FirstA(m) == "100.96.128.20");
  REQUIRE(rig.resolver->counters().tcp_connections == 3);
  // The capped source still gets answers on the connections it has, and a slot it gives back
  // can be taken again.
  first[0]->Send(framed);
  REQUIRE(rig.loop.RunUntil([&] { return Unframe(first[0]->bytes).size() == 1; }, absl::Seconds(10)));
  first.pop_back();
  REQUIRE(rig.loop.RunUntil([&] { return rig.resolver->tcp_backlog().num_sessions == 2; }, absl::Seconds(10)));
  RawClient again(rig.loop, "127.0.0.1", to);
  REQUIRE(rig.loop.RunUntil([&] { return rig.resolver->counters().tcp_connections == 4; }, absl::Seconds(10)));
  REQUIRE(rig.resolver->counters().tcp_refused_per_source == 1);
}

TEST_CASE("resolver tcp: a pipeline longer than max_tcp_pipeline waits, then is answered whole") {
  // The upstream holds its answers at first; its timeout is far off, so none comes by itself.
  Rig rig(Rig::Setup{/*silent_upstream=*/true, false, [](Resolver::Options& o) {
                       o.max_tcp_pipeline = 4;
                       o.upstream_timeout = absl::Seconds(600);
                     }});
  Reader reader;
  auto tcp = ConnectTcp(rig, reader);
  std::vector<uint8_t> framed;
  constexpr uint16_t kQueries = 40;
  std::vector<std::string> names;
  for (uint16_t id = 1; id <= kQueries; ++id) {
    names.push_back(absl::StrCat("n", id, ".example.com"));
    Frame(Query(id, names.back().c_str(), kTypeA), &framed);
  }
  tcp->Write(framed);
  // Four go upstream; the rest wait, unread or in the session's buffer.
  REQUIRE(rig.loop.RunUntil([&] { return rig.upstream.asked.size() == 4; }, absl::Seconds(10)));
  REQUIRE(rig.resolver->counters().tcp_queries == 4);
  REQUIRE(rig.resolver->counters().forwarded == 4);
  // Each answer lets the next query in.
  rig.upstream.Release();
  std::vector<std::vector<uint8_t>> answers;
  REQUIRE(rig.loop.RunUntil([&] {
    answers = Unframe(reader.bytes);
    return answers.size() == kQueries;
  }, absl::Seconds(10)));
  std::vector<uint16_t> want(kQueries);
  for (uint16_t i = 0; i < kQueries; ++i) want[i] = i + 1;
  REQUIRE(Ids(answers) == want);
  REQUIRE(rig.resolver->counters().forwarded == kQueries);
  REQUIRE(rig.upstream.asked.size() == kQueries);
  REQUIRE(rig.resolver->tcp_backlog().input_len == 0);
}

// Queries the resolver drops without an answer (runts, responses) must still end: otherwise a
// few of them would fill the pipeline and hold the session unread, and counted as busy (never
// idle), forever.
TEST_CASE("resolver tcp: queries dropped without an answer give their pipeline slot back") {
  Rig rig(Rig::Setup{false, /*manual_time=*/true, [](Resolver::Options& o) {
                       o.max_tcp_pipeline = 4;
                       o.tcp_idle_timeout = absl::Seconds(10);
                     }});
  RawClient client(rig.loop, "127.0.0.1", rig.resolver->local_address());
  std::vector<uint8_t> framed;
  auto response = Query(5, "vault.example.internal", kTypeA);
  response[2] |= 0x80;  // QR: a response, never answered
  for (int i = 0; i < 10; ++i) {
    Frame({}, &framed);                   // an empty message
    Frame({0x12, 0x34, 0x01}, &framed);  // shorter than a header
    Frame(response, &framed);
  }
  Frame(Query(77, "vault.example.internal", kTypeA), &framed);
  client.Send(framed);
  REQUIRE(rig.loop.RunUntil([&] { return Unframe(client.bytes).size() == 1; }, absl::Seconds(10)));
  Message m;
  REQUIRE(ParseMessage(Unframe(client.bytes)[0], &m) == ParseError::kOk);
  REQUIRE(m.header.id == 77);
  REQUIRE(rig.resolver->counters().tcp_queries == 31);
  REQUIRE(rig.resolver->counters().dropped == 30);
  // Nothing is in flight, so the session is idle and closes on time.
  rig.loop.AdvanceTime(absl::Seconds(10));
  REQUIRE(rig.resolver->counters().tcp_idle_closed == 1);
  REQUIRE(rig.loop.RunUntil([&] { return client.ended; }, absl::Seconds(10)));
}
