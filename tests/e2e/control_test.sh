#!/usr/bin/env bash
# control_test.sh SCENARIO: p2proxy-server, a managed p2proxy-site and a managed p2proxy-client,
# all through the daemons as a user runs them, in network namespaces:
#   I ("the internet": p2proxy-server on 198.18.1.1:443, routes between the others)
#   S (p2proxy-site, 198.18.1.2)  --198.19.0.0/24 (its LAN)--  L (nginx 198.19.0.2:8080, echo :7)
#   C (p2proxy-client, 198.18.2.2; its resolv.conf is the namespace's own)
# Scenarios:
#   story    init; tokens (a garbage, used or other-kind token is refused and creates nothing:
#            tables shown before and after); a site and a device enroll; `resource add` answers at
#            the client's resolver and serves https://vault.example.internal with the server's
#            CA within 1 s (measured); openssl s_client shows the server-issued certificate;
#            requests reach `admin audit` with user, path and status; `user revoke` makes the
#            next connection fail within 1 s; `cert rotate` during a download loses nothing;
#            SIGTERM and kill -9 of the server leave traffic flowing, the nodes reconnect, a
#            change made meanwhile reaches them and audit made meanwhile arrives once
#   nat      a site behind a NAT (nftables masquerade with random ports, in S, for a host T on
#            10.10.0.0/24): the server learns the site's public endpoint, the NAT's address and
#            mapped port, from the site's WireGuard keepalives (not the port the site reports)
#   failover (on the deployment ranges of `ranges`) two sites serve one resource (s2 on its own uplink and LAN, S2/L2), s1 with 40 ms
#            added (tc netem): new connections use s2; kill -9 of s2 ten times: new connections
#            succeed through s1 (the time after each kill is measured, the median must be under
#            2 s); after s2 returns and answers its probes, new connections move back to it; a
#            keep-alive connection begun on s1 while s2 was down runs throughout, unbroken
#   userspace the client as a user without root, in userspace mode (no TUN: lwIP inside the
#            process): curl through its SOCKS5 proxy (names resolved by the client) and its HTTP
#            CONNECT proxy fetches https://vault.example.internal; ssh through
#            `p2proxy-client connect` as ProxyCommand runs a command on an sshd behind the site,
#            also with no client running (connect starts one for itself); a UDP resource answers
#            through SOCKS5 UDP ASSOCIATE; `status` and `status --json` show the server, the
#            proxies, the peers and the site each resource uses; refusals: a name that is not
#            private, a SOCKS4 client
#   ranges   a deployment on its own ranges (init --node_range 10.77.0.0/17 --resource_range
#            10.77.128.0/18): a client on a machine that routes 10.77.128.0/20 elsewhere (a
#            Docker-like bridge) refuses to start, naming both ranges and the setting, and
#            creates no interface; without that route the same client starts and serves
#            https://vault.example.internal from 10.77.128.x with its resolver on 10.77.128.1;
#            a second device in userspace mode on the same ranges does all `userspace` does
#            (SOCKS5, HTTP proxy, ssh ProxyCommand and forward, UDP ASSOCIATE)
#   embed    programs that embed the client through libp2proxy, as a user without root:
#            examples/c/dial.c (the C API) fetches a page from a tcp resource, and refuses a name
#            that is not a resource with its code; examples/python/fetch_vault.py (import
#            p2proxy) fetches https://vault.example.internal with Python's ssl over the socket
#            the library hands back; a Python NotFound for a public name
#   punch    both ends behind port-restricted NAT boxes: hole punching, direct traffic (see punch())
#   relay    the client behind a symmetric NAT: the server's blind relay; a stranger's frames are
#            not relayed (see relay())
#   tls      UDP dropped at the client: WireGuard over TLS to 443, the relay behind it, and back
#            to UDP when UDP is allowed again (see tls())
#   tls_site UDP dropped at the site: the site over TLS, a client through the relay (see tls_site())
#   rebind   the client's NAT rebinds during a 200 MiB download: it completes intact (see rebind())
#   systemd  the .deb under systemd in a throwaway box: systemctl start p2proxy-site
#            (see systemd_box())
#   crash    kill -9 of the server during a burst of 1,000 admin writes: the database passes
#            PRAGMA integrity_check and holds every write that was acknowledged (counted), and
#            the server starts again from it
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
scenario=${1:?usage: control_test.sh SCENARIO}
SERVER=${P2P_SERVER_BIN:?set P2P_SERVER_BIN to the p2proxy-server binary}
SITE=${P2P_SITE_BIN:?set P2P_SITE_BIN to the p2proxy-site binary}
CLIENT=${P2P_CLIENT_BIN:?set P2P_CLIENT_BIN to the p2proxy-client binary}
STORM=${P2P_STORM_BIN:?set P2P_STORM_BIN to the conn_storm binary}
require_root_or_skip curl openssl nginx dig python3 nft tc

I="p2cI-$E2E_ID"; S="p2cS-$E2E_ID"; L="p2cL-$E2E_ID"; C="p2cC-$E2E_ID"
netns_add "$I"; netns_add "$S"; netns_add "$L"; netns_add "$C"
veth_link "$I" 198.18.1.1/24 "$S" 198.18.1.2/24
veth_link "$I" 198.18.2.1/24 "$C" 198.18.2.2/24
veth_link "$S" 198.19.0.1/24 "$L" 198.19.0.2/24
ip netns exec "$I" sysctl -qw net.ipv4.ip_forward=1
ip -n "$S" route add default via 198.18.1.1
ip -n "$C" route add default via 198.18.2.1
ip -n "$L" route add default via 198.19.0.1

mkdir -p "/etc/netns/$C"
E2E_FILES+=("/etc/netns/$C/resolv.conf")
E2E_DIRS+=("/etc/netns/$C")
printf 'nameserver 198.18.2.1\n' > "/etc/netns/$C/resolv.conf"

in_i() { ip netns exec "$I" "$@"; }
in_c() { ip netns exec "$C" "$@"; }
admin() { in_i "$SERVER" admin --admin_socket="$E2E_TMP/admin.sock" "$@"; }
now_ms() { date +%s%3N; }

# ---- the LAN's app: nginx with a page and a large file ----
mkdir -p "$E2E_TMP/www"
echo "p2proxy vault page $E2E_ID" > "$E2E_TMP/www/index.html"
head -c $((64 << 20)) /dev/urandom > "$E2E_TMP/www/big.bin"
cat > "$E2E_TMP/nginx.conf" <<NGINX
daemon off;
user root;
worker_processes 1;
pid $E2E_TMP/nginx.pid;
error_log $E2E_TMP/nginx-error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $E2E_TMP/nginx-body;
  proxy_temp_path $E2E_TMP/nginx-proxy;
  fastcgi_temp_path $E2E_TMP/nginx-fcgi;
  uwsgi_temp_path $E2E_TMP/nginx-uwsgi;
  scgi_temp_path $E2E_TMP/nginx-scgi;
  server { listen 198.19.0.2:8080; root $E2E_TMP/www; limit_rate_after 1m; limit_rate 8m; }
}
NGINX
bg "$L" nginx nginx -c "$E2E_TMP/nginx.conf"
bg "$L" echo "$STORM" echo 7
wait_until 30 "nginx listening" ip netns exec "$L" sh -c "ss -ltn | grep -q 198.19.0.2:8080"

# ---- the server ----
SERVER_N=0
start_server() {
  SERVER_N=$((SERVER_N + 1))
  # The WireGuard socket on the public address: "the internet" routes from this namespace too,
  # and a socket on 0.0.0.0 would answer a node from the address of the interface towards it,
  # which its NAT does not know (a multi-homed server needs --wireguard_listen=PUBLIC_IP:PORT).
  bg "$I" "server$SERVER_N" "$SERVER" --state_dir="$E2E_TMP/server" --listen=0.0.0.0:443 \
    --wireguard_listen=198.18.1.1:51820 --admin_socket="$E2E_TMP/admin.sock" --log_level=info
  SERVER_PID=$BG_PID
  wait_until 30 "server up" grep -q 'event=server.up' "$E2E_TMP/server$SERVER_N.log"
}
in_i "$SERVER" init --state_dir="$E2E_TMP/server" --public_address=198.18.1.1:443 > "$E2E_TMP/init.out"
log "$(head -n 3 "$E2E_TMP/init.out" | tr '\n' ' ')"
start_server

# ---- the nodes ----
start_site() {  # extra flags
  bg "$S" site "$SITE" --state_dir="$E2E_TMP/site-state" --audit_log="$E2E_TMP/site-audit.jsonl" "$@"
  SITE_PID=$BG_PID
}
start_client() {  # extra flags
  cat > "$E2E_TMP/client.json" <<JSON
{"dns": {"state_dir": "$E2E_TMP/client-dns", "hook": "resolv.conf"}}
JSON
  bg "$C" client "$CLIENT" --state_dir="$E2E_TMP/client-state" --config="$E2E_TMP/client.json" \
    --interface="p2c${E2E_ID:0:8}" --uapi_dir="$E2E_TMP" "$@"
  CLIENT_PID=$BG_PID
}
token_of() { grep -o 'p2p1_[0-9a-f_]*' "$1" | head -n1; }
site_applied() { grep -c 'event=site.applied' "$E2E_TMP/site.log" || true; }

