#!/usr/bin/env bash
# dns_test.sh SCENARIO: p2proxy-client's private DNS in network namespaces:
#   C (p2proxy-client: TUN with the resolver at 100.96.128.1; /etc/netns/C/resolv.conf names U)
#   C --198.18.3.0/24-- U (dnsmasq at 198.18.3.2: the machine's "original" upstream resolver,
#                          with tcpdump capturing every DNS packet it sees)
# Private zone example.internal: vault -> 100.96.128.20, *.apps -> 100.96.128.30.
#   answers   dig over UDP and TCP: A, AAAA (NODATA), NXDOMAIN, case and trailing dot, EDNS,
#             PTR, wildcard, malformed input survives; example.com is answered by the upstream;
#             the capture at the upstream never shows a name under example.internal (I2)
#   hook      getent resolves through the rewritten resolv.conf; SIGTERM restores it byte for
#             byte; after kill -9 it is restored by the next start (and by --restore-dns)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
scenario=${1:?usage: dns_test.sh SCENARIO}
CLIENT=${P2P_CLIENT_BIN:?set P2P_CLIENT_BIN to the p2proxy-client binary}
require_root_or_skip dig dnsmasq tcpdump getent wg

C="p2dC-$E2E_ID"; U="p2dU-$E2E_ID"
netns_add "$C"; netns_add "$U"
veth_link "$C" 198.18.3.1/24 "$U" 198.18.3.2/24

# The client namespace's own resolv.conf (ip netns exec bind-mounts it over /etc/resolv.conf),
# with content that must come back byte for byte: comments, options, no trailing newline.
mkdir -p "/etc/netns/$C"
E2E_FILES+=("/etc/netns/$C/resolv.conf")
E2E_DIRS+=("/etc/netns/$C")
printf '# the test machine'"'"'s own resolver\nsearch corp.test\nnameserver 198.18.3.2\noptions edns0 timeout:2' \
  > "/etc/netns/$C/resolv.conf"
cp "/etc/netns/$C/resolv.conf" "$E2E_TMP/resolv.orig"

# ---- the upstream ----
printf 'address=/example.com/198.18.7.7\naddress=/other.test/198.18.7.8\n' > "$E2E_TMP/dnsmasq.conf"
bg "$U" tcpdump tcpdump --immediate-mode -Z root -i any -n -U -w "$E2E_TMP/upstream.pcap" port 53
TCPDUMP_PID=$BG_PID
wait_until 10 "tcpdump capturing" grep -q "listening on" "$E2E_TMP/tcpdump.log"
bg "$U" dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=198.18.3.2 \
  --bind-interfaces --port=53 --conf-file="$E2E_TMP/dnsmasq.conf" --pid-file="$E2E_TMP/dnsmasq.pid" \
  --log-queries --log-facility=-
wait_until 10 "dnsmasq listening" ip netns exec "$U" sh -c "ss -lun | grep -q 198.18.3.2:53"

# ---- the client ----
wgif="p2d${E2E_ID}"; wgif=${wgif:0:15}
E2E_FILES+=("/var/run/wireguard/$wgif.sock")
key_c=$(wg genkey)
pub_peer=$(wg genkey | wg pubkey)
printf '[Interface]\nPrivateKey = %s\nAddress = 100.96.0.5/32\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 100.96.128.0/18\n' \
  "$key_c" "$pub_peer" > "$E2E_TMP/$wgif.conf"
cat > "$E2E_TMP/client.json" <<JSON
{
  "dns": {"state_dir": "$E2E_TMP/state"},
  "zones": ["example.internal"],
  "resources": [
    {"name": "vault.example.internal", "address": "100.96.128.20"},
    {"name": "*.apps.example.internal", "address": "100.96.128.30"}
  ]
}
JSON

CLIENT_N=0
start_client() {
  CLIENT_N=$((CLIENT_N + 1))
  bg "$C" "client$CLIENT_N" "$CLIENT" --wg-config="$E2E_TMP/$wgif.conf" --config="$E2E_TMP/client.json"
  CLIENT_PID=$BG_PID
  wait_until 10 "client resolver up (client$CLIENT_N.log)" grep -q 'event=client.dns_ready' "$E2E_TMP/client$CLIENT_N.log"
}
stop_client() {  # SIGNAL
  kill "-$1" "$CLIENT_PID"
  for _ in $(seq 100); do kill -0 "$CLIENT_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$CLIENT_PID" 2>/dev/null && fail "client still running 10 s after SIG$1"
  wait "$CLIENT_PID" 2>/dev/null || true
}
in_c() { ip netns exec "$C" "$@"; }
digc() { in_c dig +time=3 +tries=1 @100.96.128.1 "$@"; }

expect_answer() {  # NAME TYPE WANT [dig options...]
  local name=$1 type=$2 want=$3
  shift 3
  local got
  got=$(digc +short "$@" "$name" "$type") || fail "dig $name $type $* failed"
  [ "$got" = "$want" ] || fail "dig $name $type $*: got '$got', want '$want'"
  log "dig $* $name $type -> $got"
}
expect_status() {  # NAME TYPE STATUS ANSWERS [dig options...]
  local name=$1 type=$2 status=$3 answers=$4
  shift 4
  local out
  out=$(digc "$@" "$name" "$type") || fail "dig $name $type failed"
  grep -q "status: $status," <<<"$out" || fail "dig $name $type: want $status: $out"
  grep -q "ANSWER: $answers," <<<"$out" || fail "dig $name $type: want $answers answers: $out"
  log "dig $* $name $type -> $status, $answers answers"
}

