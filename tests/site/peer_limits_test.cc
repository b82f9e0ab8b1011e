// Tests for PeerLimits (per-peer caps, the HTTP/2 window budget) and RecentSet.
#include "site/peer_limits.h"

#include <catch2/catch.hpp>

using namespace p2proxy::site;
using Kind = PeerLimits::Kind;

TEST_CASE("PeerLimits: a peer at its cap is refused, another peer is not, and a release makes room") {
  SiteLimits limits;
  limits.max_tcp_connections_per_peer = 3;
  limits.max_udp_sessions_per_peer = 1;
  PeerLimits pl(limits);
  for (int i = 0; i < 3; ++i) REQUIRE(pl.TryAcquire("alice", Kind::kTcp).ok);
  PeerLimits::Admission a = pl.TryAcquire("alice", Kind::kTcp);
  CHECK_FALSE(a.ok);
  CHECK(a.first_refusal);  // the first of a streak: audit it
  a = pl.TryAcquire("alice", Kind::kTcp);
  CHECK_FALSE(a.ok);
  CHECK_FALSE(a.first_refusal);  // the rest are only counted
  CHECK(pl.refused(Kind::kTcp) == 2);
  // Bob is untouched by Alice's streak, and Alice's UDP is counted apart from her TCP.
  CHECK(pl.TryAcquire("bob", Kind::kTcp).ok);
  CHECK(pl.TryAcquire("alice", Kind::kUdp).ok);
  CHECK_FALSE(pl.TryAcquire("alice", Kind::kUdp).ok);
  // A release makes room, and the next refusal starts a new streak.
  pl.Release("alice", Kind::kTcp);
  CHECK(pl.InUse("alice", Kind::kTcp) == 2);
  CHECK(pl.TryAcquire("alice", Kind::kTcp).ok);
  a = pl.TryAcquire("alice", Kind::kTcp);
  CHECK_FALSE(a.ok);
  CHECK(a.first_refusal);
}

TEST_CASE("PeerLimits: entries go when a peer holds nothing, and a stray release never underflows") {
  SiteLimits limits;
  PeerLimits pl(limits);
  REQUIRE(pl.TryAcquire("alice", Kind::kTcp).ok);
  REQUIRE(pl.TryAcquire("alice", Kind::kHttp2Stream).ok);
  CHECK(pl.num_peers() == 1);
  pl.Release("alice", Kind::kTcp);
  CHECK(pl.num_peers() == 1);
  pl.Release("alice", Kind::kHttp2Stream);
  CHECK(pl.num_peers() == 0);
  pl.Release("alice", Kind::kHttp2Stream);  // no entry: ignored
  pl.Release("nobody", Kind::kUdp);
  CHECK(pl.num_peers() == 0);
  REQUIRE(pl.TryAcquire("alice", Kind::kUdp).ok);
  pl.Release("alice", Kind::kTcp);  // held 0 of this kind: ignored
  CHECK(pl.InUse("alice", Kind::kUdp) == 1);
  CHECK(pl.InUse("alice", Kind::kTcp) == 0);
}

TEST_CASE("PeerLimits: the HTTP/2 window budget is shared and given back") {
  SiteLimits limits;
  limits.http2_window_budget_bytes = 3 << 20;
  PeerLimits pl(limits);
  CHECK(pl.TryReserveWindow(1 << 20));
  CHECK(pl.TryReserveWindow(2 << 20));
  CHECK_FALSE(pl.TryReserveWindow(1));
  pl.ReleaseWindow(1 << 20);
  CHECK(pl.window_in_use() == (2u << 20));
  CHECK(pl.TryReserveWindow(1 << 20));
  pl.ReleaseWindow(64 << 20);  // more than held: clamps at zero
  CHECK(pl.window_in_use() == 0);
}

TEST_CASE("PeerH2Admission: streams count against the peer's cap across connections") {
  SiteLimits limits;
  limits.max_http2_streams_per_peer = 2;
  PeerLimits pl(limits);
  int refusals_audited = 0;
  PeerH2Admission conn1(pl, "alice", [&] { ++refusals_audited; });
  PeerH2Admission conn2(pl, "alice", [&] { ++refusals_audited; });
  PeerH2Admission bob(pl, "bob", [&] { ++refusals_audited; });
  CHECK(conn1.TryOpenStream());
  CHECK(conn2.TryOpenStream());
  CHECK_FALSE(conn1.TryOpenStream());  // the cap is the peer's, not the connection's
  CHECK_FALSE(conn2.TryOpenStream());
  CHECK(refusals_audited == 1);
  CHECK(bob.TryOpenStream());
  conn1.CloseStream();
  CHECK(conn2.TryOpenStream());
}

TEST_CASE("RecentSet: bounded, forgets the oldest first, so a flood cannot silence it for good") {
  RecentSet<uint64_t> set(3);
  CHECK(set.Insert(1));
  CHECK(set.Insert(2));
  CHECK_FALSE(set.Insert(1));  // remembered
  CHECK(set.Insert(3));
  CHECK(set.Insert(4));        // evicts 1
  CHECK(set.size() == 3);
  CHECK(set.evicted() == 1);
  CHECK_FALSE(set.Contains(1));
  CHECK(set.Insert(1));        // new again: its next refusal is audited again
  for (uint64_t k = 100; k < 10000; ++k) set.Insert(k);
  CHECK(set.size() == 3);
}
