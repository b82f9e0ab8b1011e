#!/usr/bin/env bash
# demo_test.sh: the whole product story on one machine, in network namespaces, told step by step
# in plain words (this is what `sudo scripts/demo.sh` shows):
#   I   "the internet": p2proxy-server on 198.18.1.1:443 (control, TLS) and UDP 51820 (WireGuard);
#       routes between the others
#   R   a home router: 198.18.1.2 on the internet, 10.10.0.1 inside; nftables masquerade, full
#       cone for UDP (see below), nothing forwarded in
#   S   site s1 (p2proxy-site, 10.10.0.2), behind R; its LAN 198.19.0.0/24
#   L   the LAN's apps: nginx 198.19.0.2:8080 (the vault) and sshd 198.19.0.2:22
#   C   a person's machine: p2proxy-client in TUN mode (198.18.2.2), private DNS
#   S2  site s2 (198.18.3.2), its LAN 198.19.1.0/24 with L2: nginx 198.19.1.2:8080, for failover
# Steps: init; admin; the site enrolls from behind the NAT; the client enrolls; resources; the
# page with curl and headless Chromium (screenshot to $P2P_SCREENSHOT); ssh; three invariants
# captured (I1 the site accepts nothing from outside, I2 private names never leave the client,
# I3 no plaintext at the server); failover to s2 after kill -9 (measured); audit; the page.
# Everything is cleaned up by lib.sh's trap, on success and on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
SERVER=${P2P_SERVER_BIN:?set P2P_SERVER_BIN to the p2proxy-server binary}
SITE=${P2P_SITE_BIN:?set P2P_SITE_BIN to the p2proxy-site binary}
CLIENT=${P2P_CLIENT_BIN:?set P2P_CLIENT_BIN to the p2proxy-client binary}
SHOT=${P2P_SCREENSHOT:-$E2E_TMP/vault.png}
require_root_or_skip curl openssl nginx dig python3 nft ss ssh ssh-keygen /usr/sbin/sshd tcpdump chromium

I="p2dI-$E2E_ID"; R="p2dR-$E2E_ID"; S="p2dS-$E2E_ID"; L="p2dL-$E2E_ID"; C="p2dC-$E2E_ID"
S2="p2dS2-$E2E_ID"; L2="p2dL2-$E2E_ID"
in_i() { ip netns exec "$I" "$@"; }
in_c() { ip netns exec "$C" "$@"; }
admin() { in_i "$SERVER" admin --admin_socket="$E2E_TMP/admin.sock" "$@"; }
admin_q() { "$SERVER" admin --admin_socket="$E2E_TMP/admin.sock" "$@"; }  # for wait_until sh -c
now_ms() { date +%s%3N; }
token_of() { grep -o 'p2p1_[0-9a-f_]*' "$1" | head -n1; }
say() { log "$*"; }
show() { sed 's/^/      /' >&2; }  # indent a command's output under the sentence that explains it
step() { printf '\n' >&2; log "== $* =="; }

