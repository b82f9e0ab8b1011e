#!/usr/bin/env bash
# site_test.sh SCENARIO: p2proxy-site in static mode, reached from a wireguard-go client, in three
# network namespaces:
#   C (client, wireguard-go, 100.96.0.5)  --198.18.1.0/24--  S (p2proxy-site, node 100.96.0.10)
#   S  --198.19.0.0/24 (the site's LAN)--  L (targets at 198.19.0.2: nginx, sshd, dnsmasq, iperf3, echo)
# Resources: web 100.96.128.20:80, ssh .21:22, dns .22:53/udp, iperf .23:5201, echo .24:7,
# flood .25:9 (a target that never stops sending).
#   basics      curl, ssh, dig, iperf3 both ways; two resources reach their own targets;
#               a non-resource port is refused (RST) and counted; no listening socket (ss)
#   dialout     the site has no listen port and dials out to the client; everything still works
#   bulk        1 GiB through the site keeps its checksum (P2P_E2E_BULK_MB overrides the size)
#   storm       1,000 concurrent connections with correct bytes; the site's RSS is reported
#   slowreader  a client that stops reading does not make the site's memory grow
#   reload      SIGHUP applies an edited config live: a resource added answers, access withdrawn
#               refuses new connections and closes the open one (audited "revoked"), a resource
#               removed stops answering, a broken config or a new key is refused whole, and an
#               unrelated connection open throughout keeps its bytes flowing
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
scenario=${1:?usage: site_test.sh SCENARIO}
SITE=${P2P_SITE_BIN:?set P2P_SITE_BIN to the p2proxy-site binary}
STORM=${P2P_STORM_BIN:?set P2P_STORM_BIN to the conn_storm binary}
require_root_or_skip wireguard-go wg curl ssh sshd dig dnsmasq iperf3 nginx socat

C="p2sC-$E2E_ID"; S="p2sS-$E2E_ID"; L="p2sL-$E2E_ID"
netns_add "$C"; netns_add "$S"; netns_add "$L"
veth_link "$C" 198.18.1.1/24 "$S" 198.18.1.2/24
veth_link "$S" 198.19.0.1/24 "$L" 198.19.0.2/24
ip -n "$L" route add default via 198.19.0.1

wgif="wgc${E2E_ID}"; wgif=${wgif:0:15}
E2E_FILES+=("/var/run/wireguard/$wgif.sock")
key_c=$(wg genkey); pub_c=$(echo "$key_c" | wg pubkey)
key_s=$(wg genkey); pub_s=$(echo "$key_s" | wg pubkey)

# ---- the LAN's targets ----
start_targets() {
  mkdir -p "$E2E_TMP/www"
  echo "p2proxy site test page $E2E_ID" > "$E2E_TMP/www/index.html"
  cat > "$E2E_TMP/nginx.conf" <<NGINX
daemon off;
user root;
worker_processes 1;
pid $E2E_TMP/nginx.pid;
error_log $E2E_TMP/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $E2E_TMP/nginx-body;
  proxy_temp_path $E2E_TMP/nginx-proxy;
  fastcgi_temp_path $E2E_TMP/nginx-fcgi;
  uwsgi_temp_path $E2E_TMP/nginx-uwsgi;
  scgi_temp_path $E2E_TMP/nginx-scgi;
  server { listen 198.19.0.2:8080; root $E2E_TMP/www; }
}
NGINX
  bg "$L" nginx nginx -c "$E2E_TMP/nginx.conf"
  printf 'address=/db.lan/198.19.0.50\n' > "$E2E_TMP/dnsmasq.conf"
  bg "$L" dnsmasq dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=198.19.0.2 \
    --bind-interfaces --port=53 --conf-file="$E2E_TMP/dnsmasq.conf" --pid-file="$E2E_TMP/dnsmasq.pid"
  ssh-keygen -q -t ed25519 -N '' -f "$E2E_TMP/hostkey"
  ssh-keygen -q -t ed25519 -N '' -f "$E2E_TMP/userkey"
  cp "$E2E_TMP/userkey.pub" "$E2E_TMP/authorized_keys"
  chmod 600 "$E2E_TMP/authorized_keys"
  mkdir -p /run/sshd
  bg "$L" sshd /usr/sbin/sshd -D -e -p 22 -o ListenAddress=198.19.0.2 -h "$E2E_TMP/hostkey" \
    -o AuthorizedKeysFile="$E2E_TMP/authorized_keys" -o PasswordAuthentication=no \
    -o PermitRootLogin=prohibit-password -o StrictModes=no -o UsePAM=no -o PidFile="$E2E_TMP/sshd.pid"
  bg "$L" echo "$STORM" echo 7
  bg "$L" flood "$STORM" flood 9
  wait_until 10 "targets listening" ip netns exec "$L" sh -c \
    "ss -ltn | grep -q 198.19.0.2:8080 && ss -ltn | grep -q 198.19.0.2:22 && ss -ltn | grep -q ':7 ' && ss -lun | grep -q 198.19.0.2:53"
}