story() {
  admin user add alice > /dev/null
  admin role add admins > /dev/null
  admin user grant alice admins > /dev/null

  # Tokens: refused ones create nothing.
  admin token create site s1 > "$E2E_TMP/site-token.out"
  admin token create device --user alice > "$E2E_TMP/device-token.out"
  site_token=$(token_of "$E2E_TMP/site-token.out"); device_token=$(token_of "$E2E_TMP/device-token.out")
  [ -n "$site_token" ] && [ -n "$device_token" ] || fail "token create printed no token: $(cat "$E2E_TMP/site-token.out")"
  admin site list > "$E2E_TMP/sites-before.txt"
  log "sites before enrollment:"; cat "$E2E_TMP/sites-before.txt" >&2
  if in_i true && ip netns exec "$S" "$SITE" --state_dir="$E2E_TMP/bad-state" --server=198.18.1.1:443 \
       --token=p2p1_garbage > "$E2E_TMP/bad1.out" 2>&1; then fail "a garbage token was accepted"; fi
  grep -q "token" "$E2E_TMP/bad1.out" || fail "the garbage token's error does not say so: $(cat "$E2E_TMP/bad1.out")"
  if ip netns exec "$S" "$SITE" --state_dir="$E2E_TMP/bad-state2" --server=198.18.1.1:443 \
       --token="$device_token" > "$E2E_TMP/bad2.out" 2>&1; then fail "a device token enrolled a site"; fi
  grep -qi "kind\|device" "$E2E_TMP/bad2.out" || fail "the other-kind refusal does not say so: $(cat "$E2E_TMP/bad2.out")"
  admin site list > "$E2E_TMP/sites-after.txt"
  cmp -s "$E2E_TMP/sites-before.txt" "$E2E_TMP/sites-after.txt" || fail "a refused enrollment changed the site table"
  log "refused: a garbage token ($(tail -n1 "$E2E_TMP/bad1.out")) and a device token for a site ($(tail -n1 "$E2E_TMP/bad2.out")); the site table is unchanged"

  # A server that is not the one the token pins (its own CA and key, on another port) is
  # refused by the node before anything is sent; the token stays good for the real one.
  in_i "$SERVER" init --state_dir="$E2E_TMP/impostor" --public_address=198.18.1.1:8443 > /dev/null
  bg "$I" impostor "$SERVER" --state_dir="$E2E_TMP/impostor" --listen=0.0.0.0:8443 --wireguard_listen=off \
    --admin_socket="$E2E_TMP/impostor.sock"
  impostor_pid=$BG_PID
  wait_until 30 "impostor up" grep -q 'event=server.up' "$E2E_TMP/impostor.log"
  if ip netns exec "$S" "$SITE" --state_dir="$E2E_TMP/bad-state4" --server=198.18.1.1:8443 \
       --token="$site_token" > "$E2E_TMP/bad4.out" 2>&1; then fail "a node enrolled with a server its token does not pin"; fi
  grep -q "pinned" "$E2E_TMP/bad4.out" || fail "the pin refusal does not say so: $(cat "$E2E_TMP/bad4.out")"
  grep -q "event=server.enrolled" "$E2E_TMP/impostor.log" && fail "the impostor enrolled the node"
  kill "$impostor_pid"
  log "refused: a server whose key is not the pinned one ($(grep -o 'server key does not match[^"]*' "$E2E_TMP/bad4.out" | head -n1))"

  # Enrollment.
  start_site --server=198.18.1.1:443 --token="$site_token"
  wait_until 30 "site up" grep -q 'event=site.up' "$E2E_TMP/site.log"
  wait_until 30 "site online" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep -q online"
  # A used token is refused too.
  if ip netns exec "$S" "$SITE" --state_dir="$E2E_TMP/bad-state3" --server=198.18.1.1:443 \
       --token="$site_token" > "$E2E_TMP/bad3.out" 2>&1; then fail "a used token enrolled again"; fi
  grep -qi "used" "$E2E_TMP/bad3.out" || fail "the used-token refusal does not say so: $(cat "$E2E_TMP/bad3.out")"
  start_client --server=198.18.1.1:443 --token="$device_token"
  wait_until 30 "device online" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' device list | grep -q online"
  admin site list >&2
  admin device list >&2

  # The server is a WireGuard peer of every node at 100.96.0.1: it learned the site's endpoint
  # from the site's own keepalives, and the client reaches it through its tunnel.
  wait_until 30 "the site heard over WireGuard" grep -q 'event=server.wireguard_heard node=s-[^ ]* endpoint=198.18.1.2:' "$E2E_TMP/server1.log"
  wait_until 30 "ping 100.96.0.1 from the client" in_c ping -c 1 -W 1 100.96.0.1
  log "the server learned the site's endpoint over WireGuard: $(grep -o 'event=server.wireguard_heard node=s-[^ ]* endpoint=[^ ]*' "$E2E_TMP/server1.log" | head -n1); the client pings 100.96.0.1"

  # A resource, added with one command, serves https within about a second.
  admin ca export > "$E2E_TMP/ca.pem" 2>/dev/null
  n0=$(site_applied)
  t0=$(now_ms)
  admin resource add vault --domain vault.example.internal --site s1 --target 198.19.0.2:8080 \
    --kind https --allow role:admins > "$E2E_TMP/add.out"
  t1=$(now_ms)
  wait_until 30 "vault served" in_c curl -sf --max-time 2 --cacert "$E2E_TMP/ca.pem" -o "$E2E_TMP/page.html" https://vault.example.internal/
  t2=$(now_ms)
  grep -q "p2proxy vault page $E2E_ID" "$E2E_TMP/page.html" || fail "the page is not the app's: $(head -c 200 "$E2E_TMP/page.html")"
  log "$(cat "$E2E_TMP/add.out")"
  log "https://vault.example.internal served $((t2 - t1)) ms after 'resource add' returned (the command took $((t1 - t0)) ms)"
  addr=$(in_c dig +short @100.96.128.1 vault.example.internal A)
  log "the client's resolver answers vault.example.internal -> $addr"
  issuer=$(in_c openssl s_client -connect "$addr:443" -servername vault.example.internal </dev/null 2>/dev/null | openssl x509 -noout -issuer)
  grep -q "p2proxy CA" <<<"$issuer" || fail "the certificate is not the server's: $issuer"
  log "openssl s_client through the tunnel: $issuer"
  ls "$E2E_TMP/site-state" | grep -qiE 'pem|crt|key$' && [ -n "$(find "$E2E_TMP/site-state" -name '*vault*')" ] && fail "a certificate file appeared in the site's state dir"

  # Audit reaches the server.
  in_c curl -sf --max-time 5 --cacert "$E2E_TMP/ca.pem" -o /dev/null "https://vault.example.internal/index.html?audit=$E2E_ID"
  wait_until 30 "request in admin audit" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' audit query --resource vault --json | grep -q 'audit=$E2E_ID'"
  admin audit query --resource vault --json | grep "audit=$E2E_ID" | head -n1 | grep -q '"user":"alice"' || fail "the audit event lacks the user"
  log "audit: $(admin audit tail -n 3 | tail -n 1)"

  # cert rotate during a download: the download completes intact.
  want=$(sha256sum < "$E2E_TMP/www/big.bin" | cut -d' ' -f1)
  in_c curl -sf --max-time 60 --cacert "$E2E_TMP/ca.pem" -o "$E2E_TMP/big.out" https://vault.example.internal/big.bin &
  dl=$!
  wait_until 30 "download under way" sh -c "[ \$(stat -c %s '$E2E_TMP/big.out' 2>/dev/null || echo 0) -gt 2000000 ]"
  serial0=$(in_c openssl s_client -connect "$addr:443" -servername vault.example.internal </dev/null 2>/dev/null | openssl x509 -noout -serial)
  kill -0 "$dl" 2>/dev/null || fail "the download ended before the rotation (too fast to test)"
  admin cert rotate --resource vault > /dev/null
  wait_until 30 "new certificate served" sh -c "[ \"\$(ip netns exec '$C' openssl s_client -connect '$addr:443' -servername vault.example.internal </dev/null 2>/dev/null | openssl x509 -noout -serial)\" != '$serial0' ]"
  kill -0 "$dl" 2>/dev/null || fail "the download ended before the new certificate was served (too fast to test)"
  wait "$dl" || fail "the download failed across cert rotate"
  [ "$(sha256sum < "$E2E_TMP/big.out" | cut -d' ' -f1)" = "$want" ] || fail "the download across cert rotate is damaged"
  log "cert rotate: new serial served while a 64 MiB download in progress completed intact"

  # Revocation: a role removed refuses the next connection within about a second.
  # An HTTPS connection held open (keep-alive) across the revocation is closed by the site.
  : > "$E2E_TMP/held.in"
  bg "$C" held python3 "$here/tools/hold_conn.py" "$addr" 443 "$E2E_TMP/held.in" "$E2E_TMP/held.out"
  wait_until 30 "held connection open" sh -c "ip netns exec '$C' ss -tn | grep -q '$addr:443'"
  n0=$(site_applied)
  t1=$(now_ms)
  admin user revoke alice admins > /dev/null
  wait_until 30 "the site applied the revocation" sh -c "[ \$(grep -c event=site.applied '$E2E_TMP/site.log') -gt $n0 ]"
  t2=$(now_ms)
  # Each try must finish in 0.5 s as a granted one does (about 50 ms here); a refused one fails.
  wait_until 30 "vault refused" sh -c "! ip netns exec '$C' curl -sf --max-time 0.5 --cacert '$E2E_TMP/ca.pem' -o /dev/null https://vault.example.internal/"
  t3=$(now_ms)
  # The site closed the held connection (reset) and audited it. Alice lost every resource of the
  # site, so her device and the site also dropped each other as WireGuard peers: the reset may
  # not reach the client, whose socket then times out; nothing more passes either way.
  wait_until 30 "the held connection revoked at the site" grep -q '"resource":"vault".*"decision":"deny".*revoked' "$E2E_TMP/site-audit.jsonl"
  log "user revoke: the site applied it $((t2 - t1)) ms after the command, the next request failed by $((t3 - t1)) ms, the open connection was closed at the site and audited: $(grep -o '"reason":"revoked[^"]*"' "$E2E_TMP/site-audit.jsonl" | head -n1)"
  admin user grant alice admins > /dev/null
  wait_until 30 "vault back" in_c curl -sf --max-time 2 --cacert "$E2E_TMP/ca.pem" -o /dev/null https://vault.example.internal/

  # The server stops (SIGTERM, then kill -9): traffic goes on; a change made while it was away
  # and audit made meanwhile arrive when it is back.
  for how in TERM KILL; do
    kill -"$how" "$SERVER_PID"
    wait_until 30 "server gone" sh -c "! kill -0 $SERVER_PID 2>/dev/null"
    in_c curl -sf --max-time 5 --cacert "$E2E_TMP/ca.pem" -o /dev/null "https://vault.example.internal/?while_down=$how$E2E_ID" \
      || fail "traffic stopped with the server (SIG$how)"
    start_server
    wait_until 30 "site back" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep -q online"
    wait_until 30 "audit made while down arrived" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' audit query --resource vault --json | grep -q 'while_down=$how$E2E_ID'"
    count=$(admin audit query --resource vault --json --limit 1000 | grep -c "while_down=$how$E2E_ID" || true)
    [ "$count" -eq 1 ] || fail "the event made while the server was down (SIG$how) is stored $count times"
    log "server SIG$how: traffic went on; nodes reconnected; the event made meanwhile stored once"
  done
  admin resource add echo --domain echo.example.internal --site s1 --target 198.19.0.2:7 --kind tcp --port 7 \
    --allow user:alice > /dev/null
  wait_until 30 "echo served" sh -c "echo hi | ip netns exec '$C' timeout 3 socat -t 2 - TCP:echo.example.internal:7 | grep -q hi"
  log "a tcp resource added after the restarts answers through the site"
}

crash() {
  : > "$E2E_TMP/acked"
  # One writer, as an administrator's script would be: each user add that exits 0 was
  # acknowledged (committed) by the server.
  ( for n in $(seq 1 1000); do
      admin user add "u$n" > /dev/null 2>&1 || break
      echo "u$n" >> "$E2E_TMP/acked"
    done ) &
  writer=$!
  wait_until 120 "100 writes acknowledged" sh -c "[ \$(wc -l < '$E2E_TMP/acked') -ge 100 ]"
  kill -9 "$SERVER_PID"
  wait "$writer" || true
  acked=$(wc -l < "$E2E_TMP/acked")
  check=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])" "$E2E_TMP/server/server.db")
  [ "$check" = "ok" ] || fail "integrity_check after kill -9: $check"
  start_server
  admin user list --json > "$E2E_TMP/users.json"
  missing=$(python3 - "$E2E_TMP/users.json" "$E2E_TMP/acked" <<'PY'
import json, sys
users = {u["name"] if isinstance(u, dict) else u for u in json.load(open(sys.argv[1]))}
acked = [l.strip() for l in open(sys.argv[2]) if l.strip()]
print(len([a for a in acked if a not in users]))
PY
)
  [ "$missing" -eq 0 ] || fail "$missing acknowledged writes are missing after kill -9"
  stored=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))))" "$E2E_TMP/users.json")
  log "kill -9 after $acked acknowledged writes (of 1000 attempted): integrity_check ok, all $acked present after restart ($stored users stored: at most one more, the write in flight)"
  [ "$stored" -le $((acked + 1)) ] || fail "more users stored ($stored) than written ($acked + 1 in flight)"
}

nat() {
  T="p2cT-$E2E_ID"
  netns_add "$T"
  veth_link "$S" 10.10.0.1/24 "$T" 10.10.0.2/24
  ip -n "$T" route add default via 10.10.0.1
  ip netns exec "$S" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$S" nft -f - <<'NFT'
table ip p2p_nat {
  chain post {
    type nat hook postrouting priority srcnat;
    ip saddr 10.10.0.0/24 masquerade fully-random
  }
}
NFT
  admin token create site natted > "$E2E_TMP/nat-token.out"
  token=$(token_of "$E2E_TMP/nat-token.out")
  bg "$T" site "$SITE" --state_dir="$E2E_TMP/site-state" --server=198.18.1.1:443 --token="$token"
  wait_until 30 "site up" grep -q 'event=site.up' "$E2E_TMP/site.log"
  local_port=$(grep 'event=site.up' "$E2E_TMP/site.log" | head -n1 | grep -o 'listen_port=[0-9]*' | cut -d= -f2)
  [ -n "$local_port" ] || fail "the site logged no listen port"
  wait_until 30 "the site heard over WireGuard" grep -q 'event=server.wireguard_heard' "$E2E_TMP/server1.log"
  heard=$(grep -o 'event=server.wireguard_heard node=s-[^ ]* endpoint=[^ ]*' "$E2E_TMP/server1.log" | head -n1 | sed 's/.*endpoint=//')
  [ "${heard%:*}" = 198.18.1.2 ] || fail "the server heard the site from $heard, not from the NAT's address 198.18.1.2"
  [ "${heard##*:}" != "$local_port" ] || fail "the mapped port is the site's own ($local_port): the NAT did not translate it"
  wait_until 30 "site list shows it" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep natted | grep -q '$heard'"
  admin site list >&2
  log "a site at 10.10.0.2:$local_port behind a NAT: the server knows it as $heard (learned over WireGuard; the site itself never knew that address)"
}