# ---- the machine-sized world ----
netns_add "$I"; netns_add "$R"; netns_add "$S"; netns_add "$L"; netns_add "$C"; netns_add "$S2"; netns_add "$L2"
veth_link "$I" 198.18.1.1/24 "$R" 198.18.1.2/24
veth_link "$R" 10.10.0.1/24 "$S" 10.10.0.2/24
veth_link "$S" 198.19.0.1/24 "$L" 198.19.0.2/24
veth_link "$I" 198.18.2.1/24 "$C" 198.18.2.2/24
veth_link "$I" 198.18.3.1/24 "$S2" 198.18.3.2/24
veth_link "$S2" 198.19.1.1/24 "$L2" 198.19.1.2/24
ip netns exec "$I" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
ip -n "$R" route add default via 198.18.1.1
ip -n "$S" route add default via 10.10.0.1
ip -n "$L" route add default via 198.19.0.1
ip -n "$C" route add default via 198.18.2.1
ip -n "$S2" route add default via 198.18.3.1
ip -n "$L2" route add default via 198.19.1.1
# The router's NAT: everything from inside leaves as 198.18.1.2 (masquerade; the site's port
# kept). It is "full cone" (endpoint-independent mapping and filtering, RFC 4787, as OpenWrt's
# fullcone option and many home routers do): while the site keeps a UDP mapping open by sending
# from it, any peer may answer to that port. Nothing else comes in: no port is forwarded, no TCP
# at all. (Today a managed site never sends first to a client, so a NAT that also filters by the
# peer's address, like control_test.sh nat's "masquerade fully-random", would keep clients out
# until hole punching or the relay exist.) The table lives in R and goes with it.
r_up=$(ip -n "$R" -o addr show to 198.18.1.2 | awk '{print $2}')
r_in=$(ip -n "$R" -o addr show to 10.10.0.1 | awk '{print $2}')
ip netns exec "$R" nft -f - <<NFT
table ip p2p_demo_nat {
  set cone { type inet_service; flags dynamic,timeout; timeout 120s; }
  chain outbound {
    type filter hook forward priority filter;
    iifname "$r_in" oifname "$r_up" meta l4proto udp update @cone { udp sport }
  }
  chain inbound {
    type nat hook prerouting priority dstnat;
    iifname "$r_up" udp dport @cone dnat to 10.10.0.2
  }
  chain masq {
    type nat hook postrouting priority srcnat;
    oifname "$r_up" ip saddr 10.10.0.0/24 masquerade
  }
}
NFT
uplink_c=$(ip -n "$C" -o addr show to 198.18.2.2 | awk '{print $2}')

netns_dir_existed=0; [ -d /etc/netns ] && netns_dir_existed=1
mkdir -p "/etc/netns/$C"
E2E_FILES+=("/etc/netns/$C/resolv.conf")
E2E_DIRS+=("/etc/netns/$C")
[ $netns_dir_existed -eq 1 ] || E2E_DIRS+=(/etc/netns)  # made here: removed too (if empty)
printf 'nameserver 198.18.2.1\n' > "/etc/netns/$C/resolv.conf"

# ---- the apps on the two LANs ----
LINE="Vault: the private app on the LAN behind site s1 (demo $E2E_ID)"
LINE2="Vault: the private app on the LAN behind site s2 (demo $E2E_ID)"
mkdir -p "$E2E_TMP/www" "$E2E_TMP/www2"
printf '<!doctype html>\n<html><head><title>vault.example.internal</title></head>\n<body style="font-family:sans-serif;margin:40px">\n<h1>%s</h1>\n<p>Reached over a WireGuard tunnel; TLS ended at the site.</p>\n</body></html>\n' "$LINE" > "$E2E_TMP/www/index.html"
printf '<!doctype html>\n<html><head><title>vault.example.internal</title></head>\n<body style="font-family:sans-serif;margin:40px">\n<h1>%s</h1>\n<p>Reached over a WireGuard tunnel; TLS ended at the site.</p>\n</body></html>\n' "$LINE2" > "$E2E_TMP/www2/index.html"
nginx_conf() {  # NAME ROOT LISTEN
  cat > "$E2E_TMP/$1.conf" <<NGINX
daemon off;
user root;
worker_processes 1;
pid $E2E_TMP/$1.pid;
error_log $E2E_TMP/$1-error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $E2E_TMP/$1-body;
  proxy_temp_path $E2E_TMP/$1-proxy;
  fastcgi_temp_path $E2E_TMP/$1-fcgi;
  uwsgi_temp_path $E2E_TMP/$1-uwsgi;
  scgi_temp_path $E2E_TMP/$1-scgi;
  server { listen $3; root $2; }
}
NGINX
}
nginx_conf nginx "$E2E_TMP/www" 198.19.0.2:8080
nginx_conf nginx2 "$E2E_TMP/www2" 198.19.1.2:8080
bg "$L" nginx nginx -c "$E2E_TMP/nginx.conf"
bg "$L2" nginx2 nginx -c "$E2E_TMP/nginx2.conf"

start_sshd "$L" 198.19.0.2
wait_until 30 "nginx listening" ip netns exec "$L" sh -c "ss -ltn | grep -q 198.19.0.2:8080"
wait_until 30 "nginx2 listening" ip netns exec "$L2" sh -c "ss -ltn | grep -q 198.19.1.2:8080"
wait_until 30 "sshd listening" ip netns exec "$L" sh -c "ss -ltn | grep -q 198.19.0.2:22"

