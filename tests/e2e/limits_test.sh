#!/usr/bin/env bash
# limits_test.sh: per-peer limits at the site (issue M1.5h). Two peers, A and B, each a
# wireguard-go client in its own namespace, reach one p2proxy-site:
#   A (100.96.0.5)  --198.18.7.0/24--  S (p2proxy-site, node 100.96.0.10)  --198.18.8.0/24--  B (100.96.0.6)
#   S  --198.19.7.0/24 (LAN)--  L (app :8080, TCP echo :7, UDP echo :7)
# Resources: vault https 100.96.128.20:443, echo tcp .24:7, uecho udp .26:7.
# The site's limits are small (20 connections, 10 UDP sessions, 8 HTTP/2 streams per peer;
# 2 s for a TLS handshake). A takes everything it may and more: HTTP/2 streams, connections and
# UDP sessions past its caps (the excess is refused, the first refusal of each kind audited),
# then stalls TLS handshakes (closed at the deadline, audited). Meanwhile B gets HTTPS over
# HTTP/2 and HTTP/1.1, TCP echo, UDP echo and HTTP/2 streams as if A were not there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SITE=${P2P_SITE_BIN:?set P2P_SITE_BIN to the p2proxy-site binary}
STORM=${P2P_STORM_BIN:?set P2P_STORM_BIN to the conn_storm binary}
PY=/usr/bin/python3
FLOOD="$here/tools/peer_flood.py"
require_root_or_skip wireguard-go wg curl openssl "$PY"

A="p2lA-$E2E_ID"; B="p2lB-$E2E_ID"; S="p2lS-$E2E_ID"; L="p2lL-$E2E_ID"
netns_add "$A"; netns_add "$B"; netns_add "$S"; netns_add "$L"
veth_link "$A" 198.18.7.1/24 "$S" 198.18.7.2/24
veth_link "$B" 198.18.8.1/24 "$S" 198.18.8.2/24
veth_link "$S" 198.19.7.1/24 "$L" 198.19.7.2/24
ip -n "$L" route add default via 198.19.7.1
in_a() { ip netns exec "$A" "$@"; }
in_b() { ip netns exec "$B" "$@"; }

# ---- a test CA and the vault certificate ----
pki="$E2E_TMP/pki"; mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=p2proxy limits CA $E2E_ID" \
  -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=vault" \
  -addext "subjectAltName=DNS:vault.example.internal" -keyout "$pki/vault.key" -out "$pki/vault.csr" 2>/dev/null
openssl x509 -req -in "$pki/vault.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
  -copy_extensions copy -out "$pki/vault.pem" 2>/dev/null

# ---- the LAN: the app, a TCP echo and a UDP echo ----
bg "$L" app "$PY" "$here/tools/upstream_app.py" 198.19.7.2 8080 "$E2E_ID"
bg "$L" echo "$STORM" echo 7
bg "$L" uecho "$PY" "$FLOOD" --max-hold 600 udp-echo 198.19.7.2 7
wait_until 10 "targets listening" ip netns exec "$L" sh -c \
  "ss -ltn | grep -q 198.19.7.2:8080 && ss -ltn | grep -q ':7 ' && ss -lun | grep -q 198.19.7.2:7"

