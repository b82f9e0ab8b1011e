#!/usr/bin/env bash
# client_ttfb.sh: time to first byte of N sequential NEW HTTPS connections (each one curl
# process: a fresh TCP connection and a full TLS handshake, no session to resume, then GET / of
# a 1 KiB page over HTTP/1.1; curl's time_starttransfer) from a client namespace to an app on
# the site's LAN, in the same run, three ways:
#   (a) p2proxy-client (TUN, static wg-quick config) -> p2proxy-site (static site.json, an https
#       resource: TLS ends at the site, lwIP) -> nginx on the LAN, plain HTTP
#   (b) the same client -> the same site, a tcp resource: the site only splices, to nginx
#       terminating TLS itself with the same certificate (separates the site's TLS cost)
#   (c) wireguard-go -> wireguard-go (the site namespace routes to the LAN with kernel TCP) ->
#       nginx terminating TLS with the same certificate (the peer baseline)
# The certificate is one ECDSA P-256 leaf from a test CA made here; curl trusts only that CA.
# The three paths take turns connection by connection (a b c, b c a, ...), so the machine's
# noise falls on all three alike. Prints p50, p99 (nearest rank) and mean in ms for each, the
# median TCP connect and TLS handshake times, and the ratios a/c and b/c of p50 and p99. A
# benchmark: it asserts nothing.
#   sudo bench/client_ttfb.sh [N]   (N connections per path, default 200; uses the binaries in
#                                    build/default, or P2P_CLIENT_BIN / P2P_SITE_BIN)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/e2e/lib.sh"
require_root_or_skip wireguard-go wg curl nginx openssl
n=${1:-200}
[[ "$n" =~ ^[1-9][0-9]*$ ]] || fail "usage: client_ttfb.sh [N]  (N a positive integer, got '$n')"
CLIENT=${P2P_CLIENT_BIN:-$root/build/default/daemons/p2proxy-client}
SITE=${P2P_SITE_BIN:-$root/build/default/daemons/p2proxy-site}
for b in "$CLIENT" "$SITE"; do [ -x "$b" ] || fail "missing $b (cmake --preset default && cmake --build --preset default)"; done

C="btC-$E2E_ID"; S="btS-$E2E_ID"; L="btL-$E2E_ID"
netns_add "$C"; netns_add "$S"; netns_add "$L"
veth_link "$C" 198.18.7.1/24 "$S" 198.18.7.2/24
veth_link "$S" 198.19.7.1/24 "$L" 198.19.7.2/24
ip -n "$L" route add default via 198.19.7.1
HOST=app.example.internal

# ---- a test CA and one leaf, used by the site and by nginx alike ----
pki="$E2E_TMP/pki"; mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=p2proxy bench CA $E2E_ID" \
  -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$HOST" -addext "subjectAltName=DNS:$HOST" \
  -keyout "$pki/app.key" -out "$pki/app.csr" 2>/dev/null
openssl x509 -req -in "$pki/app.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
  -copy_extensions copy -out "$pki/app.crt" 2>/dev/null
cat "$pki/app.crt" "$pki/ca.pem" > "$pki/app.pem"  # leaf first, then the CA

# ---- the app: nginx on the LAN, plain HTTP :8080 (for a) and TLS :443 (for b and c) ----
mkdir -p "$E2E_TMP/www"
head -c 1024 /dev/zero | tr '\0' x > "$E2E_TMP/www/index.html"
cat > "$E2E_TMP/nginx.conf" <<NGINX
daemon off; user root; worker_processes 1; pid $E2E_TMP/nginx.pid; error_log $E2E_TMP/nginx-error.log;
events { worker_connections 1024; }
http { access_log off;
  client_body_temp_path $E2E_TMP/nb; proxy_temp_path $E2E_TMP/np; fastcgi_temp_path $E2E_TMP/nf;
  uwsgi_temp_path $E2E_TMP/nu; scgi_temp_path $E2E_TMP/ns;
  server { listen 198.19.7.2:8080; root $E2E_TMP/www; }
  server { listen 198.19.7.2:443 ssl; server_name $HOST; root $E2E_TMP/www;
    ssl_certificate $pki/app.pem; ssl_certificate_key $pki/app.key; ssl_protocols TLSv1.2 TLSv1.3; } }
NGINX
bg "$L" nginx nginx -c "$E2E_TMP/nginx.conf"
wait_until 10 "nginx listening" ip netns exec "$L" sh -c "ss -ltn | grep -q 198.19.7.2:8080 && ss -ltn | grep -q 198.19.7.2:443"