say "p2proxy demo: seven network namespaces on this machine stand for the internet (I), a home"
say "router with NAT (R), the site host behind it (S) and its LAN (L), a person's laptop (C), and a"
say "second site (S2, L2). The LAN app is nginx at 198.19.0.2:8080; nothing outside the LAN can reach it."

# ---- 1. the server ----
step "1. The server"
in_i "$SERVER" init --state_dir="$E2E_TMP/server" --public_address=198.18.1.1:443 > "$E2E_TMP/init.out" 2>/dev/null
head -n 4 "$E2E_TMP/init.out" | show
ca_fp=$(openssl x509 -noout -fingerprint -sha256 -in "$E2E_TMP/server/ca.pem" | cut -d= -f2)
say "p2proxy-server init made a CA and the server's keys. CA fingerprint (SHA-256): $ca_fp"
bg "$I" server "$SERVER" --state_dir="$E2E_TMP/server" --listen=0.0.0.0:443 \
  --admin_socket="$E2E_TMP/admin.sock" --log_level=info
SERVER_PID=$BG_PID
wait_until 30 "server up" grep -q 'event=server.up' "$E2E_TMP/server.log"
say "The server runs on the internet at 198.18.1.1: control channel TLS on TCP 443, WireGuard on UDP 51820."

# ---- 2. admin ----
step "2. Users, roles and one-time tokens"
admin user add alice > /dev/null
admin role add admins > /dev/null
admin user grant alice admins > /dev/null
admin token create site s1 > "$E2E_TMP/t1.out"
admin token create site s2 > "$E2E_TMP/t2.out"
admin token create device --user alice > "$E2E_TMP/td.out"
t1=$(token_of "$E2E_TMP/t1.out"); t2=$(token_of "$E2E_TMP/t2.out"); td=$(token_of "$E2E_TMP/td.out")
[ -n "$t1" ] && [ -n "$t2" ] && [ -n "$td" ] || fail "token create printed no token: $(cat "$E2E_TMP/t1.out")"
say "The admin added user alice, role admins (alice holds it), and three one-time enrollment tokens:"
say "two for sites s1 and s2, one for a device of alice's. No site or device exists yet:"
{ admin site list; admin device list; } 2>&1 | show

# ---- 3. site s1 behind the NAT ----
step "3. Site s1 enrolls from behind a NAT"
bg "$S" site "$SITE" --state_dir="$E2E_TMP/site-state" --audit_log="$E2E_TMP/site-audit.jsonl" \
  --server=198.18.1.1:443 --token="$t1"
SITE_PID=$BG_PID
wait_until 30 "site up" grep -q 'event=site.up' "$E2E_TMP/site.log"
wait_until 30 "s1 online" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep s1 | grep -q online"
wait_until 30 "the server heard s1 over WireGuard" grep -q 'event=server.wireguard_heard node=s-[^ ]* endpoint=198.18.1.2:' "$E2E_TMP/server.log"
heard=$(grep -o 'event=server.wireguard_heard node=s-[^ ]* endpoint=198.18.1.2:[0-9]*' "$E2E_TMP/server.log" | head -n1 | sed 's/.*endpoint=//')
wait_until 30 "site list shows s1 at the NAT's address" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep s1 | grep -q '198.18.1.2:'"
local_port=$(grep -o 'listen_port=[0-9]*' "$E2E_TMP/site.log" | head -n1 | cut -d= -f2)
say "p2proxy-site ran once with --server 198.18.1.1:443 --token p2p1_...: it enrolled and stays connected."
say "The site dialed out through its NAT: it sits at 10.10.0.2${local_port:+:$local_port}, the server sees it at $heard,"
say "the NAT's address, learned from the site's own WireGuard keepalives."
admin site list | show
in_s_tcp=$(ip netns exec "$S" ss -Hlnt | wc -l)
[ "$in_s_tcp" -eq 0 ] || fail "the site's host listens on TCP: $(ip netns exec "$S" ss -lnt)"
say "On the site's host, ss -lntu shows no TCP listener at all, only the site's own outgoing UDP socket:"
ip netns exec "$S" ss -lntup | show

