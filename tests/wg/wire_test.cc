// WireGuard message framing, the replay window and the allowed-IPs trie.
#include <catch2/catch.hpp>

#include "base/ip_prefix.h"
#include "wg/allowed_ips.h"
#include "wg/messages.h"
#include "wg/replay.h"

using namespace p2proxy;
using namespace p2proxy::wg;

TEST_CASE("messages are classified by type and exact length") {
  std::vector<uint8_t> m(kInitiationSize, 0);
  m[0] = 1;
  REQUIRE(Classify(m) == MessageType::kInitiation);
  m.push_back(0);
  REQUIRE(Classify(m) == MessageType::kInvalid);  // one byte too long
  m.resize(kResponseSize);
  m[0] = 2;
  REQUIRE(Classify(m) == MessageType::kResponse);
  m.resize(kCookieReplySize);
  m[0] = 3;
  REQUIRE(Classify(m) == MessageType::kCookieReply);
  m.resize(kTransportMinSize - 1);
  m[0] = 4;
  REQUIRE(Classify(m) == MessageType::kInvalid);
  m.resize(kTransportMinSize);
  REQUIRE(Classify(m) == MessageType::kTransport);
  m[1] = 1;  // reserved bytes must be zero: the type is a 32-bit little-endian field
  REQUIRE(Classify(m) == MessageType::kInvalid);
  REQUIRE(Classify({}) == MessageType::kInvalid);
  const uint8_t three[] = {4, 0, 0};
  REQUIRE(Classify(three) == MessageType::kInvalid);
}

TEST_CASE("initiation and response round-trip through their wire form") {
  Initiation in;
  in.sender = 0x11223344;
  for (size_t i = 0; i < 32; ++i) in.ephemeral[i] = static_cast<uint8_t>(i);
  in.encrypted_static.fill(0xaa);
  in.encrypted_timestamp.fill(0xbb);
  in.mac1.fill(0xcc);
  in.mac2.fill(0xdd);
  uint8_t buf[kInitiationSize];
  REQUIRE(SerializeInitiation(in, buf) == kInitiationSize);
  REQUIRE(buf[0] == 1);
  REQUIRE(buf[4] == 0x44);  // little endian
  REQUIRE(buf[kInitiationMac1Offset] == 0xcc);
  Initiation back;
  REQUIRE(ParseInitiation(buf, &back));
  REQUIRE(back.sender == in.sender);
  REQUIRE(back.ephemeral == in.ephemeral);
  REQUIRE(back.mac2 == in.mac2);

  Response r;
  r.sender = 7;
  r.receiver = 9;
  r.mac1.fill(0x5a);
  uint8_t rbuf[kResponseSize];
  REQUIRE(SerializeResponse(r, rbuf) == kResponseSize);
  REQUIRE(rbuf[kResponseMac1Offset] == 0x5a);
  Response rback;
  REQUIRE(ParseResponse(rbuf, &rback));
  REQUIRE(rback.receiver == 9);
  REQUIRE_FALSE(ParseInitiation(rbuf, &back));

  TransportHeader h{0xdeadbeef, 0x0102030405060708ull};
  uint8_t tbuf[kTransportMinSize] = {};
  REQUIRE(SerializeTransportHeader(h, tbuf) == kTransportHeaderSize);
  TransportHeader hback;
  REQUIRE(ParseTransportHeader(tbuf, &hback));
  REQUIRE(hback.counter == h.counter);
  REQUIRE(tbuf[8] == 0x08);
}