# ---- the site ----
start_site() {  # listen_port peer_endpoint
  local listen=$1 endpoint=$2 extra="" limits=""
  [ -n "${SITE_LIMITS:-}" ] && limits=", \"limits\": $SITE_LIMITS"
  [ -n "$endpoint" ] && extra=", \"endpoint\": \"$endpoint\", \"persistent_keepalive\": 5"
  cat > "$E2E_TMP/site.json" <<JSON
{
  "wireguard": {"private_key": "$key_s", "listen_port": $listen, "address": "100.96.0.10"},
  "peers": [{"public_key": "$pub_c", "allowed_ips": ["100.96.0.5/32"], "user": "tester"$extra}],
  "resources": [
    {"name": "web", "address": "100.96.128.20", "port": 80, "protocol": "tcp", "target": "198.19.0.2:8080", "access": {"users": ["tester"]}},
    {"name": "ssh", "address": "100.96.128.21", "port": 22, "protocol": "tcp", "target": "198.19.0.2:22", "access": {"users": ["tester"]}},
    {"name": "dns", "address": "100.96.128.22", "port": 53, "protocol": "udp", "target": "198.19.0.2:53", "access": {"users": ["tester"]}},
    {"name": "iperf", "address": "100.96.128.23", "port": 5201, "protocol": "tcp", "target": "198.19.0.2:5201", "access": {"users": ["tester"]}},
    {"name": "echo", "address": "100.96.128.24", "port": 7, "protocol": "tcp", "target": "198.19.0.2:7", "access": {"users": ["tester"]}},
    {"name": "flood", "address": "100.96.128.25", "port": 9, "protocol": "tcp", "target": "198.19.0.2:9", "access": {"users": ["tester"]}},
    {"name": "closed-web", "address": "100.96.128.26", "port": 80, "protocol": "tcp", "target": "198.19.0.2:8080", "access": {"users": ["someone-else"]}},
    {"name": "closed-dns", "address": "100.96.128.27", "port": 53, "protocol": "udp", "target": "198.19.0.2:53"}
  ],
  "audit_log": "$E2E_TMP/audit.jsonl"$limits
}
JSON
  bg "$S" site "$SITE" --config="$E2E_TMP/site.json"
  SITE_PID=$BG_PID
  wait_until 10 "site up" grep -q 'event=site.up' "$E2E_TMP/site.log"
}

# ---- the client: wireguard-go ----
start_client() {  # listen_port site_endpoint
  bg "$C" wireguard-go env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$wgif"
  wait_until 10 "wireguard-go UAPI" test -S "/var/run/wireguard/$wgif.sock"
  echo "$key_c" > "$E2E_TMP/key_c"
  local args=(private-key "$E2E_TMP/key_c" listen-port "$1" peer "$pub_s" allowed-ips 100.96.128.0/18,100.96.0.10/32)
  [ -n "${2:-}" ] && args+=(endpoint "$2")
  ip netns exec "$C" wg set "$wgif" "${args[@]}"
  ip -n "$C" addr add 100.96.0.5/32 dev "$wgif"
  ip -n "$C" link set "$wgif" up
  ip -n "$C" route add 100.96.128.0/18 dev "$wgif"
  ip -n "$C" route add 100.96.0.10/32 dev "$wgif"
}