# ---- 4. the client ----
step "4. Alice's laptop enrolls"
cat > "$E2E_TMP/client.json" <<JSON
{"dns": {"state_dir": "$E2E_TMP/client-dns", "hook": "resolv.conf"}}
JSON
bg "$C" client "$CLIENT" --state_dir="$E2E_TMP/client-state" --config="$E2E_TMP/client.json" \
  --interface="p2d${E2E_ID:0:8}" --uapi_dir="$E2E_TMP" --server=198.18.1.1:443 --token="$td"
CLIENT_PID=$BG_PID
wait_until 30 "device online" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' device list | grep -q online"
wait_until 30 "client DNS ready" grep -q 'event=client.dns_ready' "$E2E_TMP/client.log"
say "p2proxy-client enrolled with alice's device token: a TUN interface (WireGuard in userspace) and a"
say "private resolver that the laptop now uses ($(in_c cat /etc/resolv.conf | grep -m1 nameserver))."
admin device list | show

# ---- 5. resources ----
step "5. Two private resources"
admin ca export > "$E2E_TMP/ca.pem" 2>/dev/null
admin resource add vault --domain vault.example.internal --site s1 --target 198.19.0.2:8080 \
  --kind https --allow role:admins | show
admin resource add ssh --domain ssh.example.internal --site s1 --target 198.19.0.2:22 --kind tcp --port 22 \
  --allow user:alice | show
say "vault.example.internal (https, for role admins) and ssh.example.internal (tcp 22, for alice) both"
say "live on the LAN behind s1. The server issued the vault's certificate; the site holds it in memory."

# ---- 6. the page ----
step "6. https://vault.example.internal in curl and in a browser"
wait_until 30 "vault served" in_c curl -sf --max-time 2 --cacert "$E2E_TMP/ca.pem" -o "$E2E_TMP/page.html" https://vault.example.internal/
grep -qF "$LINE" "$E2E_TMP/page.html" || fail "the page is not the app's: $(head -c 300 "$E2E_TMP/page.html")"
addr=$(in_c dig +short vault.example.internal A)
say "curl --cacert ca.pem https://vault.example.internal/ (the name resolves privately to $addr):"
show < "$E2E_TMP/page.html"
# Chromium trusts the CA from its own NSS database, as `admin ca export` says to do. With no
# certutil (libnss3-tools), it is told to accept the CA's key instead.
home="$E2E_TMP/chrome-home"
mkdir -p "$home/.pki/nssdb"
chrome=(chromium --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir="$E2E_TMP/chrome"
        --window-size=1000,400)
if command -v certutil > /dev/null; then
  certutil -N -d "sql:$home/.pki/nssdb" --empty-password
  certutil -A -d "sql:$home/.pki/nssdb" -t C,, -n p2proxy -i "$E2E_TMP/ca.pem"
  trust="its NSS database trusts the p2proxy CA (certutil -A -t C,,); no certificate error is ignored"
