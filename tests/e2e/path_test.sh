#!/usr/bin/env bash
# path_test.sh: the private path end to end, with p2proxy at both ends, in three namespaces:
#   C (p2proxy-client: TUN + private DNS on 100.96.128.1)  --198.18.4.0/24--  S (p2proxy-site)
#   S  --198.19.4.0/24 (the site's LAN)--  L (the app: nginx at 198.19.4.2:8080)
# curl http://vault.example.internal/ in C: the name resolves inside the client (no public
# record), packets ride WireGuard to the site, whose lwIP accepts 100.96.128.20:80 and splices
# to the app. The site has no listen port: it dials out to the client, and `ss` shows it
# listening on nothing. (TLS at the site and identity checks arrive with M1.5.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
CLIENT=${P2P_CLIENT_BIN:?set P2P_CLIENT_BIN to the p2proxy-client binary}
SITE=${P2P_SITE_BIN:?set P2P_SITE_BIN to the p2proxy-site binary}
require_root_or_skip wg curl dig nginx getent
say() { if [ -n "${P2P_DEMO_VERBOSE:-}" ]; then echo "  $*"; fi; log "$*"; }

C="p2pC-$E2E_ID"; S="p2pS-$E2E_ID"; L="p2pL-$E2E_ID"
netns_add "$C"; netns_add "$S"; netns_add "$L"
veth_link "$C" 198.18.4.1/24 "$S" 198.18.4.2/24
veth_link "$S" 198.19.4.1/24 "$L" 198.19.4.2/24
ip -n "$L" route add default via 198.19.4.1
mkdir -p "/etc/netns/$C"
E2E_FILES+=("/etc/netns/$C/resolv.conf"); E2E_DIRS+=("/etc/netns/$C")
printf 'nameserver 198.18.4.2\n' > "/etc/netns/$C/resolv.conf"

# ---- the app on the site's LAN ----
mkdir -p "$E2E_TMP/www"
echo "vault: the private app behind the site ($E2E_ID)" > "$E2E_TMP/www/index.html"
cat > "$E2E_TMP/nginx.conf" <<NGINX
daemon off; user root; worker_processes 1; pid $E2E_TMP/nginx.pid; error_log $E2E_TMP/nginx-error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path $E2E_TMP/nb; proxy_temp_path $E2E_TMP/np;
  fastcgi_temp_path $E2E_TMP/nf; uwsgi_temp_path $E2E_TMP/nu; scgi_temp_path $E2E_TMP/ns;
  server { listen 198.19.4.2:8080; root $E2E_TMP/www; } }
NGINX
bg "$L" nginx nginx -c "$E2E_TMP/nginx.conf"
wait_until 10 "nginx" ip netns exec "$L" sh -c "ss -ltn | grep -q 198.19.4.2:8080"

key_c=$(wg genkey); pub_c=$(echo "$key_c" | wg pubkey)
key_s=$(wg genkey); pub_s=$(echo "$key_s" | wg pubkey)

# ---- the site: no listen port, dials out to the client ----
cat > "$E2E_TMP/site.json" <<JSON
{"wireguard": {"private_key": "$key_s", "address": "100.96.0.10"},
 "peers": [{"public_key": "$pub_c", "allowed_ips": ["100.96.0.5/32"], "user": "tester", "endpoint": "198.18.4.1:51820", "persistent_keepalive": 5}],
 "resources": [{"name": "vault", "address": "100.96.128.20", "port": 80, "protocol": "tcp", "target": "198.19.4.2:8080", "access": {"users": ["tester"]}}]}
JSON
start_p2p_site "$S" "$SITE"

# ---- the client: TUN + private DNS ----
cat > "$E2E_TMP/client.json" <<JSON
{"dns": {"state_dir": "$E2E_TMP/state"},
 "zones": ["example.internal"],
 "resources": [{"name": "vault.example.internal", "address": "100.96.128.20"}]}
JSON
start_p2p_tun_client "$C" "$CLIENT" p2p "$key_c" "$pub_s"
wgif=$WGIF
in_c() { ip netns exec "$C" "$@"; }

ans=$(in_c dig +short +time=2 vault.example.internal)
[ "$ans" = 100.96.128.20 ] || fail "dig vault.example.internal (through resolv.conf) gave '$ans'"
say "dig vault.example.internal -> $ans (answered inside the client, resolver 100.96.128.1)"
wait_until 20 "the site dialled in (handshake)" sh -c "ip netns exec '$C' wg show '$wgif' latest-handshakes | awk '{exit !(\$2 > 0)}'"
say "the site dialled out to the client: $(in_c wg show "$wgif" endpoints | awk '{print $2}') (the site has no listen port)"
page=$(in_c curl -sS --max-time 10 http://vault.example.internal/ 2>"$E2E_TMP/curl.err") || fail "curl http://vault.example.internal/: $(cat "$E2E_TMP/curl.err")"
grep -q "vault: the private app behind the site ($E2E_ID)" <<<"$page" || fail "wrong page: $page"
say "curl http://vault.example.internal/ -> $page"
listening=$(ip netns exec "$S" ss -lntup | grep -F "pid=$SITE_PID," || true)
if grep -q '^tcp' <<<"$listening"; then fail "the site listens on TCP: $listening"; fi
say "ss -lntup in the site's namespace, p2proxy-site's listeners: ${listening:-none}"
kill -TERM "$CLIENT_PID"
wait_until 10 "client stopped" sh -c "! kill -0 $CLIENT_PID 2>/dev/null"
grep -q "nameserver 198.18.4.2" "/etc/netns/$C/resolv.conf" || fail "resolv.conf not restored"
say "SIGTERM: the client restored resolv.conf and removed its interface"
log "PASS: path private_http"