failover() {
  reinit_ranges  # failover on a deployment's own ranges (the demo shows it on the default ones)
  S2="p2cS2-$E2E_ID"; L2="p2cL2-$E2E_ID"
  netns_add "$S2"; netns_add "$L2"
  veth_link "$I" 198.18.3.1/24 "$S2" 198.18.3.2/24
  veth_link "$S2" 198.19.1.1/24 "$L2" 198.19.1.2/24
  ip -n "$S2" route add default via 198.18.3.1
  ip -n "$L2" route add default via 198.19.1.1
  mkdir -p "$E2E_TMP/www2"
  echo "p2proxy vault page s2 $E2E_ID" > "$E2E_TMP/www2/index.html"
  sed -e "s|$E2E_TMP/www|$E2E_TMP/www2|; s|198.19.0.2:8080|198.19.1.2:8080|; s|$E2E_TMP/nginx.pid|$E2E_TMP/nginx2.pid|" \
    "$E2E_TMP/nginx.conf" > "$E2E_TMP/nginx2.conf"
  bg "$L2" nginx2 nginx -c "$E2E_TMP/nginx2.conf"
  wait_until 30 "nginx2 listening" ip netns exec "$L2" sh -c "ss -ltn | grep -q 198.19.1.2:8080"

  admin user add alice > /dev/null
  admin token create site s1 > "$E2E_TMP/t1.out"
  admin token create site s2 > "$E2E_TMP/t2.out"
  admin token create device --user alice > "$E2E_TMP/td.out"
  start_site --server=198.18.1.1:443 --token="$(token_of "$E2E_TMP/t1.out")" --listen_port=51820
  bg "$S2" site2 "$SITE" --state_dir="$E2E_TMP/site2-state" --server=198.18.1.1:443 \
    --token="$(token_of "$E2E_TMP/t2.out")" --listen_port=51820
  SITE2_PID=$BG_PID
  start_client --server=198.18.1.1:443 --token="$(token_of "$E2E_TMP/td.out")"
  wait_until 30 "both sites online" sh -c "[ \$('$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep -c online) -eq 2 ]"
  admin resource add vault --domain vault.example.internal --kind tcp --port 80 \
    --site s1 --target 198.19.0.2:8080 --site s2 --target 198.19.1.2:8080 --allow user:alice > /dev/null
  page() { in_c curl -sf --max-time "${1:-2}" http://vault.example.internal/ 2>/dev/null; }
  wait_until 30 "vault served" page

  # 40 ms more between the client and s1: new connections go to s2. With tc netem where the
  # kernel has it; else a userspace delay line in I that nftables hands the client's WireGuard
  # to s1 (this kernel has no sch_netem).
  dev1=$(ip -n "$S" -o addr show to 198.18.1.2 | awk '{print $2}')
  if ! ip netns exec "$S" tc qdisc add dev "$dev1" root netem delay 40ms 2>/dev/null; then
    bg "$I" delay python3 "$here/tools/udp_delay.py" 40000 198.18.1.2 51820 40
    wait_until 30 "delay line listening" ip netns exec "$I" sh -c "ss -lun | grep -q ':40000 '"
    ip netns exec "$I" nft -f - <<'NFT'
table ip p2p_delay {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip saddr 198.18.2.2 ip daddr 198.18.1.2 udp dport 51820 redirect to :40000
  }
}
NFT
    log "no sch_netem in this kernel: 40 ms added by a userspace delay line on the client's path to s1"
  fi
  wait_until 30 "new connections on s2" sh -c "ip netns exec '$C' curl -sf --max-time 2 http://vault.example.internal/ | grep -q 'page s2'"
  for _ in 1 2 3 4 5; do page | grep -q "page s2" || fail "a new connection did not use the faster site s2: $(page)"; done
  log "s1 has 40 ms more: five new connections in a row used s2 ($(grep -o 'event=client.preferred.*' "$E2E_TMP/client.log" | tail -n1))"
  # The client reports what its probes see; the server shows it.
  wait_until 30 "the client's health of both sites at the server" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep -c 'up 1/1 clients' | grep -qx 2"
  admin site list >&2
  cat > "$E2E_TMP/health_check.py" <<'PY'
import json, sys
sites = {s["name"]: s for s in json.load(sys.stdin)}
for name in ("s1", "s2"):
    h = sites[name]["health"]
    assert h["clients"] == 1 and h["up"] == 1 and h["rtt_micros_median"] > 0, (name, h)
# The smoothed round trips converge on the 40 ms the delay line adds.
assert sites["s1"]["health"]["rtt_micros_median"] > sites["s2"]["health"]["rtt_micros_median"] + 20000, sites
PY
  wait_until 30 "the server's view of s1 20 ms slower than s2" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list --json | python3 '$E2E_TMP/health_check.py'"
  admin site list >&2
  log "admin site list shows the client's probes: s1 and s2 up, s1's round trip over 20 ms longer than s2's"

  times=()
  for round in $(seq 1 10); do
    kill -9 "$SITE2_PID"
    t0=$(now_ms)
    wait_until 30 "a new connection through s1 (round $round)" sh -c "ip netns exec '$C' curl -sf --max-time 0.3 http://vault.example.internal/ | grep -q 'page $E2E_ID'"
    t1=$(now_ms)
    times+=($((t1 - t0)))
    if [ "$round" -eq 1 ]; then
      wait_until 30 "s2 down at the server" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep -q 'down 1/1 clients'"
      log "after kill -9 of s2 the server shows it: $(admin site list | grep 'down 1/1' | tr -s ' ')"
    fi
    if [ "$round" -eq 1 ]; then
      # A keep-alive connection begun while s2 is down: it lives on s1 through every round.
      rm -f "$E2E_TMP/ka.stop"
      bg "$C" keepalive python3 "$here/tools/keepalive_client.py" vault.example.internal 80 "$E2E_TMP/ka.stop" "$E2E_TMP/ka.out"
      KA_PID=$BG_PID
      wait_until 30 "keep-alive requests flowing" test -s "$E2E_TMP/ka.out.count"
    fi
    bg "$S2" site2 "$SITE" --state_dir="$E2E_TMP/site2-state" --listen_port=51820
    SITE2_PID=$BG_PID
    wait_until 60 "new connections back on s2 (round $round)" sh -c "ip netns exec '$C' curl -sf --max-time 2 http://vault.example.internal/ | grep -q 'page s2'"
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n '5p;6p' | awk '{s+=$1} END {print int(s/2)}')
  log "failover after kill -9 of s2, ten rounds (ms): $sorted; median $median ms"
  [ "$median" -lt 2000 ] || fail "median failover $median ms is not under 2 s"

  before=$(cat "$E2E_TMP/ka.out.count")
  wait_until 30 "keep-alive still answering" sh -c "[ \$(cat '$E2E_TMP/ka.out.count') -gt $before ]"
  touch "$E2E_TMP/ka.stop"
  wait_until 30 "keep-alive client done" test -s "$E2E_TMP/ka.out"
  grep -q '^ok' "$E2E_TMP/ka.out" || fail "the connection through s1 broke: $(cat "$E2E_TMP/ka.out")"
  grep -q 'pages=p2proxy vault page [^s,]*$' "$E2E_TMP/ka.out" || fail "the keep-alive connection left s1: $(cat "$E2E_TMP/ka.out")"
  log "a keep-alive connection begun on s1 while s2 was down ran through every round unbroken: $(cat "$E2E_TMP/ka.out")"
}

# lan_extras: the LAN's other apps, sshd (a key of our own, root login with it only) and a UDP
# echo, and their resources for alice (ssh.example.internal:22 tcp, udp.example.internal:9999 udp).
lan_extras() {
  start_sshd "$L" 198.19.0.2
  bg "$L" udpecho python3 "$here/tools/peer_flood.py" udp-echo 198.19.0.2 9999
  wait_until 30 "sshd listening" ip netns exec "$L" sh -c "ss -ltn | grep -q 198.19.0.2:22"
  admin resource add ssh --domain ssh.example.internal --site s1 --target 198.19.0.2:22 --kind tcp --port 22 \
    --allow user:alice > /dev/null
  admin resource add udpecho --domain udp.example.internal --site s1 --target 198.19.0.2:9999 --kind udp \
    --port 9999 --allow user:alice > /dev/null
}