site_rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$SITE_PID/status"; }
site_hwm_kb() { awk '/^VmHWM/{print $2}' "/proc/$SITE_PID/status"; }
in_c() { ip netns exec "$C" "$@"; }

# site_stat NAME N: the value of NAME in the site's Nth stats line (asks for it with SIGUSR1).
site_stat() {
  kill -USR1 "$SITE_PID"
  wait_until 5 "stats line $2" sh -c "[ \$(grep -c 'event=site.stats' '$E2E_TMP/site.log') -ge $2 ]"
  grep 'event=site.stats' "$E2E_TMP/site.log" | sed -n "${2}p" | grep -o "$1=[0-9]*" | cut -d= -f2
}

check_no_listeners() {
  local out
  out=$(ip netns exec "$S" ss -lntup | grep -F "pid=$SITE_PID," || true)
  if grep -q '^tcp' <<<"$out"; then fail "p2proxy-site has a listening TCP socket: $out"; fi
  log "ss -lntup in the site's namespace, p2proxy-site's entries: ${out:-none}"
}

basics() {
  wait_until 20 "ping the site's node address through the tunnel" in_c ping -c 1 -W 1 100.96.0.10
  in_c curl -sS --max-time 10 http://100.96.128.20/ > "$E2E_TMP/page" || fail "curl through the site"
  grep -q "p2proxy site test page $E2E_ID" "$E2E_TMP/page" || fail "wrong page: $(cat "$E2E_TMP/page")"
  log "curl http://100.96.128.20/ -> $(cat "$E2E_TMP/page")"
  out=$(in_c ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ConnectTimeout=10 -i "$E2E_TMP/userkey" root@100.96.128.21 'echo ssh-through-site-ok' 2>"$E2E_TMP/ssh.err") \
        || fail "ssh through the site: $(cat "$E2E_TMP/ssh.err")"
  [ "$out" = ssh-through-site-ok ] || fail "ssh printed '$out'"
  log "ssh root@100.96.128.21 -> $out"
  ans=$(in_c dig +short +time=3 +tries=2 @100.96.128.22 db.lan A) || fail "dig through the site failed: $ans"
  [ "$ans" = 198.19.0.50 ] || fail "dig through the site answered '$ans'"
  log "dig @100.96.128.22 db.lan -> $ans"
  bg "$L" iperf3-server iperf3 -s -1 -p 5201 -B 198.19.0.2
  wait_until 5 "iperf3 server" ip netns exec "$L" sh -c "ss -ltn | grep -q :5201"
  in_c iperf3 -c 100.96.128.23 -p 5201 -t 2 -J > "$E2E_TMP/up.json" || fail "iperf3 upload"
  bg "$L" iperf3-server2 iperf3 -s -1 -p 5201 -B 198.19.0.2
  wait_until 5 "iperf3 server" ip netns exec "$L" sh -c "ss -ltn | grep -q :5201"
  in_c iperf3 -c 100.96.128.23 -p 5201 -t 2 -R -J > "$E2E_TMP/down.json" || fail "iperf3 download"
  for f in up down; do
    bps=$(grep -o '"bits_per_second":[[:space:]]*[0-9.e+]*' "$E2E_TMP/$f.json" | tail -n1 | awk -F: '{print $2}')
    awk -v b="$bps" 'BEGIN{exit !(b > 0)}' || fail "iperf3 $f moved nothing"
    log "iperf3 $f through the site: $(awk -v b="$bps" 'BEGIN{printf "%.0f Mbit/s", b/1e6}')"
  done
  kill -USR1 "$SITE_PID"
  wait_until 5 "stats line" grep -q 'event=site.stats' "$E2E_TMP/site.log"
  log "$(grep 'event=site.stats' "$E2E_TMP/site.log" | tail -n1)"
  # Not a resource: a port nobody serves at a resource address is refused with RST.
  rst0=$(site_stat tcp_rst_sent 2)
  if in_c timeout 5 bash -c 'exec 3<>/dev/tcp/100.96.128.20/81' 2>"$E2E_TMP/refused.err"; then fail "port 81 answered"; fi
  grep -qi "refused" "$E2E_TMP/refused.err" || fail "port 81 was not refused: $(cat "$E2E_TMP/refused.err")"
  rst1=$(site_stat tcp_rst_sent 3)
  [ "$rst1" -gt "$rst0" ] || fail "the refusal was not counted (tcp_rst_sent $rst0 -> $rst1)"
  log "refused connection counted: tcp_rst_sent $rst0 -> $rst1"
  # Deny by default: a resource whose access does not name this peer's user resets the
  # connection without touching the target, and a udp resource with no access drops datagrams;
  # both refusals are audited with the peer's key and user, and the allowed ones too.
  if in_c timeout 5 bash -c 'exec 3<>/dev/tcp/100.96.128.26/80; printf "GET / HTTP/1.0\r\n\r\n" >&3; cat <&3' >"$E2E_TMP/denied.out" 2>"$E2E_TMP/denied.err"; then
    grep -q "site test page" "$E2E_TMP/denied.out" && fail "a denied peer got the page through closed-web"
  fi
  if ans=$(in_c dig +short +time=1 +tries=1 @100.96.128.27 db.lan A); then [ -z "$ans" ] || fail "a denied udp flow was answered: $ans"; fi
  wait_until 5 "the tcp refusal audited" grep -q "\"resource\":\"closed-web\".*\"peer_key\":\"$pub_c\".*\"user\":\"tester\".*\"decision\":\"deny\"" "$E2E_TMP/audit.jsonl"
  wait_until 5 "the udp refusal audited" grep -q '"kind":"udp","resource":"closed-dns".*"decision":"deny"' "$E2E_TMP/audit.jsonl"
  wait_until 5 "allowed tcp connections audited" grep -q '"kind":"tcp","resource":"web".*"decision":"allow"' "$E2E_TMP/audit.jsonl"
  log "deny by default: closed-web reset, closed-dns dropped, both audited; $(grep -c . "$E2E_TMP/audit.jsonl") audit events"
  check_no_listeners
}

