#!/usr/bin/env bash
# wg_interop_test.sh SCENARIO: p2proxy-client's WireGuard mode against wireguard-go as a live
# peer, in two network namespaces joined by a veth pair (198.18.0.1 <-> 198.18.0.2; overlay
# 100.96.0.2 <-> 100.96.0.3).
#   initiator   we start the handshake; ping and iperf3 both ways; `wg show` on our UAPI
#   responder   wireguard-go starts it, we learn its endpoint
#   psk         both sides with a preshared key
#   keepalive   our persistent keepalive reaches wireguard-go with no other traffic
#   roaming     wireguard-go moves to another port; we follow
#   restart     wireguard-go restarts with fresh state; the tunnel recovers
#   uapi_set    `wg set` adds and removes a peer at runtime
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
scenario=${1:?usage: wg_interop_test.sh SCENARIO}
CLIENT=${P2P_CLIENT_BIN:?set P2P_CLIENT_BIN to the p2proxy-client binary}
require_root_or_skip wireguard-go wg ping iperf3

ours="p2p${E2E_ID}"; ours=${ours:0:15}
theirs="wgo${E2E_ID}"; theirs=${theirs:0:15}
A="p2pA-$E2E_ID"; B="p2pB-$E2E_ID"
netns_add "$A"
netns_add "$B"
veth_link "$A" 198.18.0.1/24 "$B" 198.18.0.2/24
E2E_FILES+=("/var/run/wireguard/$ours.sock" "/var/run/wireguard/$theirs.sock")

key_a=$(wg genkey); pub_a=$(echo "$key_a" | wg pubkey)
key_b=$(wg genkey); pub_b=$(echo "$key_b" | wg pubkey)
psk=""
[ "$scenario" = psk ] && psk=$(wg genpsk)

# ---- wireguard-go in B ----
start_wireguard_go() {
  bg "$B" wireguard-go env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$theirs"
  WGO_PID=$BG_PID
  wait_until 10 "wireguard-go's UAPI socket" test -S "/var/run/wireguard/$theirs.sock"
  echo "$key_b" > "$E2E_TMP/key_b"
  local args=(private-key "$E2E_TMP/key_b" listen-port "${1:-51820}" peer "$pub_a" allowed-ips 100.96.0.2/32)
  [ -n "$psk" ] && { echo "$psk" > "$E2E_TMP/psk"; args+=(preshared-key "$E2E_TMP/psk"); }
  [ "${2:-}" = with_endpoint ] && args+=(endpoint 198.18.0.1:51820)
  ip netns exec "$B" wg set "$theirs" "${args[@]}"
  ip -n "$B" addr add 100.96.0.3/24 dev "$theirs"
  ip -n "$B" link set "$theirs" up
}

# ---- p2proxy-client in A ----
start_ours() {
  local conf="$E2E_TMP/$ours.conf"
  {
    echo "[Interface]"
    echo "PrivateKey = $key_a"
    echo "Address = 100.96.0.2/24"
    echo "ListenPort = 51820"
    echo
    echo "[Peer]"
    echo "PublicKey = $pub_b"
    echo "AllowedIPs = 100.96.0.3/32"
    [ -n "$psk" ] && echo "PresharedKey = $psk"
    [ "${1:-}" = with_endpoint ] && echo "Endpoint = 198.18.0.2:51820"
    [ -n "${2:-}" ] && echo "PersistentKeepalive = $2"
  } > "$conf"
  bg "$A" p2proxy-client "$CLIENT" --wg-config="$conf"
  OURS_PID=$BG_PID
  wait_until 10 "p2proxy-client's UAPI socket" test -S "/var/run/wireguard/$ours.sock"
}

ping_ok() { ip netns exec "$1" ping -c 1 -W 1 "$2"; }

check_wg_show() {
  local hs rx tx
  hs=$(ip netns exec "$A" wg show "$ours" latest-handshakes | awk '{print $2}')
  [ -n "$hs" ] && [ "$hs" -gt 0 ] || fail "wg show $ours: no latest handshake ($hs)"
  read -r _ rx tx < <(ip netns exec "$A" wg show "$ours" transfer)
  [ "$rx" -gt 0 ] && [ "$tx" -gt 0 ] || fail "wg show $ours: transfer rx=$rx tx=$tx"
  grep -qx "$pub_b" <<<"$(ip netns exec "$A" wg show "$ours" peers)" || fail "wg show: peer missing"
  log "wg show $ours: handshake at $hs, rx=$rx tx=$tx"
  if [ -n "${P2P_DEMO_VERBOSE:-}" ]; then
    echo "\$ ip netns exec A wg show $ours"
    ip netns exec "$A" wg show "$ours"
  fi
}