key_c=$(wg genkey); pub_c=$(echo "$key_c" | wg pubkey)
key_s=$(wg genkey); pub_s=$(echo "$key_s" | wg pubkey)
key_wc=$(wg genkey); pub_wc=$(echo "$key_wc" | wg pubkey)
key_ws=$(wg genkey); pub_ws=$(echo "$key_ws" | wg pubkey)

# ---- (a) and (b): p2proxy-site (UDP 51820) with an https and a tcp resource ----
cat > "$E2E_TMP/site.json" <<JSON
{"wireguard": {"private_key": "$key_s", "listen_port": 51820, "address": "100.96.0.10"},
 "peers": [{"public_key": "$pub_c", "allowed_ips": ["100.96.0.5/32"], "user": "tester"}],
 "audit_log": "$E2E_TMP/audit.jsonl",
 "resources": [
  {"name": "app-https", "address": "100.96.128.20", "port": 443, "protocol": "https", "target": "198.19.7.2:8080",
   "hostnames": ["$HOST"], "certificate_file": "$pki/app.pem", "key_file": "$pki/app.key",
   "access": {"users": ["tester"]}},
  {"name": "app-tcp", "address": "100.96.128.21", "port": 443, "protocol": "tcp", "target": "198.19.7.2:443",
   "access": {"users": ["tester"]}}]}
JSON
bg "$S" site "$SITE" --config="$E2E_TMP/site.json" --log-level=warn
wait_until 10 "site up" ip netns exec "$S" sh -c "ss -lun | grep -q :51820"
ifa="bta${E2E_ID}"; ifa=${ifa:0:15}
E2E_FILES+=("/var/run/wireguard/$ifa.sock")
printf '[Interface]\nPrivateKey = %s\nAddress = 100.96.0.5/32\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 100.96.128.0/18\nEndpoint = 198.18.7.2:51820\n' \
  "$key_c" "$pub_s" > "$E2E_TMP/$ifa.conf"
bg "$C" client "$CLIENT" --wg-config="$E2E_TMP/$ifa.conf" --log-level=warn
wait_until 10 "client UAPI" test -S "/var/run/wireguard/$ifa.sock"

# ---- (c): wireguard-go in C and in S (UDP 51821), S forwarding to the LAN ----
wgo_up() {  # NS NAME KEY ADDR PEERPUB ALLOWED PORT ENDPOINT
  E2E_FILES+=("/var/run/wireguard/$2.sock")
  bg "$1" "$2" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$2"
  wait_until 10 "$2 UAPI" test -S "/var/run/wireguard/$2.sock"
  echo "$3" > "$E2E_TMP/$2.key"
  local args=(private-key "$E2E_TMP/$2.key" listen-port "$7" peer "$5" allowed-ips "$6")
  [ -n "$8" ] && args+=(endpoint "$8")
  ip netns exec "$1" wg set "$2" "${args[@]}"
  ip -n "$1" addr add "$4" dev "$2"
  ip -n "$1" link set "$2" up
}
ip netns exec "$S" sysctl -qw net.ipv4.ip_forward=1
ifc="btc${E2E_ID}"; ifc=${ifc:0:15}; ifs="bts${E2E_ID}"; ifs=${ifs:0:15}
wgo_up "$S" "$ifs" "$key_ws" 100.96.0.11/32 "$pub_wc" 100.96.0.6/32 51821 ""
ip -n "$S" route add 100.96.0.6/32 dev "$ifs"
wgo_up "$C" "$ifc" "$key_wc" 100.96.0.6/32 "$pub_ws" 198.19.7.0/24 51821 198.18.7.2:51821
ip -n "$C" route add 198.19.7.0/24 dev "$ifc" src 100.96.0.6

