#!/usr/bin/env bash
# dns_qps.sh: queries per second for private names, p2proxy-client's resolver against dnsmasq
# serving the same records, both on loopback, measured by dnsperf in the same run. Prints both
# and the ratio. A benchmark, not a test: it asserts nothing.
#   sudo bench/dns_qps.sh [SECONDS]     (builds nothing: run scripts/test.sh or demo first)
# The query mix: A for an exact name, A for a wildcard name, AAAA (NODATA), and a missing name
# (NXDOMAIN), with EDNS0 as stub resolvers send it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/e2e/lib.sh"
require_root_or_skip dnsperf dnsmasq
secs=${1:-10}
CLIENT=${P2P_CLIENT_BIN:-$root/build/default/daemons/p2proxy-client}
[ -x "$CLIENT" ] || fail "no p2proxy-client at $CLIENT (build with: cmake --preset default && cmake --build --preset default)"

# Both servers run in one namespace of their own, on its loopback.
N="p2dq-$E2E_ID"
netns_add "$N"

cat > "$E2E_TMP/client.json" <<JSON
{
  "dns": {"listen": "127.0.0.1:5301", "hook": "none", "state_dir": "$E2E_TMP/state"},
  "zones": ["example.internal"],
  "resources": [
    {"name": "vault.example.internal", "address": "100.96.128.20"},
    {"name": "*.apps.example.internal", "address": "100.96.128.30"}
  ]
}
JSON
cat > "$E2E_TMP/dnsmasq.conf" <<CONF
local=/example.internal/
host-record=vault.example.internal,100.96.128.20
address=/apps.example.internal/100.96.128.30
CONF
{
  for i in $(seq 1 250); do
    echo "vault.example.internal A"
    echo "host$i.apps.example.internal A"
    echo "vault.example.internal AAAA"
    echo "missing$i.example.internal A"
  done
} > "$E2E_TMP/queries.txt"

bg "$N" p2proxy "$CLIENT" --config="$E2E_TMP/client.json" --log-level=warn
wait_until 10 "p2proxy resolver" ip netns exec "$N" sh -c "ss -lun | grep -q 127.0.0.1:5301"
bg "$N" dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=127.0.0.1 \
  --bind-interfaces --port=5302 --conf-file="$E2E_TMP/dnsmasq.conf" --pid-file="$E2E_TMP/dnsmasq.pid" \
  --cache-size=10000
wait_until 10 "dnsmasq" ip netns exec "$N" sh -c "ss -lun | grep -q 127.0.0.1:5302"

# Sanity: both give the same answers for the mix.
for q in "vault.example.internal A" "x.apps.example.internal A" "missing.example.internal A"; do
  a=$(ip netns exec "$N" dig +short -p 5301 @127.0.0.1 $q)
  b=$(ip netns exec "$N" dig +short -p 5302 @127.0.0.1 $q)
  [ "$a" = "$b" ] || fail "answers differ for '$q': p2proxy '$a', dnsmasq '$b'"
done

run() {  # PORT
  ip netns exec "$N" dnsperf -s 127.0.0.1 -p "$1" -d "$E2E_TMP/queries.txt" -l "$secs" -c 8 -q 200 -e \
    > "$E2E_TMP/dnsperf-$1.txt" 2>&1 || true
  local qps lost
  qps=$(awk '/Queries per second/{print $4}' "$E2E_TMP/dnsperf-$1.txt")
  lost=$(awk '/Queries lost/{print $3}' "$E2E_TMP/dnsperf-$1.txt")
  [ -n "$qps" ] || fail "dnsperf printed no result: $(cat "$E2E_TMP/dnsperf-$1.txt")"
  echo "$qps $lost"
}
read -r p_qps p_lost < <(run 5301)
read -r d_qps d_lost < <(run 5302)
echo "dns_qps: ${secs}s each, dnsperf -c 8 -q 200, private names on loopback"
printf '  p2proxy resolver: %10.0f queries/s (lost %s)\n' "$p_qps" "$p_lost"
printf '  dnsmasq:          %10.0f queries/s (lost %s)\n' "$d_qps" "$d_lost"
awk -v a="$p_qps" -v b="$d_qps" 'BEGIN{printf "  ratio p2proxy/dnsmasq: %.2f\n", a/b}'
