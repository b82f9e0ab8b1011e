#!/usr/bin/env bash
# control_fanout.sh: the control plane at fleet size. A real p2proxy-server on one namespace's
# loopback; for 100 and then 1,000 nodes, control_fanout (one process, one NodeAgent and one
# mTLS control channel per simulated site) makes the tokens through the admin socket, enrolls
# and connects every node, then times one `admin resource add` until every node has applied and
# acked the new snapshot. Prints the times, the server's RSS and CPU seconds for each size, and
# the growth from the first size to the last. A benchmark: it asserts nothing.
#   sudo bench/control_fanout.sh [NODES...]     (default: 100 1000; builds nothing: run
#                                                scripts/test.sh or build the ci/default preset)
# Each size gets a fresh server (its own state dir and database), so the figures of one size
# do not carry the other's nodes. The server's state dir is on disk (SQLite commits are synced,
# as in production); the nodes' state dirs are on tmpfs, because 1,000 nodes in one process
# would otherwise queue 1,000 fsyncs of snapshot.pb one after another on one thread, which
# 1,000 real machines do in parallel on their own disks.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/e2e/lib.sh"
require_root_or_skip ip
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 1000)
SERVER=${P2P_SERVER_BIN:-$root/build/default/daemons/p2proxy-server}
FANOUT=${P2P_FANOUT_BIN:-$root/build/default/bench/control_fanout}
build_hint="build with: cmake --preset default && cmake --build --preset default"
[ -x "$SERVER" ] || fail "no p2proxy-server at $SERVER ($build_hint)"
[ -x "$FANOUT" ] || fail "no control_fanout at $FANOUT ($build_hint)"

# 1,000 channels on each side, plus the server's database and the nodes' state files.
ulimit -n 8192

NODES_TMP=$(mktemp -d "/dev/shm/p2p-fanout-${E2E_ID}-XXXX")
fanout_cleanup() {
  local rc=$?
  set +e
  rm -rf "$NODES_TMP"
  (exit $rc)
  e2e_cleanup
}
trap fanout_cleanup EXIT

N="p2fo-$E2E_ID"
netns_add "$N"
PORT=18443

# run_size NODES: a fresh server, then control_fanout against it; its result line goes to
# $E2E_TMP/result-NODES.txt.
run_size() {
  local n=$1 dir="$E2E_TMP/server-$1" sock="$E2E_TMP/admin-$1.sock"
  "$SERVER" init --state_dir="$dir" --public_address="127.0.0.1:$PORT" > "$E2E_TMP/init-$n.log" 2>&1 \
    || fail "init: $(cat "$E2E_TMP/init-$n.log")"
  bg "$N" "server-$n" "$SERVER" --state_dir="$dir" --listen="127.0.0.1:$PORT" --admin_socket="$sock" --log_level=info
  local pid=$BG_PID
  wait_until 10 "server up" grep -q 'event=server.up' "$E2E_TMP/server-$n.log"
  [ "$(cat "/proc/$pid/comm")" = "p2proxy-server" ] || fail "pid $pid is not the server"
  log "$n nodes: server pid $pid up"
  mkdir -p "$NODES_TMP/$n"
  ip netns exec "$N" "$FANOUT" --server "127.0.0.1:$PORT" --admin_socket "$sock" --server_pid "$pid" \
    --nodes "$n" --state_dir "$NODES_TMP/$n" > "$E2E_TMP/result-$n.txt" \
    || fail "control_fanout with $n nodes failed (server log: $E2E_TMP/server-$n.log)"
  grep -q '^result ' "$E2E_TMP/result-$n.txt" || fail "control_fanout printed no result"
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -rf "${NODES_TMP:?}/$n"
}
for n in "${sizes[@]}"; do run_size "$n"; done

# field NODES KEY: one figure from a result line.
field() { tr ' ' '\n' < "$E2E_TMP/result-$1.txt" | sed -n "s/^$2=//p"; }

first=${sizes[0]}
last=${sizes[${#sizes[@]}-1]}
echo "control_fanout: simulated sites in one process, one mTLS control channel each, against"
echo "  p2proxy-server on loopback ($(nproc) CPUs shared by both); the write is"
echo "  'admin resource add' (every admin write moves the global snapshot version, so every"
echo "  connected node is sent and acks a new snapshot)"
{
  printf '%s' "nodes"
  for n in "${sizes[@]}"; do printf '\t%s' "$n"; done
  [ "$first" = "$last" ] || printf '\t%s' "$last/$first"
  printf '\n'
  row() {  # LABEL KEY UNIT SCALE: a row of KEY for every size, and the last over the first
    local label=$1 key=$2 unit=$3 a b v
    printf '%s' "$label"
    for n in "${sizes[@]}"; do v=$(field "$n" "$key"); printf '\t%s %s' "$v" "$unit"; done
    if [ "$first" != "$last" ]; then
      a=$(field "$first" "$key"); b=$(field "$last" "$key")
      awk -v a="$a" -v b="$b" 'BEGIN{ if (a > 0) printf "\tx%.1f", b/a; else printf "\t-" }'
    fi
    printf '\n'
  }
  row "tokens created (admin socket)" tokens_s s
  row "enrolled" enroll_s s
  row "connected, current snapshot acked" connect_s s
  row "fan-out: admin command answered" admin_ms ms
  row "fan-out: p50 node applied+acked" fanout_p50_ms ms
  row "fan-out: p99 node applied+acked" fanout_p99_ms ms
  row "fan-out: ALL nodes applied+acked" fanout_ms ms
  row "fan-out: server shows every ack" acked_seen_ms ms
  row "server RSS idle" rss_idle_mib MiB
  row "server RSS, all enrolled" rss_enrolled_mib MiB
  row "server RSS, all connected" rss_connected_mib MiB
  row "server RSS after the fan-out" rss_after_mib MiB
  row "server CPU: token creation" cpu_tokens_s s
  row "server CPU: enrollment" cpu_enroll_s s
  row "server CPU: connect" cpu_connect_s s
  row "server CPU: the fan-out (stat)" cpu_fanout_s s
  row "server CPU: the fan-out (schedstat)" cpu_fanout_ns_s s
  row "tool CPU: the fan-out (all nodes)" tool_cpu_fanout_s s
  row "dials refused or failed (retried)" dial_failures ""
  row "sessions lost after they were up" reconnects ""
} | column -t -s $'\t'
for n in "${sizes[@]}"; do
  awk -v n="$n" -v idle="$(field "$n" rss_idle_mib)" -v enr="$(field "$n" rss_enrolled_mib)" \
    -v conn="$(field "$n" rss_connected_mib)" -v cpu="$(field "$n" cpu_fanout_ns_s)" -v ms="$(field "$n" fanout_ms)" \
    'BEGIN{ printf "  %s nodes: server RSS %.1f KiB per node (%.1f KiB of it per open session); %.0f us of server CPU per node per change; all reached in %.0f ms (goal: < 2000 ms)\n", n, (conn-idle)*1024/n, (conn-enr)*1024/n, cpu*1e6/n, ms }'
done
