#!/usr/bin/env bash
# site_throughput.sh: single-stream TCP throughput (iperf3) from a client namespace to a target
# behind the site, in the same run, three ways:
#   (a) p2proxy-client (WireGuard mode, kernel TCP in a TUN) -> p2proxy-site (lwIP) -> target
#   (b) wireguard-go                                         -> p2proxy-site (lwIP) -> target
#   (c) wireguard-go -> wireguard-go, kernel TCP at both ends (the site forwards as a router)
#   (d) p2proxy-client in userspace mode (no TUN, no root: lwIP in the client too) through a
#       local forward 127.0.0.1:5201 -> the resource: the path SOCKS5 and HTTP CONNECT
#       connections take once their handshake is done
# Prints each (upload and download) and the ratios a/c and b/c. A benchmark: it asserts nothing.
#   sudo bench/site_throughput.sh [SECONDS]   (uses the binaries in build/default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/e2e/lib.sh"
require_root_or_skip wireguard-go wg iperf3
secs=${1:-10}
CLIENT=${P2P_CLIENT_BIN:-$root/build/default/daemons/p2proxy-client}
SITE=${P2P_SITE_BIN:-$root/build/default/daemons/p2proxy-site}
for b in "$CLIENT" "$SITE"; do [ -x "$b" ] || fail "missing $b (cmake --preset default && cmake --build --preset default)"; done

C="bsC-$E2E_ID"; S="bsS-$E2E_ID"; L="bsL-$E2E_ID"
netns_add "$C"; netns_add "$S"; netns_add "$L"
veth_link "$C" 198.18.2.1/24 "$S" 198.18.2.2/24
veth_link "$S" 198.19.1.1/24 "$L" 198.19.1.2/24
ip -n "$L" route add default via 198.19.1.1
key_c=$(wg genkey); pub_c=$(echo "$key_c" | wg pubkey)
key_s=$(wg genkey); pub_s=$(echo "$key_s" | wg pubkey)
bg "$L" iperf3-server iperf3 -s -p 5201 -B 198.19.1.2
wait_until 5 "iperf3 server" ip netns exec "$L" sh -c "ss -ltn | grep -q :5201"