TEST_CASE("replay window: in order, duplicates, out of order within the window, too old") {
  ReplayWindow w;
  using V = ReplayWindow::Verdict;
  REQUIRE(w.Commit(0) == V::kOk);
  REQUIRE(w.Commit(0) == V::kDuplicate);
  REQUIRE(w.Commit(1) == V::kOk);
  REQUIRE(w.Commit(5) == V::kOk);
  REQUIRE(w.Commit(3) == V::kOk);  // late but inside the window
  REQUIRE(w.Commit(3) == V::kDuplicate);
  REQUIRE(w.Commit(4) == V::kOk);
  // Check never records.
  REQUIRE(w.Check(2) == V::kOk);
  REQUIRE(w.Check(2) == V::kOk);
  // Jump ahead by more than 2048: the last 2048 are still acceptable, once each.
  REQUIRE(w.Commit(10000) == V::kOk);
  REQUIRE(w.Commit(10000 - 2048) == V::kOk);
  REQUIRE(w.Commit(10000 - 2048) == V::kDuplicate);
  REQUIRE(w.Commit(10000 - ReplayWindow::kWindowSize) == V::kOk);
  REQUIRE(w.Commit(10000 - ReplayWindow::kWindowSize - 1) == V::kTooOld);
  REQUIRE(w.Commit(5) == V::kTooOld);
  // Bits of a block reused after the window slid are clear again.
  REQUIRE(w.Commit(10000 + 64 * ReplayWindow::kBlocks + 1) == V::kOk);
  REQUIRE(w.Commit(10000 + 64 * ReplayWindow::kBlocks) == V::kOk);
  REQUIRE(w.Commit(~uint64_t{0}) == V::kExhausted);
}

TEST_CASE("replay window accepts every counter of a reordered burst exactly once") {
  ReplayWindow w;
  // 4096 counters delivered in a scrambled order, each twice.
  std::vector<uint64_t> order;
  for (uint64_t i = 0; i < 4096; ++i) order.push_back((i * 2654435761u) % 4096);
  int accepted = 0;
  for (uint64_t c : order) accepted += w.Commit(c + 100000) == ReplayWindow::Verdict::kOk;
  for (uint64_t c : order) accepted += w.Commit(c + 100000) == ReplayWindow::Verdict::kOk;
  REQUIRE(accepted == 4096);
}

TEST_CASE("allowed IPs: longest prefix wins, insert moves a prefix, removal") {
  AllowedIps t;
  auto* a = reinterpret_cast<Peer*>(0x1000);
  auto* b = reinterpret_cast<Peer*>(0x2000);
  t.Insert(*base::IpPrefix::Parse("100.96.0.0/17"), a);
  t.Insert(*base::IpPrefix::Parse("100.96.128.0/18"), b);
  t.Insert(*base::IpPrefix::Parse("100.96.128.20/32"), a);
  t.Insert(*base::IpPrefix::Parse("fd00::/8"), b);
  REQUIRE(t.Lookup(*base::IpAddress::Parse("100.96.0.7")) == a);
  REQUIRE(t.Lookup(*base::IpAddress::Parse("100.96.130.1")) == b);
  REQUIRE(t.Lookup(*base::IpAddress::Parse("100.96.128.20")) == a);
  REQUIRE(t.Lookup(*base::IpAddress::Parse("100.97.0.1")) == nullptr);
  REQUIRE(t.Lookup(*base::IpAddress::Parse("fd12::1")) == b);
  // A prefix has one owner: inserting it for another peer moves it.
  t.Insert(*base::IpPrefix::Parse("100.96.128.0/18"), a);
  REQUIRE(t.Lookup(*base::IpAddress::Parse("100.96.130.1")) == a);
  auto of_a = t.PrefixesOf(a);
  REQUIRE(of_a.size() == 3);
  REQUIRE(t.PrefixesOf(b) == std::vector<base::IpPrefix>{*base::IpPrefix::Parse("fd00::/8")});
  t.RemovePeer(a);
  REQUIRE(t.Lookup(*base::IpAddress::Parse("100.96.0.7")) == nullptr);
  REQUIRE(t.Lookup(*base::IpAddress::Parse("fd12::1")) == b);
  t.Insert(*base::IpPrefix::Parse("0.0.0.0/0"), a);
  REQUIRE(t.Lookup(*base::IpAddress::Parse("8.8.8.8")) == a);
}