else
  spki=$(openssl x509 -in "$E2E_TMP/ca.pem" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
  leaf=$(in_c openssl s_client -connect "$addr:443" -servername vault.example.internal </dev/null 2>/dev/null \
    | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
  chrome+=(--ignore-certificate-errors-spki-list="$spki,$leaf")
  trust="there is no certutil here (libnss3-tools), so it is told to accept the CA's key"
fi
dom=$(in_c env HOME="$home" timeout 60 "${chrome[@]}" --dump-dom https://vault.example.internal/ 2>"$E2E_TMP/chrome.err") \
  || fail "chromium: $(tail -n 5 "$E2E_TMP/chrome.err")"
grep -qF "$LINE" <<<"$dom" || fail "chromium did not get the app's page: $(head -c 300 <<<"$dom")"
rm -f "$SHOT"
in_c env HOME="$home" timeout 60 "${chrome[@]}" --screenshot="$SHOT" https://vault.example.internal/ 2>>"$E2E_TMP/chrome.err" \
  || fail "chromium screenshot failed: $(tail -n 5 "$E2E_TMP/chrome.err")"
[ -s "$SHOT" ] || fail "no screenshot at $SHOT"
say "Headless Chromium loaded the page with valid TLS: $trust."
say "Screenshot: $SHOT"

# ---- 7. ssh ----
step "7. ssh to a LAN host"
sshcmd=(ssh -F /dev/null -i "$E2E_TMP/user_key" -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no
        -o BatchMode=yes -o ConnectTimeout=10 -o LogLevel=ERROR)
out=$(in_c "${sshcmd[@]}" -o ProxyCommand="$CLIENT --state_dir=$E2E_TMP/client-state connect %h %p" \
      root@ssh.example.internal 'echo $(hostname) $(hostname -I)' 2>"$E2E_TMP/ssh1.log") \
  || fail "ssh through the ProxyCommand failed: $(cat "$E2E_TMP/ssh1.log")"
grep -q "198.19.0.2" <<<"$out" || fail "ssh reached another host: $out"
say "ssh -o ProxyCommand=\"p2proxy-client --state_dir=... connect %h %p\" root@ssh.example.internal ran"
say "a command on the LAN host, which answered with its name and address: $out"
out=$(in_c "${sshcmd[@]}" root@ssh.example.internal 'echo $(hostname) $(hostname -I)' 2>"$E2E_TMP/ssh2.log") \
  || fail "plain ssh through the TUN failed: $(cat "$E2E_TMP/ssh2.log")"
grep -q "198.19.0.2" <<<"$out" || fail "ssh reached another host: $out"
say "Plain ssh root@ssh.example.internal works too: the name resolves privately ($(in_c dig +short ssh.example.internal A))"
say "and the TUN carries it: $out"

# ---- 8. invariants ----
step "8. Three things that must always hold, checked"
# I1: from the internet, the site's public address accepts nothing, on any TCP port.
cat > "$E2E_TMP/scan.py" <<'PY'
import errno, selectors, socket, sys
host, opened, sel = sys.argv[1], [], selectors.DefaultSelector()
ports, batch = list(range(1, 65536)), 500
for i in range(0, len(ports), batch):
    socks = {}
    for p in ports[i:i + batch]:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, p))
        socks[s] = p
        sel.register(s, selectors.EVENT_WRITE)
    pending = len(socks)
    while pending:
        events = sel.select(timeout=3)
        if not events:
            break
        for key, _ in events:
            s = key.fileobj
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                opened.append(socks[s])
            sel.unregister(s); s.close(); pending -= 1
    for s in socks:  # no answer in 3 s: not open either
        if s.fileno() >= 0:
            sel.unregister(s); s.close()
print(" ".join(map(str, opened)) if opened else "none")
PY
open_ports=$(in_i timeout 120 python3 "$E2E_TMP/scan.py" 198.18.1.2) || fail "the port scan did not finish"
[ "$open_ports" = none ] || fail "I1: the site's public address accepts TCP on: $open_ports"
if in_i timeout 3 bash -c 'exec 3<>/dev/tcp/10.10.0.2/22' 2>/dev/null; then fail "I1: the site's own address is reachable from the internet"; fi
[ "$(ip netns exec "$S" ss -Hlnt | wc -l)" -eq 0 ] || fail "I1: the site listens on TCP"
# The one UDP port the site keeps open outward (its WireGuard socket) answers only keys it knows:
# a stranger's datagrams, junk or shaped like a handshake initiation, get nothing back.
cat > "$E2E_TMP/udp_probe.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
for msg in (b"hello?", b"\x01\x00\x00\x00" + os.urandom(144)):
    s.sendto(msg, (sys.argv[1], int(sys.argv[2])))
try:
    data, peer = s.recvfrom(2048)
    print("answered %d bytes from %s" % (len(data), peer))
except (socket.timeout, ConnectionRefusedError) as e:
    print("no answer")
PY
udp_answer=$(in_i python3 "$E2E_TMP/udp_probe.py" 198.18.1.2 "${heard##*:}")
[ "$udp_answer" = "no answer" ] || fail "I1: the site's UDP port $heard $udp_answer"
say "I1, the site accepts nothing from outside: from the internet, a connection to each of the 65535 TCP"
say "ports of the site's public address 198.18.1.2 failed; its own address 10.10.0.2 is unreachable; the"
say "one UDP port it keeps open by dialing out ($heard) ignores a stranger's datagrams; and the site's"
say "host has no listening TCP socket."

# I2: a private name is answered inside the laptop; a public name goes out as usual (which shows
# the capture sees DNS leaving).
bg "$C" tcpdump-c timeout 60 tcpdump -i "$uplink_c" -n -U -s 0 -c 10000 -w "$E2E_TMP/uplink.pcap"
cap=$BG_PID
wait_until 10 "tcpdump in C listening" grep -q 'listening on' "$E2E_TMP/tcpdump-c.log"
private=$(in_c dig +short +tries=1 +time=2 vault.example.internal A)
[ "$private" = "$addr" ] || fail "I2: dig vault.example.internal answered '$private', not $addr"
in_c dig +tries=1 +time=1 example.com A > /dev/null 2>&1 || true
wait_until 10 "the public query captured" sh -c "tcpdump -r '$E2E_TMP/uplink.pcap' -n 'udp port 53' 2>/dev/null | grep -q example.com"
kill -INT "$cap"; wait "$cap" 2>/dev/null || true
tcpdump -r "$E2E_TMP/uplink.pcap" -n 'port 53' 2>/dev/null > "$E2E_TMP/uplink-dns.txt" || true
grep -qi vault "$E2E_TMP/uplink-dns.txt" && fail "I2: a DNS packet for vault left the laptop: $(grep -i vault "$E2E_TMP/uplink-dns.txt")"
label_hits=$(grep -c -a -F "$(printf '\005vault\007example\010internal')" "$E2E_TMP/uplink.pcap" || true)
[ "$label_hits" -eq 0 ] || fail "I2: the name vault.example.internal appears in $label_hits captured packets"
all=$(tcpdump -r "$E2E_TMP/uplink.pcap" -n 2>/dev/null | wc -l)
say "I2, private names never leave the laptop: tcpdump on its uplink ($all packets captured) while"
say "dig vault.example.internal answered $private shows no DNS packet for that name (the name's bytes"
say "appear nowhere); the public lookup of example.com in the same capture did go out:"
grep -m1 example.com "$E2E_TMP/uplink-dns.txt" | show

# I3: the server's machine sees only ciphertext while the page crosses it.
bg "$I" tcpdump-i timeout 60 tcpdump -i any -n -U -s 0 -c 20000 -w "$E2E_TMP/internet.pcap"
cap=$BG_PID
wait_until 10 "tcpdump in I listening" grep -q 'listening on' "$E2E_TMP/tcpdump-i.log"
in_c curl -sf --max-time 10 --cacert "$E2E_TMP/ca.pem" -o "$E2E_TMP/page3.html" https://vault.example.internal/ \
  || fail "I3: curl failed"
grep -qF "$LINE" "$E2E_TMP/page3.html" || fail "I3: curl did not get the page"
wait_until 10 "the page's packets captured" sh -c "[ \$(tcpdump -r '$E2E_TMP/internet.pcap' -n udp 2>/dev/null | wc -l) -ge 4 ]"
kill -INT "$cap"; wait "$cap" 2>/dev/null || true
pkts=$(tcpdump -r "$E2E_TMP/internet.pcap" -n 2>/dev/null | wc -l)
wg_pkts=$(tcpdump -r "$E2E_TMP/internet.pcap" -n udp 2>/dev/null | wc -l)
grep -q -a -F "$LINE" "$E2E_TMP/internet.pcap" && fail "I3: the page's text crossed the internet in plaintext"
grep -q -a -F "Vault: the private app" "$E2E_TMP/internet.pcap" && fail "I3: part of the page's text crossed the internet in plaintext"
flows=$(tcpdump -r "$E2E_TMP/internet.pcap" -n udp 2>/dev/null | grep -oE 'IP [0-9.]+ > [0-9.]+:' \
  | sed -E 's/^IP //; s/:$//; s/\.([0-9]+)( |$)/:\1\2/g' | sort | uniq -c | sort -rn | awk '{print $2, $3, $4 " (" $1 " packets)"}')
say "I3, no plaintext at the server: tcpdump on every interface of the internet namespace (where the"
say "server runs) captured $pkts packets ($wg_pkts of them WireGuard UDP) while curl fetched the page;"
say "the page's line \"$LINE\" is nowhere in the capture. The flows it saw:"
show <<<"$flows"

# ---- 9. failover ----
step "9. A second site, and kill -9 of the one in use"
bg "$S2" site2 "$SITE" --state_dir="$E2E_TMP/site2-state" --server=198.18.1.1:443 --token="$t2"
SITE2_PID=$BG_PID
wait_until 30 "both sites online" sh -c "[ \$('$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep -c online) -eq 2 ]"
admin resource update vault --site s1 --target 198.19.0.2:8080 --site s2 --target 198.19.1.2:8080 | show
say "Site s2 enrolled (its own host and LAN, whose nginx says \"s2\"); vault is now served by s1 and s2."
page() { in_c curl -sf --max-time "${1:-2}" --cacert "$E2E_TMP/ca.pem" https://vault.example.internal/ 2>/dev/null; }
which_site() { local p; p=$(page "${1:-2}") || return 1; if grep -qF "$LINE2" <<<"$p"; then echo s2; elif grep -qF "$LINE" <<<"$p"; then echo s1; else return 1; fi; }
wait_until 30 "the client's health of both sites at the server" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep -c 'up 1/1 clients' | grep -qx 2"
wait_until 30 "vault served" which_site
# Five new connections in a row through the same site: that is the one in use.
stable() { local a; a=$(which_site) || return 1; for _ in 1 2 3 4; do [ "$(which_site)" = "$a" ] || return 1; done; echo "$a" > "$E2E_TMP/in_use"; }
wait_until 30 "new connections settle on one site" stable
used=$(cat "$E2E_TMP/in_use")
if [ "$used" = s1 ]; then other=s2; victim=$SITE_PID; else other=s1; victim=$SITE2_PID; fi
say "Five new connections in a row went through $used (the client picks the site its probes find best):"
admin site list | show
disown "$victim"  # no "Killed" line from the shell
kill -9 "$victim"
t0=$(now_ms)
served_by() { [ "$(which_site 0.3)" = "$1" ]; }
wait_until 30 "a new connection through $other" served_by "$other"
t1=$(now_ms)
failover_ms=$((t1 - t0))
say "kill -9 of $used: a new connection succeeded through $other $failover_ms ms later."
[ "$failover_ms" -lt 4000 ] || fail "failover took $failover_ms ms"
wait_until 30 "$used down at the server" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep '^$used ' | grep -q 'down 1/1 clients'"
say "The server's HEALTH column, from the client's probes, shows $used down:"
admin site list | show
for _ in 1 2 3; do [ "$(which_site)" = "$other" ] || fail "a new connection did not go through $other"; done
# The killed site comes back from its state directory (no token needed again).
if [ "$used" = s1 ]; then
  bg "$S" site-again "$SITE" --state_dir="$E2E_TMP/site-state" --audit_log="$E2E_TMP/site-audit.jsonl"
else
  bg "$S2" site2-again "$SITE" --state_dir="$E2E_TMP/site2-state"
fi
wait_until 60 "$used back up" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' site list | grep -c 'up 1/1 clients' | grep -qx 2"
say "$used restarted from its state directory (no new token) and is back up:"
admin site list | show

# ---- 10. audit ----
step "10. The audit log"
in_c curl -sf --max-time 5 --cacert "$E2E_TMP/ca.pem" -o /dev/null "https://vault.example.internal/?from=demo-$E2E_ID" || fail "curl failed"
wait_until 30 "the request in admin audit" sh -c "'$SERVER' admin --admin_socket='$E2E_TMP/admin.sock' audit tail -n 20 | grep -q 'from=demo-$E2E_ID'"
say "Every connection and request is recorded at the site and collected by the server: admin audit tail -n 5:"
admin audit tail -n 5 | show

# ---- 11. the page ----
step "11. The end"
page 5 > "$E2E_TMP/final.html" || fail "the final page did not load"
grep -qF "demo $E2E_ID" "$E2E_TMP/final.html" || fail "the final page is not the app's"
say "https://vault.example.internal/ from alice's laptop, as the app serves it:"
cat "$E2E_TMP/final.html"
log "PASS: demo"