# user_client TOKEN: the user nobody (state dir U, `as_user`), nothing of the client as root:
# `up` starts it in userspace mode in the background and returns once it runs (its log:
# STATE_DIR/client.log); then curl through its SOCKS5 and HTTP proxies, ssh through the
# ProxyCommand and through a static forward, and UDP through SOCKS5 UDP ASSOCIATE.
as_user() { ip netns exec "$C" setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
user_client() {
  U="$E2E_TMP/user"
  mkdir -p "$U/state"
  cp "$E2E_TMP/ca.pem" "$E2E_TMP/user_key" "$U/"
  chown -R nobody:nogroup "$U"; chmod 700 "$U" "$U/state"
  chmod 711 "$E2E_TMP"
  as_user "$CLIENT" up --state_dir="$U/state" --server=198.18.1.1:443 --token="$1" --userspace \
    --socks5=127.0.0.1:1080 --http_proxy=127.0.0.1:8080 --forward=127.0.0.1:2222:ssh.example.internal:22 \
    > "$E2E_TMP/up.out" || fail "up failed: $(cat "$E2E_TMP/up.out") $(cat "$U/state/client.log" 2>/dev/null)"
  UCLIENT_PID=$(grep -o 'pid [0-9]*' "$E2E_TMP/up.out" | head -n1 | cut -d' ' -f2)
  E2E_PIDS+=("$UCLIENT_PID")
  log "p2proxy-client up: $(head -n1 "$E2E_TMP/up.out")"
  grep -q 'event=client.up.*mode=userspace' "$U/state/client.log" || fail "the client's log does not say it is up in userspace mode"
  [ "$(ps -o user= -p "$UCLIENT_PID")" = nobody ] || fail "the client does not run as nobody: $(ps -o user= -p "$UCLIENT_PID")"
  if tr '\0' ' ' < "/proc/$UCLIENT_PID/cmdline" | grep -q 'p2p1_'; then
    fail "up passed the token on the daemon's command line: $(tr '\0' ' ' < "/proc/$UCLIENT_PID/cmdline")"
  fi
  [ -z "$(ip -n "$C" -o link show type tun | grep -v "p2c${E2E_ID:0:8}")" ] \
    || fail "userspace mode created a TUN interface: $(ip -n "$C" -o link show type tun)"

  wait_until 30 "vault through SOCKS5" as_user curl -sf --max-time 2 --socks5-hostname 127.0.0.1:1080 \
    --cacert "$U/ca.pem" -o /dev/null https://vault.example.internal/
  as_user curl -sf --max-time 5 --socks5-hostname 127.0.0.1:1080 --cacert "$U/ca.pem" https://vault.example.internal/ \
    | grep -q "p2proxy vault page $E2E_ID" || fail "the page through SOCKS5 is not the app's"
  log "as nobody: curl --socks5-hostname 127.0.0.1:1080 https://vault.example.internal/ -> the app's page"
  as_user curl -sf --max-time 5 -x http://127.0.0.1:8080 --cacert "$U/ca.pem" https://vault.example.internal/ \
    | grep -q "p2proxy vault page $E2E_ID" || fail "the page through the HTTP proxy is not the app's"
  log "as nobody: curl -x http://127.0.0.1:8080 https://vault.example.internal/ -> the app's page"

  # ssh with the ProxyCommand, through the running client.
  sshcmd=(ssh -F /dev/null -i "$U/user_key" -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no
          -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR)
  out=$(as_user "${sshcmd[@]}" -o ProxyCommand="$CLIENT --state_dir=$U/state connect %h %p" \
        root@ssh.example.internal "echo ssh-ok-$E2E_ID; hostname -I" 2>"$E2E_TMP/ssh.err") \
    || fail "ssh through the ProxyCommand failed: $(cat "$E2E_TMP/ssh.err")"
  grep -q "ssh-ok-$E2E_ID" <<<"$out" || fail "ssh ran no command: $out"
  grep -q "198.19.0.2" <<<"$out" || fail "ssh reached another host: $out"
  log "as nobody: ssh -o ProxyCommand='p2proxy-client connect %h %p' root@ssh.example.internal ran a command on the LAN host ($(tail -n1 <<<"$out" | tr -d ' '))"
  # And through the static forward 127.0.0.1:2222.
  out=$(as_user "${sshcmd[@]}" -p 2222 root@127.0.0.1 "echo fwd-ok-$E2E_ID" 2>"$E2E_TMP/ssh2.err") \
    || fail "ssh through --forward failed: $(cat "$E2E_TMP/ssh2.err")"
  grep -q "fwd-ok-$E2E_ID" <<<"$out" || fail "ssh through the forward ran no command: $out"
  log "as nobody: ssh -p 2222 root@127.0.0.1 through --forward=127.0.0.1:2222:ssh.example.internal:22 works"

  # UDP through SOCKS5 UDP ASSOCIATE, the name resolved by the client.
  out=$(as_user /usr/bin/python3 "$here/tools/socks5_udp.py" 127.0.0.1 1080 udp.example.internal 9999 "udp-$E2E_ID" 2>&1) \
    || fail "UDP through SOCKS5 failed: $out"
  grep -q "reply=udp-$E2E_ID" <<<"$out" || fail "the UDP answer is not the echo: $out"
  log "as nobody: a datagram to udp.example.internal:9999 through SOCKS5 UDP ASSOCIATE came back: $out"
}

userspace() {
  admin user add alice > /dev/null
  admin role add admins > /dev/null
  admin user grant alice admins > /dev/null
  admin token create site s1 > "$E2E_TMP/site-token.out"
  admin token create device --user alice > "$E2E_TMP/device-token.out"
  site_token=$(token_of "$E2E_TMP/site-token.out"); device_token=$(token_of "$E2E_TMP/device-token.out")
  start_site --server=198.18.1.1:443 --token="$site_token"
  wait_until 30 "site up" grep -q 'event=site.up' "$E2E_TMP/site.log"
  admin ca export > "$E2E_TMP/ca.pem" 2>/dev/null
  admin resource add vault --domain vault.example.internal --site s1 --target 198.19.0.2:8080 \
    --kind https --allow role:admins > /dev/null
  lan_extras
  user_client "$device_token"

  # Refusals: not a private name; a SOCKS4 client; a name in the zone that does not exist.
  if as_user curl -sf --max-time 5 --socks5-hostname 127.0.0.1:1080 -o /dev/null http://example.com/ 2>"$E2E_TMP/r1.err"; then
    fail "a public name went through the SOCKS5 proxy"
  fi
  grep -q 'not a private name' "$U/state/client.log" || fail "the refusal of a public name is not logged"
  if as_user curl -sf --max-time 5 --socks4a 127.0.0.1:1080 -o /dev/null http://vault.example.internal/ 2>/dev/null; then
    fail "a SOCKS4 client was served"
  fi
  grep -q 'SOCKS version 4' "$U/state/client.log" || fail "the SOCKS4 refusal does not say so"
  code=$(as_user curl -s --max-time 5 -x http://127.0.0.1:8080 -o /dev/null -w '%{http_connect}' https://nope.example.internal/ || true)
  [ "$code" = 404 ] || fail "an unknown private name through the HTTP proxy answered $code, not 404"
  log "refused: example.com (not a private name), a SOCKS4 client, nope.example.internal (404 from the HTTP proxy)"

  # status and status --json.
  # The status file is rewritten each second: wait for one written after the snapshot arrived.
  status_has_vault() {
    as_user "$CLIENT" --state_dir="$U/state" status > "$E2E_TMP/status.txt" &&
      grep -qE '^vault.example.internal +100\.96\.[0-9.]+ +s1' "$E2E_TMP/status.txt"
  }
  wait_until 10 "status shows the vault's site" status_has_vault
  as_user "$CLIENT" --state_dir="$U/state" status > "$E2E_TMP/status.txt" || fail "status failed"
  cat "$E2E_TMP/status.txt" >&2
  grep -q 'userspace mode' "$E2E_TMP/status.txt" || fail "status does not show the mode"
  grep -q '^server: .*connected' "$E2E_TMP/status.txt" || fail "status does not show the server connection"
  grep -qE '^vault.example.internal +100\.96\.[0-9.]+ +s1' "$E2E_TMP/status.txt" || fail "status does not show the vault's site"
  as_user "$CLIENT" --state_dir="$U/state" status --json > "$E2E_TMP/status.json"
  python3 - "$E2E_TMP/status.json" <<'PY' || fail "status --json is not what it should be: $(cat "$E2E_TMP/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["mode"] == "userspace" and s["server"]["connected"], s
assert s["proxies"]["socks5"] == "127.0.0.1:1080", s["proxies"]
names = {r["name"]: r for r in s["resources"]}
assert names["vault.example.internal"]["site"] == "s1", names
site = [p for p in s["peers"] if p["name"] == "s1"][0]
assert site["endpoint"].startswith("198.18.1.2:") and site["path"] == "direct", site
PY
  log "status --json: mode userspace, server connected, vault via s1, s1 direct at $(grep -o '"endpoint":"198.18.1.2:[0-9]*"' "$E2E_TMP/status.json" | head -n1)"

  # No client running: connect starts one for itself (same state dir), and stops it after.
  as_user "$CLIENT" --state_dir="$U/state" down > "$E2E_TMP/down.out" || fail "down failed: $(cat "$E2E_TMP/down.out")"
  kill -0 "$UCLIENT_PID" 2>/dev/null && fail "down returned while the client runs"
  log "p2proxy-client down: $(cat "$E2E_TMP/down.out")"
  [ -e "$U/state/status.json" ] && fail "the stopped client left its status file"
  if as_user "$CLIENT" --state_dir="$U/state" status > /dev/null 2>&1; then fail "status says a stopped client runs"; fi
  out=$(as_user "${sshcmd[@]}" -o ProxyCommand="$CLIENT --state_dir=$U/state connect %h %p" \
        root@ssh.example.internal "echo ssh2-ok-$E2E_ID" 2>"$E2E_TMP/ssh3.err") \
    || fail "ssh with no client running failed: $(cat "$E2E_TMP/ssh3.err")"
  grep -q "ssh2-ok-$E2E_ID" <<<"$out" || fail "ssh with no client running ran no command: $out"
  wait_until 10 "the in-process client gone" sh -c "! pgrep -u nobody -f 'p2proxy-client.*--userspace' > /dev/null"
  log "with no client running, the ProxyCommand started its own from the state dir, ssh worked, and it stopped"
}

# reinit_ranges: the server re-initialized as a deployment of its own ranges, 10.77.0.0/17 for
# nodes and 10.77.128.0/18 for resources.
reinit_ranges() {
  kill "$SERVER_PID"
  wait_until 30 "server gone" sh -c "! kill -0 $SERVER_PID 2>/dev/null"
  rm -rf "$E2E_TMP/server"
  in_i "$SERVER" init --state_dir="$E2E_TMP/server" --public_address=198.18.1.1:443 \
    --node_range=10.77.0.0/17 --resource_range=10.77.128.0/18 > /dev/null
  start_server
}

ranges() {
  reinit_ranges
  admin user add alice > /dev/null
  admin token create site s1 > "$E2E_TMP/site-token.out"
  admin token create device --user alice > "$E2E_TMP/device-token.out"
  admin token create device --user alice > "$E2E_TMP/device2-token.out"
  start_site --server=198.18.1.1:443 --token="$(token_of "$E2E_TMP/site-token.out")"
  wait_until 30 "site up" grep -q 'event=site.up' "$E2E_TMP/site.log"
  admin ca export > "$E2E_TMP/ca.pem" 2>/dev/null
  admin resource add vault --domain vault.example.internal --site s1 --target 198.19.0.2:8080 \
    --kind https --allow user:alice > "$E2E_TMP/add.out"
  grep -q '10\.77\.1[2-9][0-9]\.' "$E2E_TMP/add.out" || fail "the resource's address is not from 10.77.128.0/18: $(cat "$E2E_TMP/add.out")"

  # The client's machine has a network on 10.77.128.0/20, as a Docker bridge would make.
  ip -n "$C" link add p2br0 type veth peer name p2br0p
  ip -n "$C" link set p2br0p up
  ip -n "$C" addr add 10.77.130.1/20 dev p2br0
  ip -n "$C" link set p2br0 up
  if ip netns exec "$C" "$CLIENT" --state_dir="$E2E_TMP/client-state" --server=198.18.1.1:443 \
       --token="$(token_of "$E2E_TMP/device-token.out")" --interface="p2c${E2E_ID:0:8}" --uapi_dir="$E2E_TMP" \
       > "$E2E_TMP/clash.out" 2>&1; then
    fail "the client started although 10.77.128.0/20 is routed to p2br0"
  fi
  cat "$E2E_TMP/clash.out" >&2
  grep -q 'resource range 10.77.128.0/18 overlaps route 10.77.128.0/20 dev p2br0' "$E2E_TMP/clash.out" \
    || fail "the refusal does not name both ranges: $(cat "$E2E_TMP/clash.out")"
  grep -q -- '--resource_range' "$E2E_TMP/clash.out" || fail "the refusal does not name the setting that fixes it"
  [ -z "$(ip -n "$C" -o link show type tun)" ] || fail "the refused client left an interface"
  log "refused: $(grep -o 'address range clash.*' "$E2E_TMP/clash.out" | cut -c1-200)..."

  # Without the clash the same client (enrolled by the refused start) runs on the ranges.
  ip -n "$C" link del p2br0
  start_client
  wait_until 30 "client DNS ready" grep -q 'event=client.dns_ready' "$E2E_TMP/client.log"
  addr=$(in_c dig +short @10.77.128.1 vault.example.internal A)
  grep -q '^10\.77\.' <<<"$addr" || fail "the resolver on 10.77.128.1 answered '$addr'"
  wait_until 30 "vault served on the deployment's range" in_c curl -sf --max-time 2 --cacert "$E2E_TMP/ca.pem" \
    -o "$E2E_TMP/page.html" https://vault.example.internal/
  grep -q "p2proxy vault page $E2E_ID" "$E2E_TMP/page.html" || fail "the page is not the app's"
  wait_until 30 "ping the server at 10.77.0.1" in_c ping -c 1 -W 1 10.77.0.1
  log "with the bridge gone: vault.example.internal -> $addr (resolver 10.77.128.1), the page served, the server answers at 10.77.0.1"

  # The rest of the client on these ranges: a second device of alice's, as nobody in userspace
  # mode, with its proxies, ssh and UDP; its status shows addresses from the deployment's ranges.
  lan_extras
  user_client "$(token_of "$E2E_TMP/device2-token.out")"
  as_user "$CLIENT" --state_dir="$U/state" status --json > "$E2E_TMP/status.json"
  python3 - "$E2E_TMP/status.json" > "$E2E_TMP/status-ranges.out" <<'PY' \
    || fail "status --json shows addresses outside the ranges: $(cat "$E2E_TMP/status.json")"
import ipaddress, json, sys
s = json.load(open(sys.argv[1]))
nodes, res = ipaddress.ip_network("10.77.0.0/17"), ipaddress.ip_network("10.77.128.0/18")
assert ipaddress.ip_address(s["node_address"].split("/")[0]) in nodes, s["node_address"]
addrs = {r["name"]: r["address"] for r in s["resources"]}
assert len(addrs) == 3 and all(ipaddress.ip_address(a) in res for a in addrs.values()), addrs
print("node", s["node_address"], *[f"{n}={a}" for n, a in sorted(addrs.items())])
PY
  log "on 10.77.0.0/17 + 10.77.128.0/18 the userspace client works as on the default ranges: $(cat "$E2E_TMP/status-ranges.out")"
  as_user "$CLIENT" --state_dir="$U/state" down > /dev/null || fail "down failed"
}

embed() {
  DIAL=${P2P_DIAL_EXAMPLE:?set P2P_DIAL_EXAMPLE to the C example}
  LIB=${P2PROXY_LIBRARY:?set P2PROXY_LIBRARY to libp2proxy.so}
  admin user add alice > /dev/null
  admin token create site s1 > "$E2E_TMP/site-token.out"
  admin token create device --user alice > "$E2E_TMP/device-token.out"
  # The site enrolls as the packaged service starts it: server and token from its environment
  # file (packaging/systemd/p2proxy-site.service), none on the command line.
  printf 'P2PROXY_SERVER=198.18.1.1:443\nP2PROXY_TOKEN=%s\n' "$(token_of "$E2E_TMP/site-token.out")" > "$E2E_TMP/site.env"
  bg "$S" site env $(cat "$E2E_TMP/site.env") "$SITE" --state_dir="$E2E_TMP/site-state" --audit_log="$E2E_TMP/site-audit.jsonl"
  SITE_PID=$BG_PID
  wait_until 30 "site up" grep -q 'event=site.up' "$E2E_TMP/site.log"
  grep -q 'event=node.enrolled' "$E2E_TMP/site.log" || fail "the site did not enroll from its environment"
  log "the site enrolled with P2PROXY_SERVER and P2PROXY_TOKEN from its environment, as its systemd unit runs it"
  admin ca export > "$E2E_TMP/ca.pem" 2>/dev/null
  admin resource add vault --domain vault.example.internal --site s1 --target 198.19.0.2:8080 \
    --kind https --allow user:alice > /dev/null
  admin resource add web --domain web.example.internal --site s1 --target 198.19.0.2:8080 --kind tcp --port 80 \
    --allow user:alice > /dev/null

  # Programs that embed the client, run by a user without root: no TUN, no daemon.
  U="$E2E_TMP/user"
  mkdir -p "$U/state"
  cp "$E2E_TMP/ca.pem" "$U/"
  chown -R nobody:nogroup "$U"; chmod 700 "$U" "$U/state"
  chmod 711 "$E2E_TMP"
  opts="{\"state_dir\": \"$U/state\", \"server\": \"198.18.1.1:443\", \"token\": \"$(token_of "$E2E_TMP/device-token.out")\"}"
  # The snapshot arrives just after enrollment: the first dial may find no name yet.
  dial_once() { as_user "$DIAL" "$opts" web.example.internal 80 > "$E2E_TMP/dial.out" 2> "$E2E_TMP/dial.log"; }
  wait_until 30 "the C example fetched the page (its last error: dial.log)" dial_once
  grep -q "p2proxy vault page $E2E_ID" "$E2E_TMP/dial.out" || fail "the C example printed: $(head -c 300 "$E2E_TMP/dial.out") $(cat "$E2E_TMP/dial.log")"
  log "as nobody, examples/c/dial.c (libp2proxy's C API, in process) fetched http://web.example.internal/: $(grep -m1 '^HTTP' "$E2E_TMP/dial.out" | tr -d '\r')"
  if as_user "$DIAL" "{\"state_dir\": \"$U/state\"}" nope.example.internal 80 > /dev/null 2> "$E2E_TMP/dial2.err"; then
    fail "the C example dialed a name that is not a resource"
  fi
  grep -q 'no private resource is named nope.example.internal.*(code 5)' "$E2E_TMP/dial2.err" \
    || fail "the refusal does not name the host and code: $(cat "$E2E_TMP/dial2.err")"
  log "refused in the C API: $(cat "$E2E_TMP/dial2.err")"

  # Python over the C API: ssl over the socket the client hands back, trusting the server's CA.
  # (A sanitizer build of the library needs its runtime loaded first, and Python's own
  # allocations would read as leaks.)
  py_env=(PYTHONPATH="$here/../../bindings/python" P2PROXY_LIBRARY="$LIB")
  asan_rt=$(ldd "$LIB" | awk '/libasan/ {print $3}')
  [ -n "$asan_rt" ] && py_env+=(LD_PRELOAD="$asan_rt" ASAN_OPTIONS=detect_leaks=0)
  as_user env "${py_env[@]}" /usr/bin/python3 \
    "$here/../../examples/python/fetch_vault.py" "$U/state" "$U/ca.pem" > "$E2E_TMP/py.out" 2> "$E2E_TMP/py.err" \
    || fail "the Python example failed: $(cat "$E2E_TMP/py.err")"
  grep -q "p2proxy vault page $E2E_ID" "$E2E_TMP/py.out" || fail "the Python example printed: $(head -c 300 "$E2E_TMP/py.out")"
  log "as nobody, examples/python/fetch_vault.py (import p2proxy) fetched https://vault.example.internal/ with Python's ssl: $(tr '\n' ' ' < "$E2E_TMP/py.err")"
  as_user env "${py_env[@]}" /usr/bin/python3 -c '
import p2proxy, sys
with p2proxy.Client(state_dir=sys.argv[1]) as c:
    s = c.status()
    assert s["mode"] == "userspace" and s["server"]["connected"] in (True, False), s
    try:
        c.dial("example.com", 80)
    except p2proxy.NotFound as e:
        print("refused:", e)
    else:
        sys.exit("example.com was dialed")
    # One userspace stack per process: a Site next to the Client is refused before it enrolls.
    try:
        p2proxy.Site(state_dir=sys.argv[1] + "-site", server="198.18.1.1:443", token="p2p1_x")
    except p2proxy.Error as e:
        assert e.code == 9 and "one per process" in str(e), e
        print("refused:", e)
    else:
        sys.exit("a Site started next to a Client")
' "$U/state" > "$E2E_TMP/py2.out" 2>&1 || fail "the Python refusal check failed: $(cat "$E2E_TMP/py2.out")"
  log "python: $(cat "$E2E_TMP/py2.out")"

  # Programs that are their own site, as nobody in S: no LAN target, no host port, no root.
  # The C++ example serves an https resource from an in-process handler (TLS ends in the
  # library with the pushed certificate; the handler sees the user in X-P2proxy-User).
  HELLO=${P2P_SITE_HELLO_EXAMPLE:?set P2P_SITE_HELLO_EXAMPLE to the C++ site example}
  A="$E2E_TMP/apps"
  mkdir -p "$A/app1" "$A/app2"
  chown -R nobody:nogroup "$A"; chmod 700 "$A/app1" "$A/app2"
  as_site_user() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
  admin token create site app1 > "$E2E_TMP/app1-token.out"
  admin token create site app2 > "$E2E_TMP/app2-token.out"
  app1_opts="{\"state_dir\": \"$A/app1\", \"server\": \"198.18.1.1:443\", \"token\": \"$(token_of "$E2E_TMP/app1-token.out")\"}"
  bg "$S" app1 setpriv --reuid=nobody --regid=nogroup --clear-groups "$HELLO" "$app1_opts" 443
  APP1_PID=$BG_PID
  wait_until 60 "the C++ site listening" grep -q '^listening on port 443' "$E2E_TMP/app1.log"
  if ss -ltnp | grep -q "pid=$APP1_PID,"; then fail "the embedded site opened a listening socket: $(ss -ltnp | grep "pid=$APP1_PID,")"; fi
  admin user add bob > /dev/null
  admin resource add hello --domain hello.example.internal --site app1 --target in-process --kind https \
    --allow user:alice --allow user:bob --path /admin=user:bob > /dev/null
  admin resource add hello-bob --domain hellobob.example.internal --site app1 --target in-process --kind https \
    --allow user:bob > /dev/null
  fetch_hello() {  # HOST [PATH]: the page through the Python client, TLS trusting the server's CA
    as_user env "${py_env[@]}" /usr/bin/python3 -c '
import p2proxy, ssl, sys
host = sys.argv[2]
with p2proxy.Client(state_dir=sys.argv[1]) as c:
    ctx = ssl.create_default_context(cafile=sys.argv[3])
    with ctx.wrap_socket(c.dial(host, 443, timeout=5), server_hostname=host) as tls:
        tls.sendall(b"GET " + sys.argv[4].encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            b = tls.recv(65536)
            if not b:
                break
            out += b
print(out.decode(errors="replace"))
' "$U/state" "$1" "$U/ca.pem" "${2:-/}"
  }
  hello_ok() { fetch_hello hello.example.internal > "$E2E_TMP/hello.out" 2>&1 && grep -q 'hello alice' "$E2E_TMP/hello.out"; }
  wait_until 30 "https://hello.example.internal/ from the in-process handler (the last answer: hello.out)" hello_ok
  grep -q '^HTTP/1.1 200' "$E2E_TMP/hello.out" && grep -q 'hello alice (roles: ) from an in-process handler of hello' "$E2E_TMP/hello.out" \
    || fail "https://hello.example.internal/ did not come from the in-process handler: $(cat "$E2E_TMP/hello.out")"
  log "examples/cpp/site_hello.cc (a site in a program, as nobody) served https://hello.example.internal/: $(grep 'hello alice' "$E2E_TMP/hello.out")"
  served=$(grep -c '^served' "$E2E_TMP/app1.log")
  fetch_hello hello.example.internal /admin > "$E2E_TMP/hello-admin.out" 2>&1 || true
  grep -q '^HTTP/1.1 403' "$E2E_TMP/hello-admin.out" || fail "/admin (user:bob only) did not answer alice 403: $(head -c 300 "$E2E_TMP/hello-admin.out")"
  [ "$(grep -c '^served' "$E2E_TMP/app1.log")" = "$served" ] || fail "the handler was handed a request the site refused"
  if fetch_hello hellobob.example.internal > "$E2E_TMP/hellobob.out" 2>&1; then
    fail "alice reached bob's in-process resource: $(cat "$E2E_TMP/hellobob.out")"
  fi
  grep -q 'NotFound' "$E2E_TMP/hellobob.out" || fail "bob's resource was not hidden from alice: $(tail -n 2 "$E2E_TMP/hellobob.out")"
  log "refused: alice at https://hello.example.internal/admin (--path /admin=user:bob): 403 from the site, the handler never saw it; hellobob.example.internal (bob only) is not even a name for her"

  # The Python example: a Python site (asyncio on the listener's fd) serving a tcp resource.
  app2_token=$(token_of "$E2E_TMP/app2-token.out")
  bg "$S" app2 setpriv --reuid=nobody --regid=nogroup --clear-groups env "${py_env[@]}" /usr/bin/python3 \
    "$here/../../examples/python/site_hello.py" "$A/app2" 7070 198.18.1.1:443 "$app2_token"
  APP2_PID=$BG_PID
  wait_until 60 "the Python site listening" grep -q '^listening on port 7070' "$E2E_TMP/app2.log"
  admin resource add pyhello --domain pyhello.example.internal --site app2 --target in-process --kind tcp --port 7070 \
    --allow user:alice > /dev/null
  dial_py() { as_user "$DIAL" "{\"state_dir\": \"$U/state\"}" pyhello.example.internal 7070 > "$E2E_TMP/dialpy.out" 2> "$E2E_TMP/dialpy.log"; }
  wait_until 30 "the C example reached the Python site (its last error: dialpy.log)" dial_py
  grep -q 'hello alice (roles: ) from a Python site: resource pyhello, you are 100\.' "$E2E_TMP/dialpy.out" \
    || fail "the Python site's answer: $(cat "$E2E_TMP/dialpy.out") $(cat "$E2E_TMP/app2.log")"
  log "examples/python/site_hello.py (a Python site, as nobody) answered the C example with the caller's identity: $(grep hello "$E2E_TMP/dialpy.out")"

  # A udp resource cannot be in-process; the refusal names why.
  if admin resource add pyudp --site app2 --target in-process --kind udp --port 53 > "$E2E_TMP/udp-inproc.out" 2>&1; then
    fail "a udp resource was accepted with an in-process target"
  fi
  grep -q 'in-process.*tcp and https' "$E2E_TMP/udp-inproc.out" || fail "the refusal does not say why: $(cat "$E2E_TMP/udp-inproc.out")"
  log "refused: $(tail -n1 "$E2E_TMP/udp-inproc.out")"

  # Both stop cleanly on SIGTERM.
  kill -TERM "$APP1_PID" "$APP2_PID"
  wait_until 30 "the embedded sites stopped" sh -c "! kill -0 $APP1_PID 2>/dev/null && ! kill -0 $APP2_PID 2>/dev/null"
  grep -q '^stopping after' "$E2E_TMP/app1.log" || fail "the C++ site did not stop cleanly: $(tail -n 5 "$E2E_TMP/app1.log")"
}

# punch: both ends behind NAT boxes (nftables masquerade: endpoint-independent mapping, and
# filtering that lets in only replies to what went out, unsolicited packets dropped by the
# box's firewall: a port-restricted cone). Neither can
# reach the other until both have sent: the server tells each the other's NAT-mapped endpoint
# (learned from their WireGuard keepalives), and both send their handshakes at once. The
# client's traffic then flows straight to the site's NAT (tcpdump in "the internet" counts it),
# not through the server, and the first bytes through the tunnel arrive within 3 s of the
# client starting.
# behind_nats CLIENT_MASQUERADE: the topology of punch and relay: the site in SP behind the NAT
# box NS (198.18.5.2), the client's namespace CP behind NC (198.18.6.2), whose masquerade takes
# CLIENT_MASQUERADE's options ("" keeps ports: endpoint-independent; "fully-random": a new
# random port per destination, a symmetric NAT). Starts the site, an echo app, the resource.
behind_nats() {
  local client_masq=$1
  NS="p2cNS-$E2E_ID"; SP="p2cSP-$E2E_ID"; NC="p2cNC-$E2E_ID"; CP="p2cCP-$E2E_ID"
  for n in "$NS" "$SP" "$NC" "$CP"; do netns_add "$n"; done
  veth_link "$I" 198.18.5.1/24 "$NS" 198.18.5.2/24
  veth_link "$NS" 10.30.0.1/24 "$SP" 10.30.0.2/24
  veth_link "$I" 198.18.6.1/24 "$NC" 198.18.6.2/24
  veth_link "$NC" 10.40.0.1/24 "$CP" 10.40.0.2/24
  ip -n "$NS" route add default via 198.18.5.1
  ip -n "$SP" route add default via 10.30.0.1
  ip -n "$NC" route add default via 198.18.6.1
  ip -n "$CP" route add default via 10.40.0.1
  for box in "$NS:10.30.0.0/24:" "$NC:10.40.0.0/24:$client_masq"; do
    IFS=: read -r ns lan masq <<<"$box"
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    ip netns exec "$ns" nft -f - <<NFT
table ip p2p_nat {
  chain post { type nat hook postrouting priority srcnat; ip saddr $lan masquerade $masq; }
  chain filt {
    type filter hook forward priority filter; policy drop;
    ip saddr $lan accept
    ct state established,related accept
  }
  # Unsolicited packets to the box itself are dropped before conntrack keeps them, as a home
  # router's firewall does (a kept entry would take the port a later mapping wants).
  chain inp {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    ip saddr $lan accept
  }
}
NFT
  done
  # The site's app: an echo server on the site's LAN address.
  bg "$SP" punch-echo "$STORM" echo 7
  wait_until 30 "echo listening" ip netns exec "$SP" sh -c "ss -ltn | grep -q ':7 '"
  admin user add alice > /dev/null
  admin token create site s1 > "$E2E_TMP/site-token.out"
  admin token create device --user alice > "$E2E_TMP/device-token.out"
  bg "$SP" site "$SITE" --state_dir="$E2E_TMP/site-state" --server=198.18.1.1:443 \
    --token="$(token_of "$E2E_TMP/site-token.out")"
  NAT_SITE_PID=$BG_PID
  wait_until 30 "site up" grep -q 'event=site.up' "$E2E_TMP/site.log"
  admin resource add echo --domain echo.example.internal --site s1 --target 10.30.0.2:7 --kind tcp --port 7 \
    --allow user:alice > /dev/null
  wait_until 30 "the site's NAT-mapped endpoint at the server" sh -c \
    "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep s1 | grep -q '198.18.5.2:'"

}

punch() {
  behind_nats ""
  # Count the datagrams that go straight between the two NAT boxes.
  iface=$(ip -n "$I" -o addr show to 198.18.6.1 | awk '{print $2}')
  bg "$I" pcap tcpdump -l -n -i "$iface" -w "$E2E_TMP/punch.pcap" udp and src 198.18.6.2 and dst 198.18.5.2
  wait_until 30 "tcpdump listening" grep -q 'listening on' "$E2E_TMP/pcap.log"
  PCAP_PID=$BG_PID

  t0=$(now_ms)
  bg "$CP" client "$CLIENT" --state_dir="$E2E_TMP/client-state" --server=198.18.1.1:443 \
    --token="$(token_of "$E2E_TMP/device-token.out")" --userspace --interface="p2c${E2E_ID:0:8}" --uapi_dir="$E2E_TMP" --socks5=off --http_proxy=off \
    --forward=127.0.0.1:7007:echo.example.internal:7 --status_file="$E2E_TMP/punch-status.json"
  echo_ok() { ip netns exec "$CP" python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 7007), timeout=1)
s.settimeout(1)
s.sendall(b"punch\n")
assert s.recv(64) == b"punch\n"
' 2>/dev/null; }
  wait_until 30 "an echo through the tunnel" echo_ok
  t1=$(now_ms)
  log "the first echo through the tunnel came $((t1 - t0)) ms after the client started (both ends behind NAT)"
  [ $((t1 - t0)) -lt 3000 ] || fail "the first bytes took $((t1 - t0)) ms, not under 3 s"

  # A larger transfer, then the count of direct datagrams.
  ip netns exec "$CP" python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 7007), timeout=10)
data = bytes(range(256)) * 4096  # 1 MiB
s.sendall(data)
got = b""
while len(got) < len(data):
    b = s.recv(65536)
    assert b, "closed early"
    got += b
assert got == data
' || fail "1 MiB through the echo did not come back intact"
  kill "$PCAP_PID"
  wait_until 30 "tcpdump done" sh -c "! kill -0 $PCAP_PID 2>/dev/null"
  direct=$(tcpdump -n -r "$E2E_TMP/punch.pcap" 2>/dev/null | wc -l)
  [ "$direct" -gt 500 ] || fail "only $direct datagrams went straight from the client's NAT to the site's"
  # The status file is rewritten each second: wait for one written after the transfer.
  cat > "$E2E_TMP/punch_status.py" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
site = [p for p in s["peers"] if p["name"] == "s1"][0]
assert site["endpoint"].startswith("198.18.5.2:") and site["path"] == "direct", site
print(site["endpoint"], site["path"])
PY
  wait_until 10 "status: s1 direct at the site's NAT" sh -c \
    "python3 '$E2E_TMP/punch_status.py' '$E2E_TMP/punch-status.json' > '$E2E_TMP/punch-peer.out' 2>&1" ||
    fail "status: $(cat "$E2E_TMP/punch-status.json")"
  log "1 MiB echoed; $direct datagrams went straight from the client's NAT (198.18.6.2) to the site's (198.18.5.2); the client's status: s1 at $(cat "$E2E_TMP/punch-peer.out")"
  grep -q 'punches=[1-9]' "$E2E_TMP/site.log" || fail "the site logged no punch"
  # And the server carried none of it: its relay forwarded nothing.
  kill -USR1 "$SERVER_PID"
  wait_until 10 "the server's stats" grep -q 'event=server.stats' "$E2E_TMP/server$SERVER_N.log"
  relayed=$(grep 'event=server.stats' "$E2E_TMP/server$SERVER_N.log" | tail -n1 | grep -o 'relay_forwarded=[0-9]*' | cut -d= -f2)
  [ "$relayed" = 0 ] || fail "the server relayed $relayed frames although the punch worked"
  log "the server's relay forwarded nothing (relay_forwarded=0): the 1 MiB went straight between the NATs"
}

