#!/usr/bin/env bash
# wg_throughput.sh: single-stream TCP throughput (iperf3, 10 s) through a WireGuard tunnel
# between two network namespaces, for a p2proxy-client pair and a wireguard-go pair, in the same
# run, on this machine. Prints both and the ratio. A benchmark, not a test: it asserts nothing.
#   sudo bench/wg_throughput.sh [SECONDS]     (builds nothing: run scripts/test.sh or demo first)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/e2e/lib.sh"
require_root_or_skip wireguard-go wg iperf3
secs=${1:-10}
CLIENT=${P2P_CLIENT_BIN:-$root/build/default/daemons/p2proxy-client}
[ -x "$CLIENT" ] || fail "no p2proxy-client at $CLIENT (build with: cmake --preset default && cmake --build --preset default)"

A="bwA-$E2E_ID"; B="bwB-$E2E_ID"
netns_add "$A"
netns_add "$B"
veth_link "$A" 198.18.0.1/24 "$B" 198.18.0.2/24
key_a=$(wg genkey); pub_a=$(echo "$key_a" | wg pubkey)
key_b=$(wg genkey); pub_b=$(echo "$key_b" | wg pubkey)

p2p_side() {  # NS NAME KEY ADDR PEERPUB PEERADDR ENDPOINT
  local conf="$E2E_TMP/$2.conf"
  printf '[Interface]\nPrivateKey = %s\nAddress = %s/24\nListenPort = 51820\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n%s\n' \
    "$3" "$4" "$5" "$6" "${7:+Endpoint = $7}" > "$conf"
  E2E_FILES+=("/var/run/wireguard/$2.sock")
  bg "$1" "$2" "$CLIENT" --wg-config="$conf" --log-level=warn
  wait_until 10 "$2 UAPI socket" test -S "/var/run/wireguard/$2.sock"
}

wgo_side() {  # NS NAME KEY ADDR PEERPUB PEERADDR ENDPOINT
  E2E_FILES+=("/var/run/wireguard/$2.sock")
  bg "$1" "$2" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$2"
  wait_until 10 "$2 UAPI socket" test -S "/var/run/wireguard/$2.sock"
  echo "$3" > "$E2E_TMP/$2.key"
  local args=(private-key "$E2E_TMP/$2.key" listen-port 51820 peer "$5" allowed-ips "$6/32")
  [ -n "${7:-}" ] && args+=(endpoint "$7")
  ip netns exec "$1" wg set "$2" "${args[@]}"
  ip -n "$1" addr add "$4/24" dev "$2"
  ip -n "$1" link set "$2" up
}

measure() {  # LABEL -> prints Mbit/s
  local port=$((5300 + RANDOM % 100))
  bg "$B" "iperf-$1" iperf3 -s -1 -p "$port"
  wait_until 5 "iperf3 server" ip netns exec "$B" sh -c "ss -ltn | grep -q :$port"
  ip netns exec "$A" ping -c 1 -W 2 100.96.0.3 >/dev/null || true
  wait_until 15 "tunnel up ($1)" ip netns exec "$A" ping -c 1 -W 1 100.96.0.3
  ip netns exec "$A" iperf3 -c 100.96.0.3 -p "$port" -t "$secs" -J > "$E2E_TMP/$1.json"
  grep -o '"bits_per_second":[[:space:]]*[0-9.e+]*' "$E2E_TMP/$1.json" | tail -n1 | awk -F: '{printf "%.1f", $2/1e6}'
}

stop_all() {
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${E2E_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  E2E_PIDS=()
}

p2p_side "$A" "bwp${E2E_ID}a" "$key_a" 100.96.0.2 "$pub_b" 100.96.0.3 198.18.0.2:51820
p2p_side "$B" "bwp${E2E_ID}b" "$key_b" 100.96.0.3 "$pub_a" 100.96.0.2 ""
p2p=$(measure p2proxy)
stop_all

wgo_side "$A" "bwg${E2E_ID}a" "$key_a" 100.96.0.2 "$pub_b" 100.96.0.3 198.18.0.2:51820
wgo_side "$B" "bwg${E2E_ID}b" "$key_b" 100.96.0.3 "$pub_a" 100.96.0.2 ""
wgo=$(measure wireguard-go)
stop_all

printf 'single TCP stream through the tunnel, iperf3 %ss, %s cores:\n' "$secs" "$(nproc)"
printf '  p2proxy-client pair : %8s Mbit/s\n' "$p2p"
printf '  wireguard-go pair   : %8s Mbit/s\n' "$wgo"
awk -v a="$p2p" -v b="$wgo" 'BEGIN{printf "  ratio p2proxy/wireguard-go: %.2f\n", a/b}'