# ---- the site ----
key_a=$(wg genkey); pub_a=$(echo "$key_a" | wg pubkey)
key_b=$(wg genkey); pub_b=$(echo "$key_b" | wg pubkey)
key_s=$(wg genkey); pub_s=$(echo "$key_s" | wg pubkey)
audit="$E2E_TMP/audit.log"
cat > "$E2E_TMP/site.json" <<JSON
{"wireguard": {"private_key": "$key_s", "listen_port": 51820, "address": "100.96.0.10"},
 "peers": [{"public_key": "$pub_a", "allowed_ips": ["100.96.0.5/32"], "user": "alice"},
           {"public_key": "$pub_b", "allowed_ips": ["100.96.0.6/32"], "user": "bob"}],
 "audit_log": "$audit",
 "limits": {"max_tcp_connections_per_peer": 20, "max_udp_sessions_per_peer": 10,
            "max_http2_streams_per_peer": 8, "tls_handshake_timeout_seconds": 2},
 "resources": [
  {"name": "vault", "address": "100.96.128.20", "port": 443, "protocol": "https", "target": "198.19.7.2:8080",
   "hostnames": ["vault.example.internal"], "certificate_file": "$pki/vault.pem", "key_file": "$pki/vault.key",
   "access": {"users": ["*"]}},
  {"name": "echo", "address": "100.96.128.24", "port": 7, "protocol": "tcp", "target": "198.19.7.2:7",
   "access": {"users": ["*"]}},
  {"name": "uecho", "address": "100.96.128.26", "port": 7, "protocol": "udp", "target": "198.19.7.2:7",
   "access": {"users": ["*"]}}
 ]}
JSON
start_p2p_site "$S" "$SITE"

# ---- the two peers: wireguard-go ----
start_peer() {  # NS NAME KEY ADDRESS SITE_ENDPOINT
  local ns=$1 ifname="$2${E2E_ID}"
  ifname=${ifname:0:15}
  E2E_FILES+=("/var/run/wireguard/$ifname.sock")
  bg "$ns" "wg-$2" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$ifname"
  wait_until 10 "wireguard-go UAPI ($2)" test -S "/var/run/wireguard/$ifname.sock"
  echo "$3" > "$E2E_TMP/key-$2"
  ip netns exec "$ns" wg set "$ifname" private-key "$E2E_TMP/key-$2" peer "$pub_s" \
    allowed-ips 100.96.128.0/18,100.96.0.10/32 endpoint "$5" persistent-keepalive 5
  ip -n "$ns" addr add "$4/32" dev "$ifname"
  ip -n "$ns" link set "$ifname" up
  ip -n "$ns" route add 100.96.128.0/18 dev "$ifname"
  ip -n "$ns" route add 100.96.0.10/32 dev "$ifname"
}
start_peer "$A" wla "$key_a" 100.96.0.5 198.18.7.2:51820
start_peer "$B" wlb "$key_b" 100.96.0.6 198.18.8.2:51820

CURL=(curl -sS --max-time 20 --cacert "$pki/ca.pem" --resolve vault.example.internal:443:100.96.128.20)
wait_until 20 "A reaches the site" in_a "${CURL[@]}" -o /dev/null https://vault.example.internal/
wait_until 20 "B reaches the site" in_b "${CURL[@]}" -o /dev/null https://vault.example.internal/

audit_count() { grep -cF -- "$1" "$audit" || true; }  # lines of the audit log containing $1
# flood NAME ARGS...: run peer_flood.py in A, holding while $E2E_TMP/hold-a exists; waits for its
# summary line and prints it.
touch "$E2E_TMP/hold-a"
flood() {
  local name=$1
  shift
  bg "$A" "$name" "$PY" "$FLOOD" --hold "$E2E_TMP/hold-a" --max-hold 120 "$@"
  wait_until 30 "A's $name summary" grep -q ' ok=\| refused=' "$E2E_TMP/$name.log"
  cat "$E2E_TMP/$name.log"
}