# relay: the client behind a symmetric NAT (a new random port for every destination), the site
# behind a port-restricted one: hole punching cannot work (the site answers the port the server
# saw, which is not the one the client's NAT gives the site). After 2 s without a handshake the
# client moves the site onto the server's relay: its WireGuard messages go to the server's UDP
# port in relay frames and the server forwards them, unread, to the site. Traffic flows within
# 5 s of the client starting; a capture at the server holds no plaintext of what went through
# and no inner addresses; the client's status says relayed; the relay's counters show the frames.
relay() {
  behind_nats fully-random
  iface=$(ip -n "$I" -o addr show to 198.18.1.1 | awk '{print $2}')
  bg "$I" pcap tcpdump -U -l -n -i any -w "$E2E_TMP/relay.pcap" udp
  wait_until 30 "tcpdump listening" grep -q 'listening on' "$E2E_TMP/pcap.log"
  PCAP_PID=$BG_PID
  t0=$(now_ms)
  bg "$CP" client "$CLIENT" --state_dir="$E2E_TMP/client-state" --server=198.18.1.1:443 \
    --token="$(token_of "$E2E_TMP/device-token.out")" --userspace --interface="p2c${E2E_ID:0:8}" --uapi_dir="$E2E_TMP" --socks5=off --http_proxy=off \
    --forward=127.0.0.1:7007:echo.example.internal:7 --status_file="$E2E_TMP/relay-status.json"
  marker="relay-plaintext-$E2E_ID-$RANDOM$RANDOM"
  echo_ok() { ip netns exec "$CP" python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", 7007), timeout=1)
s.settimeout(1)
m = sys.argv[1].encode() + b"\n"
s.sendall(m)
got = b""
while len(got) < len(m):
    b = s.recv(256)
    assert b
    got += b
assert got == m
' "$marker" 2>/dev/null; }
  wait_until 30 "an echo through the relay" echo_ok
  t1=$(now_ms)
  log "the first echo came $((t1 - t0)) ms after the client started (client behind a symmetric NAT)"
  [ $((t1 - t0)) -lt 5000 ] || fail "the first bytes took $((t1 - t0)) ms through the relay, not under 5 s"
  grep -q 'event=client.path.*path=relayed' "$E2E_TMP/client.log" || fail "the client did not log its move to the relay"
  for i in 1 2 3 4 5; do echo_ok || fail "echo $i through the relay failed"; done
  wait_until 10 "status says relayed" sh -c "grep -q '\"path\":\"relayed\"' '$E2E_TMP/relay-status.json'"
  kill "$PCAP_PID"
  wait_until 30 "tcpdump done" sh -c "! kill -0 $PCAP_PID 2>/dev/null"
  python3 - "$E2E_TMP/relay.pcap" "$marker" <<'PY' > "$E2E_TMP/relay-pcap.out" || fail "the capture at the server: $(cat "$E2E_TMP/relay-pcap.out")"
import struct, sys
data = open(sys.argv[1], "rb").read()
marker = sys.argv[2].encode()
assert marker not in data, "the plaintext went through the server"
frames = data.count(bytes([0x50, 0, 0, 0]))
assert frames > 10, "only %d relay frames captured" % frames
# The inner packets' addresses as IPv4 header bytes: the frame headers name the nodes
# (100.96.0.x) in the clear, but the resource's address (100.96.128.2) appears only inside the
# encrypted packets, so it must not be readable anywhere in what the server carried.
assert data.count(bytes([100, 96, 128, 2])) == 0, "an inner resource address is readable at the server"
print("%d bytes captured, %d relay frames, no plaintext, no inner address" % (len(data), frames))
PY
  log "at the server: $(cat "$E2E_TMP/relay-pcap.out")"
  admin site list > "$E2E_TMP/relay-sites.out"
  grep s1 "$E2E_TMP/relay-sites.out" | grep -q '(relayed)' || fail "admin site list does not show s1 relayed: $(cat "$E2E_TMP/relay-sites.out")"
  admin device list --json > "$E2E_TMP/relay-devices.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[0]["path"] == "relayed" and d[0]["relayed_frames"] > 0, d' \
    "$E2E_TMP/relay-devices.json" || fail "admin device list --json: $(cat "$E2E_TMP/relay-devices.json")"
  log "admin site list: $(grep s1 "$E2E_TMP/relay-sites.out" | tr -s ' ')"

  # A stranger (not enrolled: its endpoint was never authenticated) sends well-formed relay
  # frames naming the site as destination and the client as source: nothing is relayed.
  site_frames() {  # the site's relay_frames_received, from a fresh SIGUSR1 stats line
    local n
    n=$(grep -c 'event=site.stats' "$E2E_TMP/site.log" || true)
    pkill -USR1 -f "p2proxy-site --state_dir=$E2E_TMP/site-state"
    wait_until 10 "the site's stats" sh -c "[ \$(grep -c 'event=site.stats' '$E2E_TMP/site.log') -gt $n ]"
    grep 'event=site.stats' "$E2E_TMP/site.log" | tail -n1 | grep -o 'relay_frames_received=[0-9]*' | cut -d= -f2
  }
  before=$(site_frames)
  site_addr=$(grep -o 'address=100\.96\.0\.[0-9]*' "$E2E_TMP/site.log" | head -n1 | cut -d= -f2)
  client_addr=$(grep -o 'address=100\.96\.0\.[0-9]*' "$E2E_TMP/client.log" | head -n1 | cut -d= -f2)
  ip netns exec "$CP" python3 - "$site_addr" "$client_addr" <<'PY'
import socket, struct, sys
dst, src = (bytes(int(x) for x in a.split(".")) for a in sys.argv[1:3])
frame = bytes([0x50, 0, 0, 0]) + dst + src + struct.pack("<I", 1) + bytes(144)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(200):
    s.sendto(frame, ("198.18.1.1", 51820))
PY
  kill -USR1 "$SERVER_PID"
  wait_until 10 "the server counted the stranger" sh -c "grep 'event=server.stats' '$E2E_TMP/server$SERVER_N.log' | tail -n1 | grep -q 'relay_unknown_sender=[1-9]'"
  after=$(site_frames)
  [ "$after" = "$before" ] || fail "the site received relay frames from a stranger ($before before, $after after)"
  log "a stranger's 200 relay frames (dst the site, src the client): relayed none; the server counts them: $(grep 'event=server.stats' "$E2E_TMP/server$SERVER_N.log" | tail -n1 | grep -o 'relay_unknown_sender=[0-9]*')"
  kill -USR1 "$SERVER_PID"
  wait_until 10 "the server's stats" grep -q 'event=server.stats.*relay_forwarded=[1-9]' "$E2E_TMP/server$SERVER_N.log"
  log "the relay: $(grep -o 'relay_forwarded=[0-9]* relay_bytes=[0-9]*' "$E2E_TMP/server$SERVER_N.log" | tail -n1)"
}

# tls: UDP dropped in the client's namespace (nftables, both ways, all but loopback): the
# client's WireGuard finds no answer over UDP and goes over TLS to the server's 443 (ALPN
# p2proxy-wg/1); the site reaches it through the relay. A page loads within 10 s of the
# client's start; status and admin say where the traffic goes; a capture of the TLS stream at
# the server holds no plaintext. A TLS client without a node certificate is refused. When UDP
# is allowed again, the client goes back to UDP on its own.
tls() {
  behind_nats ""
  mkdir -p "$E2E_TMP/tlsweb"
  page_text="p2proxy page over tls $E2E_ID"
  echo "$page_text" > "$E2E_TMP/tlsweb/index.html"
  bg "$SP" tlsweb python3 -m http.server --bind 10.30.0.2 --directory "$E2E_TMP/tlsweb" 8080
  wait_until 30 "web listening" ip netns exec "$SP" sh -c "ss -ltn | grep -q '10.30.0.2:8080'"
  admin resource add web --domain web.example.internal --site s1 --target 10.30.0.2:8080 --kind tcp --port 80 \
    --allow user:alice > /dev/null
  ip netns exec "$CP" nft -f - <<'NFT'
table inet p2p_noudp {
  chain out { type filter hook output priority filter; oifname != "lo" meta l4proto udp drop; }
  chain in { type filter hook input priority filter; iifname != "lo" meta l4proto udp drop; }
}
NFT
  iface=$(ip -n "$I" -o addr show to 198.18.6.1 | awk '{print $2}')
  bg "$I" pcap tcpdump -U -l -n -i "$iface" -w "$E2E_TMP/tls.pcap" tcp port 443
  wait_until 30 "tcpdump listening" grep -q 'listening on' "$E2E_TMP/pcap.log"
  PCAP_PID=$BG_PID
  t0=$(now_ms)
  bg "$CP" client "$CLIENT" --state_dir="$E2E_TMP/client-state" --server=198.18.1.1:443 \
    --token="$(token_of "$E2E_TMP/device-token.out")" --userspace --interface="p2c${E2E_ID:0:8}" --uapi_dir="$E2E_TMP" --socks5=off --http_proxy=off \
    --forward=127.0.0.1:8088:web.example.internal:80 --status_file="$E2E_TMP/tls-status.json"
  page() { ip netns exec "$CP" curl -sf --max-time 1 http://127.0.0.1:8088/ 2>/dev/null; }
  wait_until 30 "the page over TLS" sh -c "ip netns exec '$CP' curl -sf --max-time 1 http://127.0.0.1:8088/ | grep -q '$page_text'"
  t1=$(now_ms)
  log "UDP dropped at the client: the page came $((t1 - t0)) ms after the client started"
  [ $((t1 - t0)) -lt 10000 ] || fail "the page took $((t1 - t0)) ms with UDP dropped, not under 10 s"
  grep -q 'event=uplink.path.*transport=tls' "$E2E_TMP/client.log" || fail "the client did not log its move to TLS"
  for i in 1 2 3 4 5; do page | grep -q "$page_text" || fail "request $i over TLS failed"; done
  wait_until 10 "status: wireguard over tls, the site relayed over tls" sh -c \
    "grep -q '\"wireguard\":\"tls\"' '$E2E_TMP/tls-status.json' && grep -q '\"path\":\"relayed-tls\"' '$E2E_TMP/tls-status.json'"
  admin device list > "$E2E_TMP/tls-devices.out"
  grep -q '(relayed over TLS)' "$E2E_TMP/tls-devices.out" || fail "admin device list does not show the device over TLS: $(cat "$E2E_TMP/tls-devices.out")"
  log "admin device list: $(grep tls "$E2E_TMP/tls-devices.out" | tr -s ' ')"
  kill "$PCAP_PID"
  wait_until 30 "tcpdump done" sh -c "! kill -0 $PCAP_PID 2>/dev/null"
  python3 - "$E2E_TMP/tls.pcap" "$page_text" <<'PY' > "$E2E_TMP/tls-pcap.out" || fail "the capture at the server: $(cat "$E2E_TMP/tls-pcap.out")"
import sys
data = open(sys.argv[1], "rb").read()
assert sys.argv[2].encode() not in data, "the page's plaintext crossed to the server"
assert b"p2proxy-wg/1" in data, "no ClientHello offering p2proxy-wg/1 in the capture"
assert len(data) > 20000, "only %d bytes captured on 443" % len(data)
print("%d bytes on tcp/443 captured, ALPN p2proxy-wg/1 offered, no plaintext of the page" % len(data))
PY
  log "at the server: $(cat "$E2E_TMP/tls-pcap.out")"

  # Without a node certificate nobody speaks WireGuard over TLS to the server.
  kill -USR1 "$SERVER_PID"
  wait_until 10 "the server's stats" grep -q 'event=server.stats.*wg_tls_opened=[1-9]' "$E2E_TMP/server$SERVER_N.log"
  refused_before=$(grep 'event=server.stats' "$E2E_TMP/server$SERVER_N.log" | tail -n1 | grep -o 'wg_tls_refused=[0-9]*' | cut -d= -f2)
  ip netns exec "$NC" sh -c 'echo | timeout 10 openssl s_client -connect 198.18.1.1:443 -alpn p2proxy-wg/1 -tls1_3 -ign_eof' > "$E2E_TMP/tls-stranger.out" 2>&1 || true
  kill -USR1 "$SERVER_PID"
  wait_until 10 "the server refused the stranger" sh -c \
    "[ \$(grep 'event=server.stats' '$E2E_TMP/server$SERVER_N.log' | tail -n1 | grep -o 'wg_tls_refused=[0-9]*' | cut -d= -f2) -gt $refused_before ]"
  log "a TLS client with ALPN p2proxy-wg/1 and no node certificate: refused ($(grep 'event=server.wg_tls.drop' "$E2E_TMP/server$SERVER_N.log" | tail -n1 | grep -o 'reason=.*'))"

  # UDP back: the client probes it and returns on its own.
  ip netns exec "$CP" nft delete table inet p2p_noudp
  wait_until 60 "the client back on UDP" sh -c "grep -q '\"wireguard\":\"udp\"' '$E2E_TMP/tls-status.json'"
  grep -q 'event=uplink.path.*transport=udp' "$E2E_TMP/client.log" || fail "the client did not log its return to UDP"
  wait_until 30 "the page over UDP" sh -c "ip netns exec '$CP' curl -sf --max-time 1 http://127.0.0.1:8088/ | grep -q '$page_text'"
  wait_until 60 "no peer over TLS in the status" sh -c "! grep -q '\"path\":\"relayed-tls\"' '$E2E_TMP/tls-status.json' && ! grep -q '\"path\":\"tls\"' '$E2E_TMP/tls-status.json'"
  log "UDP allowed again: back on UDP ($(grep -o 'event=uplink.path.*transport=udp.*' "$E2E_TMP/client.log" | tail -n1))"
}

# rebind: both ends behind port-restricted NATs, hole punched, a 200 MiB download running
# (curl through the client's forward, paced so it lasts); midway the client's NAT rebinds: it
# takes a new public address (198.18.6.3, snat) and forgets every mapping (conntrack -F), so
# the site's NAT drops what now comes from the new address. The client sees its direct path
# stop answering, moves the site onto the relay, and the site, told the client's new endpoint,
# punches toward it. The download completes, byte for byte.
rebind() {
  behind_nats ""
  command -v conntrack > /dev/null || { echo "SKIP: conntrack is not installed (scripts/setup.sh test installs it)" >&2; exit 77; }
  mkdir -p "$E2E_TMP/bigweb"
  head -c 200M /dev/urandom > "$E2E_TMP/bigweb/big.bin"
  want=$(sha256sum < "$E2E_TMP/bigweb/big.bin" | cut -d' ' -f1)
  bg "$SP" bigweb python3 -m http.server --bind 10.30.0.2 --directory "$E2E_TMP/bigweb" 8080
  wait_until 30 "web listening" ip netns exec "$SP" sh -c "ss -ltn | grep -q '10.30.0.2:8080'"
  admin resource add big --domain big.example.internal --site s1 --target 10.30.0.2:8080 --kind tcp --port 80 \
    --allow user:alice > /dev/null
  bg "$CP" client "$CLIENT" --state_dir="$E2E_TMP/client-state" --server=198.18.1.1:443 \
    --token="$(token_of "$E2E_TMP/device-token.out")" --userspace --interface="p2c${E2E_ID:0:8}" --uapi_dir="$E2E_TMP" --socks5=off --http_proxy=off \
    --forward=127.0.0.1:8088:big.example.internal:80 --status_file="$E2E_TMP/rebind-status.json"
  wait_until 30 "the site reachable" ip netns exec "$CP" curl -sf --max-time 1 -o /dev/null -I http://127.0.0.1:8088/big.bin
  wait_until 30 "the site direct in the client's status" sh -c \
    "grep -q '\"endpoint\":\"198.18.5.2:[0-9]*\",\"path\":\"direct\"' '$E2E_TMP/rebind-status.json'"
  # 25 MiB/s: eight seconds of download.
  ip netns exec "$CP" curl -sf --max-time 240 --limit-rate 25M -o "$E2E_TMP/big.out" http://127.0.0.1:8088/big.bin \
    > "$E2E_TMP/curl-big.log" 2>&1 &
  CURL_PID=$!
  E2E_PIDS+=("$CURL_PID")
  wait_until 60 "50 MiB downloaded" sh -c "[ \$(stat -c %s '$E2E_TMP/big.out' 2>/dev/null || echo 0) -gt 52428800 ]"
  site_lines=$(wc -l < "$E2E_TMP/site.log")
  dev_nc=$(ip -n "$NC" -o addr show to 198.18.6.2 | awk '{print $2}')
  ip -n "$NC" addr add 198.18.6.3/24 dev "$dev_nc"
  ip netns exec "$NC" nft flush chain ip p2p_nat post
  ip netns exec "$NC" nft add rule ip p2p_nat post ip saddr 10.40.0.0/24 snat to 198.18.6.3
  ip netns exec "$NC" conntrack -F > /dev/null 2>&1
  at=$(stat -c %s "$E2E_TMP/big.out")
  log "the client's NAT rebound (198.18.6.2 -> 198.18.6.3, mappings flushed) after $((at / 1048576)) MiB"
  wait "$CURL_PID" || fail "the download failed after the rebinding: $(cat "$E2E_TMP/curl-big.log")"
  got=$(sha256sum < "$E2E_TMP/big.out" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "the 200 MiB download differs after the rebinding ($(stat -c %s "$E2E_TMP/big.out") bytes)"
  grep -q 'event=client.path.*path=relayed.*stopped answering' "$E2E_TMP/client.log" ||
    fail "the client did not see its direct path stop answering"
  log "200 MiB intact across the rebinding; $(grep -o 'event=client.path.*stopped answering[^"]*' "$E2E_TMP/client.log" | head -n1)"
  log "the server heard the client at: $(grep -o 'event=server.wireguard_heard node=d-[^ ]* endpoint=[^ ]*' "$E2E_TMP/server$SERVER_N.log" | sed 's/.*endpoint=//' | tr '\n' ' ')"
  tail -n +"$((site_lines + 1))" "$E2E_TMP/site.log" | grep 'event=site.applied' | grep -q 'punches=[1-9]' ||
    fail "the site sent no handshake to the client's new endpoint"
}

# paths_bench (bench/nat_paths.sh, not a test): single-stream TCP throughput (iperf3 -R, the
# site's LAN to the client) through each path in turn, the same client (TUN mode) and site
# behind NATs: direct (punched), relayed over UDP (the client's NAT made symmetric), relayed
# over TLS (UDP dropped at the client); the server's CPU seconds per GB it relayed; then a
# wireguard-go pair on a plain link. Prints "BENCH ..." lines.
paths_bench() {
  for t in iperf3 wireguard-go wg conntrack; do
    command -v "$t" > /dev/null || { echo "SKIP: $t is not installed" >&2; exit 77; }
  done
  secs=${P2P_BENCH_SECS:-10}
  behind_nats ""
  bg "$SP" iperf iperf3 -s -B 10.30.0.2 -p 5201
  wait_until 30 "iperf3 listening" ip netns exec "$SP" sh -c "ss -ltn | grep -q '10.30.0.2:5201'"
  admin resource add iperf --domain iperf.example.internal --site s1 --target 10.30.0.2:5201 --kind tcp --port 5201 \
    --allow user:alice > /dev/null
  token=$(token_of "$E2E_TMP/device-token.out")
  server_cpu() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
  server_stat() {  # NAME: its value in a fresh SIGUSR1 stats line of the server
    local n
    n=$(grep -c 'event=server.stats' "$E2E_TMP/server$SERVER_N.log" || true)
    kill -USR1 "$SERVER_PID"
    wait_until 10 "the server's stats" sh -c "[ \$(grep -c 'event=server.stats' '$E2E_TMP/server$SERVER_N.log') -gt $n ]"
    grep 'event=server.stats' "$E2E_TMP/server$SERVER_N.log" | tail -n1 | grep -o "$1=[0-9]*" | cut -d= -f2
  }
  run_mode() {  # LABEL PATH (the site's path in the client's status)
    rm -f "$E2E_TMP/bench-status.json"
    # TUN mode, the machine's DNS left alone (the benchmark dials the resource's address).
    printf '{"dns": {"state_dir": "%s/client-dns", "hook": "none"}}\n' "$E2E_TMP" > "$E2E_TMP/bench-client.json"
    bg "$CP" "client-$1" "$CLIENT" --state_dir="$E2E_TMP/client-state" --server=198.18.1.1:443 ${token:+--token="$token"} \
      --config="$E2E_TMP/bench-client.json" --interface="p2b${E2E_ID:0:8}" --uapi_dir="$E2E_TMP" --status_file="$E2E_TMP/bench-status.json"
    local pid=$BG_PID
    token=""  # enrolled: the state dir is enough from now on
    wait_until 30 "the client's status ($1)" sh -c "grep -q '\"name\":\"iperf' '$E2E_TMP/bench-status.json'"
    addr=$(python3 -c 'import json,sys; print([r["address"] for r in json.load(open(sys.argv[1]))["resources"] if r["name"].startswith("iperf")][0])' "$E2E_TMP/bench-status.json")
    wait_until 30 "iperf reachable ($1)" ip netns exec "$CP" sh -c "nc -z -w 1 $addr 5201"
    wait_until 30 "the site's path is $2" sh -c "grep -q '\"path\":\"$2\"' '$E2E_TMP/bench-status.json'"
    local cpu0 bytes0 cpu1 bytes1
    cpu0=$(server_cpu); bytes0=$(server_stat relay_bytes)
    ip netns exec "$CP" iperf3 -c "$addr" -p 5201 -R -t "$secs" -J > "$E2E_TMP/iperf-$1.json"
    cpu1=$(server_cpu); bytes1=$(server_stat relay_bytes)
    grep -q '"path":"'"$2"'"' "$E2E_TMP/bench-status.json" || log "note: the path was no longer $2 at the end"
    mbit=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' "$E2E_TMP/iperf-$1.json")
    echo "BENCH $1 mbit=$mbit server_cpu_ticks=$((cpu1 - cpu0)) relayed_bytes=$((bytes1 - bytes0)) clk_tck=$(getconf CLK_TCK)"
    kill "$pid"
    wait_until 30 "client stopped ($1)" sh -c "! kill -0 $pid 2>/dev/null"
  }
  run_mode direct direct
  # Symmetric: a new random port for every destination, so only the relay gets through.
  ip netns exec "$NC" nft flush chain ip p2p_nat post
  ip netns exec "$NC" nft add rule ip p2p_nat post ip saddr 10.40.0.0/24 masquerade fully-random
  ip netns exec "$NC" conntrack -F > /dev/null 2>&1 || true
  run_mode relayed relayed
  ip netns exec "$CP" nft -f - <<'NFT'
table inet p2p_noudp {
  chain out { type filter hook output priority filter; oifname != "lo" meta l4proto udp drop; }
  chain in { type filter hook input priority filter; iifname != "lo" meta l4proto udp drop; }
}
NFT
  run_mode tls relayed-tls

  # The peer baseline: a wireguard-go pair on a plain link.
  A="p2cWA-$E2E_ID"; B="p2cWB-$E2E_ID"
  netns_add "$A"; netns_add "$B"
  veth_link "$A" 198.18.9.1/24 "$B" 198.18.9.2/24
  key_a=$(wg genkey); pub_a=$(echo "$key_a" | wg pubkey)
  key_b=$(wg genkey); pub_b=$(echo "$key_b" | wg pubkey)
  for side in "$A:wga${E2E_ID:0:6}:$key_a:10.99.0.1:$pub_b:10.99.0.2:198.18.9.2:51820" "$B:wgb${E2E_ID:0:6}:$key_b:10.99.0.2:$pub_a:10.99.0.1::"; do
    IFS=: read -r ns ifn key addr peer peeraddr ep_ip ep_port <<<"$side"
    E2E_FILES+=("/var/run/wireguard/$ifn.sock")
    bg "$ns" "$ifn" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$ifn"
    wait_until 10 "$ifn UAPI socket" test -S "/var/run/wireguard/$ifn.sock"
    echo "$key" > "$E2E_TMP/$ifn.key"
    args=(private-key "$E2E_TMP/$ifn.key" listen-port 51820 peer "$peer" allowed-ips "$peeraddr/32")
    [ -n "$ep_ip" ] && args+=(endpoint "$ep_ip:$ep_port")
    ip netns exec "$ns" wg set "$ifn" "${args[@]}"
    ip -n "$ns" addr add "$addr/24" dev "$ifn"
    ip -n "$ns" link set "$ifn" up
  done
  bg "$B" iperf-wgo iperf3 -s -B 10.99.0.2 -p 5201
  wait_until 15 "wireguard-go tunnel up" ip netns exec "$A" ping -c 1 -W 1 10.99.0.2
  wait_until 30 "iperf3 listening (wireguard-go)" ip netns exec "$B" sh -c "ss -ltn | grep -q '10.99.0.2:5201'"
  ip netns exec "$A" iperf3 -c 10.99.0.2 -p 5201 -R -t "$secs" -J > "$E2E_TMP/iperf-wgo.json"
  mbit=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e6))' "$E2E_TMP/iperf-wgo.json")
  echo "BENCH wireguard-go mbit=$mbit"
}