answers() {
  start_client
  expect_answer vault.example.internal A 100.96.128.20
  expect_answer vault.example.internal A 100.96.128.20 +tcp
  expect_answer VAULT.Example.INTERNAL. A 100.96.128.20
  expect_answer x.apps.example.internal A 100.96.128.30
  expect_status vault.example.internal AAAA NOERROR 0
  expect_status vault.example.internal AAAA NOERROR 0 +tcp
  expect_status missing.example.internal A NXDOMAIN 0
  expect_status missing.example.internal TXT NXDOMAIN 0 +tcp
  expect_status vault.example.internal ANY NOERROR 1
  # EDNS0: dig sends OPT by default and must get OPT back; without it, no OPT.
  # (grep reads captured text: with pipefail, `dig | grep -q` can fail when grep exits first.)
  out=$(digc vault.example.internal A) || fail "dig (EDNS) failed"
  grep -q "EDNS: version: 0" <<<"$out" || fail "no OPT in the answer to an EDNS query: $out"
  out=$(digc +noedns vault.example.internal A) || fail "dig +noedns failed"
  if grep -q "EDNS:" <<<"$out"; then fail "OPT in the answer to a query without EDNS: $out"; fi
  log "EDNS0 query answered with OPT; plain query without"
  got=$(digc +short -x 100.96.128.20) || fail "dig -x failed"
  [ "$got" = "vault.example.internal." ] || fail "PTR 100.96.128.20: got '$got'"
  log "dig -x 100.96.128.20 -> $got"
  expect_status 99.128.96.100.in-addr.arpa PTR NXDOMAIN 0
  # Everything else goes to the machine's original resolver.
  expect_answer example.com A 198.18.7.7
  expect_answer www.example.com A 198.18.7.7 +tcp
  expect_answer other.test A 198.18.7.8 +noedns
  # Malformed input: garbage, a header only, a compression loop. Each gets FORMERR or nothing;
  # the resolver keeps answering.
  in_c bash -c 'printf "\x12\x34" > /dev/udp/100.96.128.1/53' || true
  in_c bash -c 'printf "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01" > /dev/udp/100.96.128.1/53' || true
  in_c bash -c 'head -c 3000 /dev/urandom > /dev/udp/100.96.128.1/53' || true
  expect_answer vault.example.internal A 100.96.128.20
  kill -0 "$CLIENT_PID" || fail "the client died on malformed input"
  stop_client TERM
  cmp -s "$E2E_TMP/resolv.orig" "/etc/netns/$C/resolv.conf" || fail "resolv.conf not restored after SIGTERM"
  # I2: the upstream saw example.com and friends, and nothing under the private zone.
  kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null || true
  tcpdump -n -r "$E2E_TMP/upstream.pcap" > "$E2E_TMP/upstream.txt" 2>/dev/null
  grep -qi "example.com" "$E2E_TMP/upstream.txt" || fail "the capture saw no upstream query at all: $(head "$E2E_TMP/upstream.txt")"
  if grep -qi "example.internal\|in-addr.arpa" "$E2E_TMP/upstream.txt"; then
    fail "a private name reached the upstream: $(grep -i 'example.internal\|in-addr.arpa' "$E2E_TMP/upstream.txt" | head -3)"
  fi
  log "upstream capture: $(wc -l < "$E2E_TMP/upstream.txt") packets, none for a private name"
}

hook() {
  start_client
  grep -q "nameserver 100.96.128.1" "/etc/netns/$C/resolv.conf" || fail "resolv.conf not rewritten: $(cat "/etc/netns/$C/resolv.conf")"
  got=$(in_c getent hosts vault.example.internal | awk '{print $1}')
  [ "$got" = 100.96.128.20 ] || fail "getent hosts vault.example.internal: '$got'"
  log "getent hosts vault.example.internal -> $got"
  got=$(in_c getent hosts example.com | awk '{print $1}')
  [ "$got" = 198.18.7.7 ] || fail "getent hosts example.com: '$got'"
  log "getent hosts example.com -> $got (forwarded)"
  stop_client TERM
  cmp -s "$E2E_TMP/resolv.orig" "/etc/netns/$C/resolv.conf" || fail "resolv.conf differs after SIGTERM"
  log "SIGTERM: resolv.conf restored byte for byte"
  # A crash leaves our resolv.conf behind; the next start puts the original back first.
  start_client
  stop_client KILL
  grep -q "nameserver 100.96.128.1" "/etc/netns/$C/resolv.conf" || fail "after kill -9 resolv.conf should still be ours"
  ip -n "$C" link del "$wgif" 2>/dev/null || true
  in_c "$CLIENT" --restore-dns --config="$E2E_TMP/client.json" > "$E2E_TMP/restore.log" 2>&1 || fail "--restore-dns failed: $(cat "$E2E_TMP/restore.log")"
  cmp -s "$E2E_TMP/resolv.orig" "/etc/netns/$C/resolv.conf" || fail "--restore-dns did not restore resolv.conf"
  log "kill -9, then --restore-dns: restored byte for byte"
  start_client
  stop_client KILL
  ip -n "$C" link del "$wgif" 2>/dev/null || true
  start_client
  grep -q 'event=dns.hook_recovered' "$E2E_TMP/client$CLIENT_N.log" || fail "the restart did not report recovering resolv.conf"
  got=$(in_c getent hosts vault.example.internal | awk '{print $1}')
  [ "$got" = 100.96.128.20 ] || fail "after the restart getent gives '$got'"
  stop_client TERM
  cmp -s "$E2E_TMP/resolv.orig" "/etc/netns/$C/resolv.conf" || fail "resolv.conf differs after kill -9 and a restart"
  log "kill -9, restart (recovered), SIGTERM: restored byte for byte"
}

case "$scenario" in
  answers) answers ;;
  hook) hook ;;
  *) fail "unknown scenario '$scenario'" ;;
esac
log "PASS: dns $scenario"