# ---- warm up: each path serves the page (WireGuard handshakes done), and what TLS it speaks ----
declare -A IP=([a]=100.96.128.20 [b]=100.96.128.21 [c]=198.19.7.2) TLS=()
CURL=(curl -sS -o /dev/null --http1.1 --max-time 10 --cacert "$pki/ca.pem")
for p in a b c; do
  wait_until 30 "path $p serves the page" ip netns exec "$C" "${CURL[@]}" --max-time 2 -f --resolve "$HOST:443:${IP[$p]}" "https://$HOST/"
  for _ in 1 2 3 4 5; do ip netns exec "$C" "${CURL[@]}" --resolve "$HOST:443:${IP[$p]}" "https://$HOST/" || true; done
  TLS[$p]=$(ip netns exec "$C" timeout 10 openssl s_client -connect "${IP[$p]}:443" -servername "$HOST" -CAfile "$pki/ca.pem" \
    </dev/null 2>/dev/null | awk '/^New, / {sub(/^New, /, ""); sub(/,/, ""); proto = $0} /Server Temp Key:/ {sub(/.*Key: /, ""); kx = $0}
      /Verify return code:/ {sub(/.*code: /, ""); v = $0} END {printf "%s, %s, verify %s", proto, kx, v}')
done

# ---- the measurement: N rounds, each one new connection per path, in rotating order ----
ip netns exec "$C" bash -c '
  n=$1 host=$2 ca=$3; shift 3
  declare -A ip=([a]=$1 [b]=$2 [c]=$3)
  order=(a b c)
  for i in $(seq 0 $((n - 1))); do
    for k in 0 1 2; do
      p=${order[$(( (i + k) % 3 ))]}
      curl -sS -o /dev/null --http1.1 --max-time 10 --cacert "$ca" --resolve "$host:443:${ip[$p]}" "https://$host/" \
        -w "$p %{http_code} %{num_connects} %{time_connect} %{time_appconnect} %{time_starttransfer}\n" 2>/dev/null \
        || echo "$p 000 0 0 0 0"
    done
  done' _ "$n" "$HOST" "$pki/ca.pem" "${IP[a]}" "${IP[b]}" "${IP[c]}" > "$E2E_TMP/samples.txt"

# stats P -> "p50 p99 mean p50_tcp p50_tls ok failed" (ms; nearest-rank percentiles over the good
# samples: HTTP 200 on exactly one new connection)
stats() {
  local good="$E2E_TMP/good-$1.txt" ok failed
  awk -v p="$1" '$1 == p && $2 == 200 && $3 == 1 {print $6 * 1000, $4 * 1000, ($5 - $4) * 1000}' "$E2E_TMP/samples.txt" > "$good"
  ok=$(wc -l < "$good")
  failed=$(awk -v p="$1" '$1 == p && !($2 == 200 && $3 == 1)' "$E2E_TMP/samples.txt" | wc -l)
  if [ "$ok" -eq 0 ]; then echo "0 0 0 0 0 0 $failed"; return; fi
  pct() { cut -d' ' -f"$1" "$good" | sort -n | awk -v n="$ok" -v q="$2" 'NR == int((n * q + 99) / 100) {print}'; }
  echo "$(pct 1 50) $(pct 1 99) $(awk '{s += $1} END {print s / NR}' "$good") $(pct 2 50) $(pct 3 50) $ok $failed"
}
read -r a50 a99 amean atcp atls aok abad < <(stats a)
read -r b50 b99 bmean btcp btls bok bbad < <(stats b)
read -r c50 c99 cmean ctcp ctls cok cbad < <(stats c)

printf 'time to first byte, %s new HTTPS connections per path (fresh TCP + full TLS handshake, GET / 1 KiB,\n' "$n"
printf 'HTTP/1.1, one curl each), client namespace -> app on the site'"'"'s LAN, paths interleaved, %s cores\n' "$(nproc)"
printf '  %-50s %8s %8s %8s %9s %9s %8s\n' "" "p50 ms" "p99 ms" "mean ms" "tcp p50" "tls p50" "ok/fail"
row() { printf '  %-50s %8.2f %8.2f %8.2f %9.2f %9.2f %8s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7/$8"; }
row "(a) p2proxy-client -> p2proxy-site https (TLS at site)" "$a50" "$a99" "$amean" "$atcp" "$atls" "$aok" "$abad"
row "(b) p2proxy-client -> p2proxy-site tcp -> nginx TLS" "$b50" "$b99" "$bmean" "$btcp" "$btls" "$bok" "$bbad"
row "(c) wireguard-go -> wireguard-go -> nginx TLS" "$c50" "$c99" "$cmean" "$ctcp" "$ctls" "$cok" "$cbad"
awk -v a50="$a50" -v a99="$a99" -v b50="$b50" -v b99="$b99" -v c50="$c50" -v c99="$c99" \
  'function r(x, y) { return y > 0 ? sprintf("%.2f", x / y) : "n/a" }
   BEGIN { printf "  ratios p50: a/c %s  b/c %s\n  ratios p99: a/c %s  b/c %s\n", r(a50, c50), r(b50, c50), r(a99, c99), r(b99, c99) }'
printf '  TLS (a) %s\n  TLS (b) %s\n  TLS (c) %s\n' "${TLS[a]}" "${TLS[b]}" "${TLS[c]}"
echo "  (tcp p50: curl's time_connect, the TCP handshake through the tunnel; tls p50: time_appconnect - time_connect)"