# tls_site: UDP dropped in the site's namespace (a firewall that lets only TCP out): the site,
# started behind it, finds no answer over UDP and takes WireGuard over TLS to the server's 443;
# a client behind an ordinary NAT reaches it through the relay. The page loads, the site's stats
# and `admin site list` say so.
tls_site() {
  behind_nats ""
  mkdir -p "$E2E_TMP/tlsweb"
  page_text="p2proxy page from a site over tls $E2E_ID"
  echo "$page_text" > "$E2E_TMP/tlsweb/index.html"
  bg "$SP" tlsweb python3 -m http.server --bind 10.30.0.2 --directory "$E2E_TMP/tlsweb" 8080
  wait_until 30 "web listening" ip netns exec "$SP" sh -c "ss -ltn | grep -q '10.30.0.2:8080'"
  admin resource add web --domain web.example.internal --site s1 --target 10.30.0.2:8080 --kind tcp --port 80 \
    --allow user:alice > /dev/null
  # The site again, now behind a firewall that drops UDP.
  kill -TERM "$NAT_SITE_PID"
  wait_until 30 "the site stopped" sh -c "! kill -0 $NAT_SITE_PID 2>/dev/null"
  ip netns exec "$SP" nft -f - <<'NFT'
table inet p2p_noudp {
  chain out { type filter hook output priority filter; oifname != "lo" meta l4proto udp drop; }
  chain in { type filter hook input priority filter; iifname != "lo" meta l4proto udp drop; }
}
NFT
  mv "$E2E_TMP/site.log" "$E2E_TMP/site-udp.log"
  bg "$SP" site "$SITE" --state_dir="$E2E_TMP/site-state"
  wait_until 30 "the site over TLS" grep -q 'event=uplink.tls_ready' "$E2E_TMP/site.log"
  bg "$CP" client "$CLIENT" --state_dir="$E2E_TMP/client-state" --server=198.18.1.1:443 \
    --token="$(token_of "$E2E_TMP/device-token.out")" --userspace --interface="p2c${E2E_ID:0:8}" --uapi_dir="$E2E_TMP" --socks5=off --http_proxy=off \
    --forward=127.0.0.1:8088:web.example.internal:80 --status_file="$E2E_TMP/tls-status.json"
  wait_until 30 "the page from the site over TLS" sh -c "ip netns exec '$CP' curl -sf --max-time 1 http://127.0.0.1:8088/ | grep -q '$page_text'"
  for i in 1 2 3 4 5; do
    ip netns exec "$CP" curl -sf --max-time 2 http://127.0.0.1:8088/ | grep -q "$page_text" || fail "request $i failed"
  done
  admin site list > "$E2E_TMP/tls-sites.out"
  grep s1 "$E2E_TMP/tls-sites.out" | grep -q '(relayed over TLS)' || fail "admin site list does not show s1 over TLS: $(cat "$E2E_TMP/tls-sites.out")"
  pkill -USR1 -f "p2proxy-site --state_dir=$E2E_TMP/site-state"
  wait_until 10 "the site's stats" grep -q 'event=site.stats.*wireguard=tls' "$E2E_TMP/site.log"
  log "a site behind a firewall that drops UDP: pages through the relay over TLS; admin site list: $(grep s1 "$E2E_TMP/tls-sites.out" | tr -s ' ')"
}

