#!/usr/bin/env bash
# nat_paths.sh: single-stream TCP throughput (iperf3 -R, from the site's LAN to the client)
# through each path p2proxy takes between a client and a site behind NATs, in one run, on this
# machine: direct (hole punched), relayed over UDP (the client's NAT symmetric), relayed over TLS
# (UDP dropped at the client: WireGuard over TLS to the server's 443), and a wireguard-go pair
# on a plain link as the peer; plus the server's CPU per gigabyte it relayed. Runs the
# `paths_bench` scenario of tests/e2e/control_test.sh (namespaces and nftables NATs of its own,
# removed by its traps). A benchmark: it reports, it asserts nothing.
#   sudo bench/nat_paths.sh [SECONDS]   (default 10; the binaries in build/default, or
#                                        P2P_SERVER_BIN, P2P_SITE_BIN, P2P_CLIENT_BIN, P2P_STORM_BIN)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export P2P_BENCH_SECS=${1:-10}
export P2P_SERVER_BIN=${P2P_SERVER_BIN:-$root/build/default/daemons/p2proxy-server}
export P2P_SITE_BIN=${P2P_SITE_BIN:-$root/build/default/daemons/p2proxy-site}
export P2P_CLIENT_BIN=${P2P_CLIENT_BIN:-$root/build/default/daemons/p2proxy-client}
export P2P_STORM_BIN=${P2P_STORM_BIN:-$root/build/default/tests/e2e/tools/conn_storm}
for b in "$P2P_SERVER_BIN" "$P2P_SITE_BIN" "$P2P_CLIENT_BIN" "$P2P_STORM_BIN"; do
  [ -x "$b" ] || { echo "nat_paths.sh: missing $b (cmake --preset default && cmake --build --preset default)" >&2; exit 1; }
done
out=$(mktemp /tmp/p2p-bench-paths-XXXX.log)
trap 'rm -f "$out"' EXIT
rc=0
bash "$root/tests/e2e/control_test.sh" paths_bench > "$out" 2>&1 || rc=$?
if [ $rc -eq 77 ]; then
  echo "nat_paths.sh: skipped: $(grep -m1 '^SKIP' "$out" || tail -n1 "$out")" >&2
  exit 77
fi
if [ $rc -ne 0 ]; then
  echo "nat_paths.sh: the scenario failed (exit $rc): $(grep -m1 'FAIL: ' "$out" || true)" >&2
  tail -n 30 "$out" >&2
  exit 1
fi
val() { grep "^BENCH $1 " "$out" | grep -o "$2=[0-9.]*" | cut -d= -f2; }
wgo=$(val wireguard-go mbit)
printf 'one TCP stream (iperf3 -R, %ss), client and site behind nftables NATs, %s cores:\n' "$P2P_BENCH_SECS" "$(nproc)"
for mode in direct relayed tls; do
  mbit=$(val "$mode" mbit); ticks=$(val "$mode" server_cpu_ticks); bytes=$(val "$mode" relayed_bytes); hz=$(val "$mode" clk_tck)
  label=$mode; [ "$mode" = relayed ] && label="relayed (UDP)"; [ "$mode" = tls ] && label="relayed (TLS 443)"
  cpu=$(awk -v t="$ticks" -v hz="$hz" -v b="$bytes" 'BEGIN { if (b > 1e6) printf "%.2f s CPU per GB relayed (%.2f GB)", t / hz / (b / 1e9), b / 1e9; else printf "nothing relayed" }')
  printf '  %-18s %9s Mbit/s  %.2fx wireguard-go  server: %s\n' "$label" "$mbit" "$(awk -v a="$mbit" -v b="$wgo" 'BEGIN{print a/b}')" "$cpu"
done
printf '  %-18s %9s Mbit/s  (wireguard-go pair, plain link, the peer)\n' "wireguard-go" "$wgo"
