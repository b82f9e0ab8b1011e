#!/usr/bin/env bash
# https_rps.sh: HTTPS requests per second with keep-alive, HTTP/1.1 and HTTP/2, through the
# p2proxy TLS-terminating reverse proxy (the site's HTTPS path: ClientHello peek, TLS, access
# check per request, proxy, an audit line per request) and through nginx terminating TLS with
# proxy_pass, both to the same upstream (nginx serving a small page), all on one namespace's
# loopback, measured by h2load in the same run. Prints both and the ratio. A benchmark: it
# asserts nothing.
#   sudo bench/https_rps.sh [SECONDS] [CONNECTIONS] [ROUNDS]
# Each proxy runs one worker (one core), like the site's single loop thread. The two proxies
# take turns, ROUNDS times per protocol (default 3); each round's figures are printed, and
# the median ratio, since on a shared 2-core machine one 10 s figure moves by several percent.
# Each figure also gives the proxy's CPU time per request (utime + stime of its one process or
# worker over the run, warm-up included, over the requests done) and nginx's over ours ("cpu
# n/p": above 1, p2proxy spends less CPU per request), which the machine's noise moves less.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/e2e/lib.sh"
require_root_or_skip h2load nginx openssl
secs=${1:-10}
conns=${2:-32}
rounds=${3:-3}
BENCH=${P2P_HTTPS_BENCH_BIN:-$root/build/default/bench/https_proxy_bench}
[ -x "$BENCH" ] || fail "no https_proxy_bench at $BENCH (build with: cmake --preset default && cmake --build --preset default)"

N="p2hb-$E2E_ID"
netns_add "$N"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench.example.internal" \
  -addext "subjectAltName=DNS:bench.example.internal,IP:127.0.0.1" -keyout "$E2E_TMP/key.pem" -out "$E2E_TMP/cert.pem" 2>/dev/null
mkdir -p "$E2E_TMP/www"
head -c 1024 /dev/zero | tr '\0' x > "$E2E_TMP/www/index.html"
common="daemon off; user root; worker_processes 1; error_log $E2E_TMP/nginx-\$NAME.log;
events { worker_connections 4096; }"
tmp_paths="client_body_temp_path $E2E_TMP/nb; proxy_temp_path $E2E_TMP/np; fastcgi_temp_path $E2E_TMP/nf; uwsgi_temp_path $E2E_TMP/nu; scgi_temp_path $E2E_TMP/ns;"
cat > "$E2E_TMP/upstream.conf" <<NGINX
${common//\$NAME/upstream} pid $E2E_TMP/upstream.pid;
http { access_log off; $tmp_paths keepalive_requests 1000000;
  server { listen 127.0.0.1:18080; root $E2E_TMP/www; } }
NGINX
cat > "$E2E_TMP/proxy.conf" <<NGINX
${common//\$NAME/proxy} pid $E2E_TMP/proxy.pid;
http { access_log off; $tmp_paths keepalive_requests 1000000;
  upstream app { server 127.0.0.1:18080; keepalive 64; }
  server { listen 127.0.0.1:18444 ssl http2; ssl_certificate $E2E_TMP/cert.pem; ssl_certificate_key $E2E_TMP/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3; http2_max_requests 1000000;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto https; proxy_set_header X-Forwarded-Host \$host; } } }
NGINX
bg "$N" upstream nginx -c "$E2E_TMP/upstream.conf"
bg "$N" nginx-proxy nginx -c "$E2E_TMP/proxy.conf"
bg "$N" p2proxy "$BENCH" --listen 127.0.0.1:18443 --upstream 127.0.0.1:18080 --cert "$E2E_TMP/cert.pem" --key "$E2E_TMP/key.pem" --audit "$E2E_TMP/audit.jsonl"
P2P_PID=$BG_PID
wait_until 10 "servers listening" ip netns exec "$N" sh -c "ss -ltn | grep -q :18080 && ss -ltn | grep -q :18443 && ss -ltn | grep -q :18444"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, in clock ticks
run() {  # PORT MODE PID -> "requests/s cpu-us-per-request" (CPU of PID, warm-up included)
  local port=$1 mode=$2 pid=$3 extra=()
  [ "$mode" = h1 ] && extra=(--h1) || extra=(-m 10)
  local t0 t1
  t0=$(cpu_ticks "$pid")
  ip netns exec "$N" h2load -c "$conns" -t 1 -D "$secs" --warm-up-time=1 "${extra[@]}" "https://127.0.0.1:$port/" \
    >"$E2E_TMP/h2load-$port-$mode.txt" 2>&1 || true
  t1=$(cpu_ticks "$pid")
  local rps done_n
  rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$E2E_TMP/h2load-$port-$mode.txt")
  done_n=$(awk '/^requests:/ {print $8}' "$E2E_TMP/h2load-$port-$mode.txt")
  grep -q "succeeded, 0 failed\|0 failed" "$E2E_TMP/h2load-$port-$mode.txt" || log "warning: failures on $port $mode: $(grep '^requests:' "$E2E_TMP/h2load-$port-$mode.txt")"
  echo "${rps:-0} $(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="${done_n:-0}" 'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}')"
}
NGINX_WORKER=$(pgrep -P "$(cat "$E2E_TMP/proxy.pid")" | head -n1)
printf '%-10s %6s %14s %14s %8s %12s %12s %8s\n' mode round "p2proxy req/s" "nginx req/s" ratio "p2proxy us/r" "nginx us/r" "cpu n/p"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for mode in h1 h2; do
  name=$([ $mode = h1 ] && echo HTTP/1.1 || echo HTTP/2)
  ratios=() cpus=()
  for r in $(seq 1 "$rounds"); do
    read -r p pc < <(run 18443 $mode "$P2P_PID")
    read -r n nc < <(run 18444 $mode "$NGINX_WORKER")
    ratio=$(echo "$p $n" | awk '{printf "%.2f", ($2 > 0) ? $1 / $2 : 0}')
    cpu=$(echo "$pc $nc" | awk '{printf "%.2f", ($1 > 0) ? $2 / $1 : 0}')
    ratios+=("$ratio") cpus+=("$cpu")
    printf '%-10s %6s %14.0f %14.0f %8s %12s %12s %8s\n' "$name" "$r" "$p" "$n" "$ratio" "$pc" "$nc" "$cpu"
  done
  printf '%-10s %6s %14s %14s %8s %12s %12s %8s\n' "$name" median "" "" "$(printf '%s\n' "${ratios[@]}" | median)" "" "" \
    "$(printf '%s\n' "${cpus[@]}" | median)"
done
kill -0 "$P2P_PID" 2>/dev/null || { tail -5 "$E2E_TMP/p2proxy.log"; fail "the p2proxy harness died during the run"; }
echo "($conns connections, $secs s per figure, rounds: $rounds, keep-alive; h2: 10 streams per connection; 1 KiB page;"
echo " us/r: the proxy's CPU microseconds per request)"