# systemd: the packaged site as an administrator runs it. The .deb (cpack) is installed with
# dpkg -i into a machine of its own: a throwaway overlay of / (tmpfs, mount namespace) in the
# site's network namespace, with systemd booted as its PID 1 in a PID namespace. With the token in
# /etc/p2proxy/site.env, `systemctl start p2proxy-site` enrolls it (as the unit's user p2proxy,
# under its hardening), the server shows it online, and the client fetches the vault through it;
# `systemctl stop` stops it. Nothing of the box outlives the test.
systemd_box() {
  BUILD=${P2P_BUILD_DIR:?set P2P_BUILD_DIR to the build directory (for cpack)}
  for t in /lib/systemd/systemd nsenter cpack; do
    command -v "$t" > /dev/null || { echo "SKIP: $t is not installed" >&2; exit 77; }
  done
  (cd "$BUILD" && cpack -B "$E2E_TMP/deb" > "$E2E_TMP/cpack.log" 2>&1) || fail "cpack: $(tail -n 20 "$E2E_TMP/cpack.log")"
  deb=$(ls "$E2E_TMP"/deb/*.deb | head -n1)
  admin user add alice > /dev/null
  admin token create site s1 > "$E2E_TMP/site-token.out"
  admin token create device --user alice > "$E2E_TMP/device-token.out"

  mkdir -p "$E2E_TMP/box"
  bg "$S" box unshare --mount --propagation private bash -euc '
    b=$1
    mount -t tmpfs tmpfs "$b"
    mkdir -p "$b/up" "$b/wk" "$b/root"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$b/up,workdir=$b/wk" "$b/root"
    r=$b/root
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs tmpfs "$r/tmp"
    mount -t tmpfs tmpfs "$r/run"
    exec unshare --pid --fork --mount-proc="$r/proc" chroot "$r" env container=other \
      /lib/systemd/systemd --system --unit=basic.target --log-target=console
  ' _ "$E2E_TMP/box"
  BOX_PID=$BG_PID
  # The box's init is systemd, PID 1 of its PID namespace: a descendant of the background job
  # (ip netns exec, unshare and unshare --fork may each be a process of their own). SIGKILL to
  # it from outside ends the whole namespace; killing only its parent would leave it running.
  box_init() {
    local pid=$BOX_PID
    for _ in 1 2 3 4 5; do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ] && { echo "$pid"; return 0; }
      pid=$(pgrep -P "$pid" | head -n1)
      [ -n "$pid" ] || return 1
    done
    return 1
  }
  wait_until 30 "the box's init" box_init
  BOX_INIT=$(box_init)
  E2E_PIDS+=("$BOX_INIT")
  grep -q '^NSpid:.*[[:space:]]1$' "/proc/$BOX_INIT/status" || fail "pid $BOX_INIT is not the box's PID 1"
  in_box() { nsenter -t "$BOX_INIT" -m -p -n -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }
  box_up() { state=$(in_box systemctl is-system-running 2>&1 || true); echo "box state: $state" >> "$E2E_TMP/box-state.log"; [ "$state" = running ] || [ "$state" = degraded ]; }
  wait_until 120 "systemd up in the box (its answers: box-state.log)" box_up
  log "the box: systemd $(in_box systemctl --version | head -n1 | cut -d' ' -f2) is PID 1 (host pid $BOX_INIT), state $(in_box systemctl is-system-running || true)"
  in_box dpkg -s p2proxy > /dev/null 2>&1 && fail "p2proxy is installed in the box before dpkg -i"

  in_box sh -c 'cat > /tmp/p2proxy.deb' < "$deb"
  in_box dpkg -i /tmp/p2proxy.deb > "$E2E_TMP/dpkg.log" 2>&1 || fail "dpkg -i: $(tail -n 20 "$E2E_TMP/dpkg.log")"
  log "dpkg -i $(basename "$deb") in the box: $(in_box dpkg-query -W -f='${Status} ${Version}' p2proxy)"
  in_box python3 -c 'import p2proxy; print(p2proxy.version())' > "$E2E_TMP/py.out" 2>&1 \
    || fail "python3 -c 'import p2proxy' in the box: $(cat "$E2E_TMP/py.out")"
  log "in the box: python3 -c 'import p2proxy' -> version $(cat "$E2E_TMP/py.out")"

  printf 'P2PROXY_SERVER=198.18.1.1:443\nP2PROXY_TOKEN=%s\n' "$(token_of "$E2E_TMP/site-token.out")" \
    | in_box sh -c 'umask 077; cat > /etc/p2proxy/site.env'
  in_box systemctl start p2proxy-site || fail "systemctl start p2proxy-site: $(in_box journalctl -u p2proxy-site --no-pager | tail -n 20)"
  site_online() { "$SERVER" admin --admin_socket="$E2E_TMP/admin.sock" site list > "$E2E_TMP/sites.out" 2>&1; grep s1 "$E2E_TMP/sites.out" | grep -q online; }
  wait_until 60 "the systemd-run site online at the server (journal: journalctl -u p2proxy-site)" site_online \
    || true
  if ! site_online; then
    in_box journalctl -u p2proxy-site --no-pager | tail -n 30 >&2
    fail "the site started by systemctl did not come online"
  fi
  log "systemctl start p2proxy-site: $(in_box systemctl is-active p2proxy-site), enrolled from /etc/p2proxy/site.env; the server: $(grep s1 "$E2E_TMP/sites.out" | tr -s ' ')"
  user=$(in_box ps -o user= -C p2proxy-site | head -n1)
  [ "$user" = p2proxy ] || fail "the site runs as '$user', not p2proxy"
  [ "$(in_box stat -c '%a %U' /var/lib/p2proxy/site)" = "700 p2proxy" ] \
    || fail "the state dir is $(in_box stat -c '%a %U' /var/lib/p2proxy/site)"

  admin ca export > "$E2E_TMP/ca.pem" 2>/dev/null
  admin resource add vault --domain vault.example.internal --site s1 --target 198.19.0.2:8080 \
    --kind https --allow user:alice > /dev/null
  start_client --server=198.18.1.1:443 --token="$(token_of "$E2E_TMP/device-token.out")"
  wait_until 30 "vault through the packaged site" in_c curl -sf --max-time 2 --cacert "$E2E_TMP/ca.pem" \
    -o "$E2E_TMP/page.html" https://vault.example.internal/
  grep -q "p2proxy vault page $E2E_ID" "$E2E_TMP/page.html" || fail "the page is not the app's"
  log "the site runs as user p2proxy (state dir 0700 p2proxy) and serves https://vault.example.internal/ to the client"

  in_box systemctl stop p2proxy-site
  [ "$(in_box systemctl is-active p2proxy-site || true)" = inactive ] || fail "systemctl stop left it $(in_box systemctl is-active p2proxy-site)"
  in_box pgrep -x p2proxy-site > /dev/null && fail "p2proxy-site still runs after systemctl stop"
  log "systemctl stop p2proxy-site: inactive, no process left"
  kill -9 "$BOX_INIT"
  wait_until 30 "the box gone" sh -c "! kill -0 $BOX_INIT 2>/dev/null"
}

case "$scenario" in
  story) story ;;
  failover) failover ;;
  nat) nat ;;
  crash) crash ;;
  userspace) userspace ;;
  ranges) ranges ;;
  embed) embed ;;
  systemd) systemd_box ;;
  punch) punch ;;
  relay) relay ;;
  tls) tls ;;
  rebind) rebind ;;
  tls_site) tls_site ;;
  paths_bench) paths_bench ;;
  *) fail "unknown scenario $scenario" ;;
esac
log "PASS: $scenario"