# B is served while A sits at every limit.
check_b() {
  local v out
  for v in --http2 --http1.1; do
    out=$(in_b "${CURL[@]}" "$v" https://vault.example.internal/ 2>&1) || fail "B: curl $v while $1: $out"
    grep -q "vault: the private app behind the site ($E2E_ID)" <<<"$out" || fail "B: curl $v while $1: wrong page: $out"
  done
  out=$(in_b "$STORM" storm 100.96.128.24:7 5 4096 2>&1) || fail "B: TCP echo while $1: $out"
  out=$(in_b "$PY" "$FLOOD" --max-hold 0 udp 100.96.128.26 7 3) || fail "B: UDP while $1: $out"
  grep -q 'ok=3 ' <<<"$out" || fail "B: UDP echo while $1: $out"
  log "B is served while $1: HTTPS (HTTP/2, HTTP/1.1), TCP echo x5, UDP echo x3"
}

# ---- A at its caps ----
out=$(flood h2 h2 100.96.128.20 vault.example.internal "$pki/ca.pem" 20)
grep -q 'refused=12 open=8' <<<"$out" || fail "A's 20 HTTP/2 streams: expected 8 open and 12 refused: $out"
log "A: 20 HTTP/2 streams -> 8 open (its cap), 12 refused with REFUSED_STREAM"
out=$(flood tcp tcp 100.96.128.24 7 30)
grep -q 'ok=19 refused=11' <<<"$out" || fail "A's 30 connections (plus its HTTP/2 one): expected 19 echoed and 11 refused: $out"
log "A: 30 more connections -> 19 served (20 with the HTTP/2 one: its cap), 11 reset"
out=$(flood udp udp 100.96.128.26 7 30)
grep -q 'ok=10 silent=20' <<<"$out" || fail "A's 30 UDP sessions: expected 10 answered: $out"
log "A: 30 UDP sessions -> 10 answered (its cap), 20 dropped"

check_b "A holds 20 connections, 8 HTTP/2 streams and 10 UDP sessions"
in_b "$PY" "$FLOOD" --max-hold 0 --wait 3 h2 100.96.128.20 vault.example.internal "$pki/ca.pem" 4 > "$E2E_TMP/b-h2.txt" \
  || fail "B's HTTP/2 streams: $(cat "$E2E_TMP/b-h2.txt")"
grep -q 'refused=0 open=4' "$E2E_TMP/b-h2.txt" || fail "B's 4 HTTP/2 streams were refused: $(cat "$E2E_TMP/b-h2.txt")"
log "B: 4 HTTP/2 streams open while A is at its stream cap"

for kind in max_tcp_connections_per_peer max_udp_sessions_per_peer max_http2_streams_per_peer; do
  wait_until 5 "the refusal at $kind audited" grep -q "\"user\":\"alice\".*limit: peer at $kind" "$audit"
  n=$(audit_count "limit: peer at $kind")
  [ "$n" -le 2 ] || fail "refusals at $kind were audited $n times: one per streak expected"
done
if grep -q '"user":"bob".*limit: peer at' "$audit"; then fail "B was refused at a limit: $(grep '"user":"bob".*limit' "$audit")"; fi
log "each of A's refusals audited once per streak; none for B"

# ---- A lets go; its slots come back ----
rm -f "$E2E_TMP/hold-a"
wait_until 20 "A's slots released" sh -c "ip netns exec '$A' '$PY' '$FLOOD' --max-hold 0 tcp 100.96.128.24 7 20 | grep -q 'ok=20 '"
log "A's slots came back once it closed what it held"

# ---- A stalls TLS handshakes ----
touch "$E2E_TMP/hold-a"
bg "$A" stall "$PY" "$FLOOD" --hold "$E2E_TMP/hold-a" --max-hold 60 --wait 20 stall 100.96.128.20 443 15
wait_until 10 "A's stalled handshakes open" grep -q 'opened=15' "$E2E_TMP/stall.log"
check_b "A stalls 15 TLS handshakes"
wait_until 30 "the stalled handshakes closed" grep -q 'closed=15' "$E2E_TMP/stall.log"
n=$(grep -c '"user":"alice".*tls: no ClientHello in time' "$audit" || true)
[ "$n" -ge 15 ] || fail "stalled handshakes audited $n times, expected 15"
log "A's 15 stalled handshakes were closed at the 2 s deadline and audited"
rm -f "$E2E_TMP/hold-a"
log "PASS"