iperf_both_ways() {
  bg "$B" iperf3-server iperf3 -s -1 -p 5201
  wait_until 5 "iperf3 server" ip netns exec "$B" sh -c "ss -ltn | grep -q :5201"
  ip netns exec "$A" iperf3 -c 100.96.0.3 -p 5201 -t 2 -J > "$E2E_TMP/iperf_ab.json" || fail "iperf3 A->B"
  bg "$B" iperf3-server2 iperf3 -s -1 -p 5202
  wait_until 5 "iperf3 server" ip netns exec "$B" sh -c "ss -ltn | grep -q :5202"
  ip netns exec "$A" iperf3 -c 100.96.0.3 -p 5202 -t 2 -R -J > "$E2E_TMP/iperf_ba.json" || fail "iperf3 B->A"
  for f in iperf_ab iperf_ba; do
    bps=$(grep -o '"bits_per_second":[[:space:]]*[0-9.e+]*' "$E2E_TMP/$f.json" | tail -n1 | awk -F: '{print $2}')
    log "$f: $(awk -v b="$bps" 'BEGIN{printf "%.0f Mbit/s", b/1e6}')"
    awk -v b="$bps" 'BEGIN{exit !(b > 0)}' || fail "$f moved no bytes"
  done
}

case "$scenario" in
  initiator)
    start_wireguard_go 51820
    start_ours with_endpoint
    wait_until 15 "ping A->B through the tunnel" ping_ok "$A" 100.96.0.3
    ping_ok "$B" 100.96.0.2 || fail "ping B->A"
    check_wg_show
    iperf_both_ways
    ;;
  responder)
    start_ours
    start_wireguard_go 51820 with_endpoint
    wait_until 15 "ping B->A (wireguard-go initiates)" ping_ok "$B" 100.96.0.2
    ping_ok "$A" 100.96.0.3 || fail "ping A->B after B initiated"
    grep -q "198.18.0.2:51820" <<<"$(ip netns exec "$A" wg show "$ours" endpoints)" || fail "we did not learn B's endpoint"
    check_wg_show
    ;;
  psk)
    start_wireguard_go 51820
    start_ours with_endpoint
    wait_until 15 "ping A->B with a preshared key" ping_ok "$A" 100.96.0.3
    grep -q "$psk" <<<"$(ip netns exec "$A" wg show "$ours" preshared-keys)" || fail "wg show does not report the psk"
    ;;
  keepalive)
    start_wireguard_go 51820
    start_ours with_endpoint 1
    # No traffic from us: only keepalives can move wireguard-go's receive counter.
    wait_until 10 "first keepalive handshake" sh -c "ip netns exec $B wg show $theirs latest-handshakes | awk '{exit !(\$2>0)}'"
    rx1=$(ip netns exec "$B" wg show "$theirs" transfer | awk '{print $2}')
    wait_until 10 "keepalives arriving" sh -c "ip netns exec $B wg show $theirs transfer | awk -v r=$rx1 '{exit !(\$2 >= r + 64)}'"
    ;;
  roaming)
    start_wireguard_go 51820 with_endpoint
    start_ours with_endpoint
    wait_until 15 "tunnel up" ping_ok "$A" 100.96.0.3
    ip netns exec "$B" wg set "$theirs" listen-port 51999
    wait_until 15 "ping B->A from the new port" ping_ok "$B" 100.96.0.2
    grep -q "198.18.0.2:51999" <<<"$(ip netns exec "$A" wg show "$ours" endpoints)" || fail "we did not follow the new port"
    ping_ok "$A" 100.96.0.3 || fail "ping A->B after roaming"
    ;;
  restart)
    start_wireguard_go 51820
    start_ours with_endpoint
    wait_until 15 "tunnel up" ping_ok "$A" 100.96.0.3
    kill "$WGO_PID"
    wait_until 10 "wireguard-go to exit" sh -c "! kill -0 $WGO_PID 2>/dev/null"
    start_wireguard_go 51820
    # Our old session is gone on the other side; the new-handshake timer (15 s) recovers it.
    wait_until 40 "ping after wireguard-go restarted" ping_ok "$A" 100.96.0.3
    ;;
  uapi_set)
    start_wireguard_go 51820
    start_ours with_endpoint
    extra=$(wg genkey | wg pubkey)
    ip netns exec "$A" wg set "$ours" peer "$extra" allowed-ips 100.96.0.9/32 persistent-keepalive 0
    grep -q "$extra.*100.96.0.9/32" <<<"$(ip netns exec "$A" wg show "$ours" allowed-ips)" || fail "added peer not shown"
    ip netns exec "$A" wg set "$ours" peer "$extra" remove
    if grep -q "$extra" <<<"$(ip netns exec "$A" wg show "$ours" peers)"; then fail "removed peer still shown"; fi
    wait_until 15 "the original peer still works" ping_ok "$A" 100.96.0.3
    # A set that cannot be carried out reports an error to wg (a port already taken).
    bg "$A" udp-squatter socat -u UDP4-RECV:51900 /dev/null
    wait_until 5 "squatter bound" ip netns exec "$A" sh -c "ss -lun | grep -q :51900"
    if ip netns exec "$A" wg set "$ours" listen-port 51900 2>"$E2E_TMP/wgset.err"; then
      fail "wg set listen-port onto a taken port succeeded"
    fi
    log "wg set on a taken port: $(cat "$E2E_TMP/wgset.err")"
    grep -qx 51820 <<<"$(ip netns exec "$A" wg show "$ours" listen-port)" || fail "listen port changed anyway"
    ip netns exec "$A" wg set "$ours" listen-port 51901
    grep -qx 51901 <<<"$(ip netns exec "$A" wg show "$ours" listen-port)" || fail "listen port not moved to 51901"
    ;;
  *) fail "unknown scenario $scenario" ;;
esac
log "PASS: $scenario"