case "$scenario" in
  basics)
    start_targets
    start_site 51820 ""
    start_client 51821 198.18.1.2:51820
    basics
    ;;
  dialout)
    start_targets
    start_client 51821 ""
    start_site 0 198.18.1.1:51821
    basics
    ;;
  bulk)
    start_targets
    start_site 51820 ""
    start_client 51821 198.18.1.2:51820
    mb=${P2P_E2E_BULK_MB:-1024}
    wait_until 20 "tunnel up" in_c ping -c 1 -W 1 100.96.0.10
    # Deterministic pseudo-random bytes (AES-CTR of zeros), hashed on both ends.
    want=$(head -c "$((mb << 20))" /dev/zero | openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff -iv 0 2>/dev/null | sha256sum | cut -d' ' -f1)
    got=$(head -c "$((mb << 20))" /dev/zero | openssl enc -aes-128-ctr -nosalt -K 00112233445566778899aabbccddeeff -iv 0 2>/dev/null \
          | in_c socat -b 65536 -t 30 - TCP:100.96.128.24:7 | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] || fail "$mb MiB echoed through the site: checksum $got, expected $want"
    log "$mb MiB up and back through the site: sha256 $got matches"
    ;;
  storm)
    start_targets
    # One peer opens every connection here, so its cap (256 by default) is raised above the storm;
    # e2e:limits:two_peers covers what happens at the cap.
    SITE_LIMITS='{"max_tcp_connections_per_peer": 4096}'
    # A soft limit on descriptors well below the storm: the site must raise its own to the hard
    # limit (it needs one socket per target connection), as under a service manager's default.
    ulimit -Sn 512
    conns=${P2P_E2E_STORM_CONNS:-1000}
    hard=$(ulimit -Hn)
    if [ "$hard" != unlimited ] && [ "$hard" -lt $((conns + 100)) ]; then
      conns=$((hard - 100)); log "the hard limit on open files is $hard: a storm of $conns connections"
    fi
    start_site 51820 ""
    start_client 51821 198.18.1.2:51820
    wait_until 20 "tunnel up" in_c ping -c 1 -W 1 100.96.0.10
    rss0=$(site_rss_kb)
    in_c "$STORM" storm 100.96.128.24:7 "$conns" 65536 > "$E2E_TMP/storm.out" \
      || fail "storm: $(cat "$E2E_TMP/storm.out")"
    log "$(cat "$E2E_TMP/storm.out")"
    log "site RSS: ${rss0} kB before, peak $(site_hwm_kb) kB, now $(site_rss_kb) kB"
    ;;
  slowreader)
    start_targets
    start_site 51820 ""
    start_client 51821 198.18.1.2:51820
    wait_until 20 "tunnel up" in_c ping -c 1 -W 1 100.96.0.10
    rss0=$(site_rss_kb)
    # The flood target writes without end; our client never reads.
    bg "$C" stall "$STORM" stall 100.96.128.25:9 8
    STALL_PID=$BG_PID
    # Sample the site's memory while the stall lasts.
    peak=$rss0
    for _ in $(seq 30); do
      r=$(site_rss_kb); [ "$r" -gt "$peak" ] && peak=$r
      kill -0 "$STALL_PID" 2>/dev/null || break
      sleep 0.25
    done
    grew=$((peak - rss0))
    log "site RSS while a reader stalls on an endless stream: ${rss0} kB -> peak ${peak} kB (+${grew} kB)"
    [ "$grew" -lt $((64 * 1024)) ] || fail "site memory grew by ${grew} kB for one stalled reader"
    ;;
  reload)
    start_targets
    start_site 51820 ""
    start_client 51821 198.18.1.2:51820
    wait_until 20 "tunnel up" in_c ping -c 1 -W 1 100.96.0.10
    # edit_config PYTHON: change site.json (d is the parsed config) and send SIGHUP; waits until
    # the site logged the Nth apply (or refusal).
    edit_config() {
      python3 - "$E2E_TMP/site.json" "$1" <<'PY'
import json, sys
path, code = sys.argv[1], sys.argv[2]
d = json.load(open(path))
exec(code)
json.dump(d, open(path, "w"), indent=1)
PY
      kill -HUP "$SITE_PID"
    }
    count_events() { grep -c "event=$1" "$E2E_TMP/site.log" || true; }
    # Two connections held open: echo (untouched by every change) and web (its access goes).
    : > "$E2E_TMP/echo.in"; : > "$E2E_TMP/web.in"
    bg "$C" keep_echo python3 "$here/tools/hold_conn.py" 100.96.128.24 7 "$E2E_TMP/echo.in" "$E2E_TMP/echo.out"
    bg "$C" keep_web python3 "$here/tools/hold_conn.py" 100.96.128.20 80 "$E2E_TMP/web.in" "$E2E_TMP/web.out"
    echo_line() {  # echo_line WORD: the held echo connection carries WORD there and back
      echo "$1" >> "$E2E_TMP/echo.in"
      wait_until 5 "echo of $1 on the connection held open" grep -qx "$1" "$E2E_TMP/echo.out"
    }
    printf 'GET / HTTP/1.1\r\nHost: web\r\n\r\n' >> "$E2E_TMP/web.in"
    wait_until 5 "the held web connection answered" grep -q "site test page" "$E2E_TMP/web.out"
    echo_line before

    # 1. A resource added: web2 at .28 answers; counted from SIGHUP to the first page.
    t0=$(date +%s%N)
    edit_config 'd["resources"].append({"name": "web2", "address": "100.96.128.28", "port": 80, "protocol": "tcp", "target": "198.19.0.2:8080", "access": {"users": ["tester"]}})'
    wait_until 5 "apply 1" sh -c "[ \$(grep -c event=site.applied '$E2E_TMP/site.log') -ge 1 ]"
    wait_until 5 "web2 answers" in_c curl -sf --max-time 2 -o /dev/null http://100.96.128.28/
    t1=$(date +%s%N)
    log "resource added by SIGHUP answered $(( (t1 - t0) / 1000000 )) ms after the signal"
    grep 'event=site.applied' "$E2E_TMP/site.log" | tail -n1 | grep -q 'resources_added=1' || fail "apply 1 did not add one resource: $(grep event=site.applied "$E2E_TMP/site.log")"
    echo_line after-add

    # 2. Access withdrawn from web: a new connection is refused, the open one closed and audited.
    edit_config 'next(r for r in d["resources"] if r["name"] == "web")["access"] = {"users": ["someone-else"]}'
    wait_until 5 "apply 2" sh -c "[ \$(grep -c event=site.applied '$E2E_TMP/site.log') -ge 2 ]"
    grep 'event=site.applied' "$E2E_TMP/site.log" | tail -n1 | grep -q 'connections_closed=1' || fail "apply 2 did not close the held web connection: $(grep event=site.applied "$E2E_TMP/site.log" | tail -n1)"
    if in_c curl -sf --max-time 3 -o /dev/null http://100.96.128.20/; then fail "web still answered after its access was withdrawn"; fi
    wait_until 5 "the held web connection reset" grep -qx reset "$E2E_TMP/web.out.status"
    wait_until 5 "the revocation audited" grep -q '"resource":"web".*"decision":"deny".*revoked' "$E2E_TMP/audit.jsonl"
    log "access withdrawn: new connections to web refused, the open one closed and audited as revoked"
    echo_line after-revoke

    # 3. A resource removed: ssh no longer answers.
    in_c timeout 3 bash -c 'exec 3<>/dev/tcp/100.96.128.21/22' || fail "ssh did not answer before its removal"
    edit_config 'd["resources"] = [r for r in d["resources"] if r["name"] != "ssh"]'
    wait_until 5 "apply 3" sh -c "[ \$(grep -c event=site.applied '$E2E_TMP/site.log') -ge 3 ]"
    if in_c timeout 3 bash -c 'exec 3<>/dev/tcp/100.96.128.21/22' 2>/dev/null; then fail "ssh answered after its resource was removed"; fi
    log "resource removed: ssh no longer answers"

    # 4. Refused whole: a config that does not parse, and one with another private key.
    cp "$E2E_TMP/site.json" "$E2E_TMP/site.good.json"
    printf '{"wireguard": ' > "$E2E_TMP/site.json"; kill -HUP "$SITE_PID"
    wait_until 5 "broken config refused" sh -c "[ \$(grep -c event=site.reload_refused '$E2E_TMP/site.log') -ge 1 ]"
    cp "$E2E_TMP/site.good.json" "$E2E_TMP/site.json"
    edit_config "d['wireguard']['private_key'] = '$(wg genkey)'; d['resources'] = []"
    wait_until 5 "new key refused" sh -c "[ \$(grep -c event=site.reload_refused '$E2E_TMP/site.log') -ge 2 ]"
    grep 'event=site.reload_refused' "$E2E_TMP/site.log" | tail -n1 | grep -q 'private_key' || fail "the key change was not refused by name"
    in_c curl -sf --max-time 3 -o /dev/null http://100.96.128.28/ || fail "web2 stopped answering after a refused reload"
    [ "$(count_events site.applied)" -eq 3 ] || fail "a refused config was applied"
    log "a broken config and a key change were refused whole; the running config kept serving"

    # The echo connection was open through all of it and never closed.
    echo_line the-end
    [ ! -e "$E2E_TMP/echo.out.status" ] || fail "the held echo connection ended: $(cat "$E2E_TMP/echo.out.status")"
    grep -q "event=site.conn resource=echo" "$E2E_TMP/site.log" && fail "the held echo connection was closed by a reload"
    log "the connection held open to echo carried bytes before, between and after every reload"
    ;;
  *) fail "unknown scenario $scenario" ;;
esac
log "PASS: $scenario"