stop_tunnel() {
  for pid in "${TUNNEL_PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for pid in "${TUNNEL_PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  TUNNEL_PIDS=()
}

site_up() {
  cat > "$E2E_TMP/site.json" <<JSON
{"wireguard": {"private_key": "$key_s", "listen_port": 51820, "address": "100.96.0.10"},
 "peers": [{"public_key": "$pub_c", "allowed_ips": ["100.96.0.5/32"], "user": "tester"}],
 "resources": [{"name": "iperf", "address": "100.96.128.23", "port": 5201, "protocol": "tcp", "target": "198.19.1.2:5201", "access": {"users": ["tester"]}}]}
JSON
  bg "$S" "site-$1" "$SITE" --config="$E2E_TMP/site.json" --log-level=warn
  TUNNEL_PIDS+=("$BG_PID")
  wait_until 10 "site up" ip netns exec "$S" sh -c "ss -lun | grep -q :51820"
}

wgo_up() {  # NS NAME KEY ADDR PEERPUB ALLOWED ENDPOINT
  E2E_FILES+=("/var/run/wireguard/$2.sock")
  bg "$1" "$2" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$2"
  TUNNEL_PIDS+=("$BG_PID")
  wait_until 10 "$2 UAPI" test -S "/var/run/wireguard/$2.sock"
  echo "$3" > "$E2E_TMP/$2.key"
  local args=(private-key "$E2E_TMP/$2.key" listen-port 51820 peer "$5" allowed-ips "$6")
  [ -n "$7" ] && args+=(endpoint "$7")
  ip netns exec "$1" wg set "$2" "${args[@]}"
  ip -n "$1" addr add "$4" dev "$2"
  ip -n "$1" link set "$2" up
}

client_routes() {  # IFACE
  ip -n "$C" route add 100.96.128.0/18 dev "$1" 2>/dev/null || true
}

measure() {  # LABEL TARGET -> "up down" in Mbit/s
  wait_until 20 "path to $2 ($1)" ip netns exec "$C" sh -c "nc -z -w 1 $2 5201"
  local up down
  up=$(ip netns exec "$C" iperf3 -c "$2" -p 5201 -t "$secs" -J | grep -o '"bits_per_second":[[:space:]]*[0-9.e+]*' | tail -n1 | awk -F: '{printf "%.1f", $2/1e6}')
  down=$(ip netns exec "$C" iperf3 -c "$2" -p 5201 -t "$secs" -R -J | grep -o '"bits_per_second":[[:space:]]*[0-9.e+]*' | tail -n1 | awk -F: '{printf "%.1f", $2/1e6}')
  echo "$up $down"
}

TUNNEL_PIDS=()
# (a) p2proxy-client -> p2proxy-site
site_up a
ifa="bsa${E2E_ID}"; ifa=${ifa:0:15}
E2E_FILES+=("/var/run/wireguard/$ifa.sock")
printf '[Interface]\nPrivateKey = %s\nAddress = 100.96.0.5/32\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 100.96.128.0/18\nEndpoint = 198.18.2.2:51820\n' \
  "$key_c" "$pub_s" > "$E2E_TMP/$ifa.conf"
bg "$C" client-a "$CLIENT" --wg-config="$E2E_TMP/$ifa.conf" --log-level=warn
TUNNEL_PIDS+=("$BG_PID")
wait_until 10 "client UAPI" test -S "/var/run/wireguard/$ifa.sock"
read -r a_up a_down < <(measure a 100.96.128.23)
stop_tunnel

# (d) p2proxy-client, userspace mode: iperf3 to a local forward.
site_up d
bg "$C" client-d "$CLIENT" --wg-config="$E2E_TMP/$ifa.conf" --userspace --socks5=off --http_proxy=off \
  --forward=127.0.0.1:5201:100.96.128.23:5201 --uapi_dir= --log-level=warn
TUNNEL_PIDS+=("$BG_PID")
wait_until 10 "client forward" ip netns exec "$C" sh -c "ss -ltn | grep -q 127.0.0.1:5201"
read -r d_up d_down < <(measure d 127.0.0.1)
stop_tunnel

# (b) wireguard-go -> p2proxy-site
site_up b
ifb="bsb${E2E_ID}"; ifb=${ifb:0:15}
[ -n "${P2P_BENCH_RMEM:-}" ] && ip netns exec "$C" sysctl -qw net.core.rmem_default="$P2P_BENCH_RMEM"
wgo_up "$C" "$ifb" "$key_c" 100.96.0.5/32 "$pub_s" 100.96.128.0/18 198.18.2.2:51820
client_routes "$ifb"
read -r b_up b_down < <(measure b 100.96.128.23)
stop_tunnel

# (c) wireguard-go -> wireguard-go; the site namespace routes to the LAN with kernel TCP.
ip netns exec "$S" sysctl -qw net.ipv4.ip_forward=1
ifc="bsc${E2E_ID}"; ifc=${ifc:0:15}; ifs="bss${E2E_ID}"; ifs=${ifs:0:15}
wgo_up "$S" "$ifs" "$key_s" 100.96.0.10/32 "$pub_c" 100.96.0.5/32 ""
ip -n "$S" route add 100.96.0.5/32 dev "$ifs"
wgo_up "$C" "$ifc" "$key_c" 100.96.0.5/32 "$pub_s" 198.19.1.0/24 198.18.2.2:51820
ip -n "$C" route add 198.19.1.0/24 dev "$ifc"
ip -n "$L" route add 100.96.0.5/32 via 198.19.1.1 2>/dev/null || true
read -r c_up c_down < <(measure c 198.19.1.2)
stop_tunnel

printf 'single TCP stream, client -> target behind the site, iperf3 %ss each way, %s cores\n' "$secs" "$(nproc)"
printf '  %-52s %10s %10s\n' "" "upload" "download"
printf '  %-52s %7s Mb/s %7s Mb/s\n' "(a) p2proxy-client -> p2proxy-site (lwIP)" "$a_up" "$a_down"
printf '  %-52s %7s Mb/s %7s Mb/s\n' "(b) wireguard-go   -> p2proxy-site (lwIP)" "$b_up" "$b_down"
printf '  %-52s %7s Mb/s %7s Mb/s\n' "(c) wireguard-go   -> wireguard-go (kernel TCP)" "$c_up" "$c_down"
printf '  %-52s %7s Mb/s %7s Mb/s\n' "(d) p2proxy-client userspace (lwIP) -> p2proxy-site" "$d_up" "$d_down"
awk -v a="$a_up" -v b="$b_up" -v c="$c_up" -v ad="$a_down" -v bd="$b_down" -v cd="$c_down" \
  -v d="$d_up" -v dd="$d_down" \
  'BEGIN{printf "  ratios upload:   a/c %.2f  b/c %.2f  d/c %.2f\n  ratios download: a/c %.2f  b/c %.2f  d/c %.2f\n", a/c, b/c, d/c, ad/cd, bd/cd, dd/cd}'
