#!/usr/bin/env bash
# https_test.sh SCENARIO: private HTTPS with TLS ending at the site (M1.5), in three namespaces:
#   C (p2proxy-client: TUN + private DNS)  --198.18.6.0/24--  S (p2proxy-site)
#   S  --198.19.6.0/24 (the site's LAN)--  L (the app: tools/upstream_app.py, plain HTTP :8080)
# The site serves https resources from its userspace stack (lwIP) with certificates from a test
# CA made here; the client trusts only that CA. The site has no listen port and dials out.
#
# Scenarios:
#   basics     curl over HTTP/2 and HTTP/1.1; X-Forwarded-*, identity headers, a spoofed
#              X-P2proxy-User stripped; the :80 redirect; a path rule's 403 and a refused peer,
#              both audited; spellings that bypass a path rule in some app (";" parameters,
#              case, encoded or raw slashes and backslashes, dot segments, double encoding)
#              refused with 400/403 over both HTTP versions and never seen by the app, which
#              gets allowed paths in canonical form; unknown SNI -> unrecognized_name, or the default certificate;
#              non-TLS bytes and oversized headers; the site listens on no host TCP socket
#   websocket  a WebSocket echo through the site
#   bulk       a 1 GiB download and a 1 GiB upload over HTTPS keep their SHA-256
#   swap       the certificate is replaced (SIGHUP) during a long download: the download
#              completes intact, and new connections get the new certificate
#   chromium   headless Chromium loads the page with valid TLS (trusting only the test CA's key)
#              and takes a screenshot
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
scenario=${1:?usage: https_test.sh basics|websocket|bulk|swap|chromium}
CLIENT=${P2P_CLIENT_BIN:?set P2P_CLIENT_BIN to the p2proxy-client binary}
SITE=${P2P_SITE_BIN:?set P2P_SITE_BIN to the p2proxy-site binary}
PY=/usr/bin/python3
need=(wg curl openssl "$PY")
[ "$scenario" = chromium ] && need+=(chromium)
require_root_or_skip "${need[@]}"

C="p2hC-$E2E_ID"; S="p2hS-$E2E_ID"; L="p2hL-$E2E_ID"
netns_add "$C"; netns_add "$S"; netns_add "$L"
veth_link "$C" 198.18.6.1/24 "$S" 198.18.6.2/24
veth_link "$S" 198.19.6.1/24 "$L" 198.19.6.2/24
ip -n "$L" route add default via 198.19.6.1
mkdir -p "/etc/netns/$C"
E2E_FILES+=("/etc/netns/$C/resolv.conf"); E2E_DIRS+=("/etc/netns/$C")
printf 'nameserver 198.18.6.2\n' > "/etc/netns/$C/resolv.conf"
in_c() { ip netns exec "$C" "$@"; }

# ---- a test CA and certificates (ECDSA P-256) ----
pki="$E2E_TMP/pki"; mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=p2proxy test CA $E2E_ID" \
  -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
leaf() {  # NAME SANS: $pki/NAME.pem (leaf + CA) and $pki/NAME.key
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" -addext "subjectAltName=$2" \
    -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -copy_extensions copy -out "$pki/$1.crt" 2>/dev/null
  cat "$pki/$1.crt" "$pki/ca.pem" > "$pki/$1.pem"
}
leaf vault "DNS:vault.example.internal"
leaf vault2 "DNS:vault.example.internal"
leaf wiki "DNS:wiki.example.internal"
leaf admin "DNS:admin.example.internal"
cp "$pki/vault.pem" "$pki/serving.pem"; cp "$pki/vault.key" "$pki/serving.key"
fingerprint() { openssl x509 -noout -fingerprint -sha256 -in "$1" | cut -d= -f2; }

# ---- the app on the site's LAN ----
big=""
if [ "$scenario" = bulk ] || [ "$scenario" = swap ]; then
  big="$E2E_TMP/big.bin"
  head -c 1G /dev/urandom > "$big"
  big_sum=$(sha256sum "$big" | cut -d' ' -f1)
fi
app_paths="$E2E_TMP/app_paths.log"  # every request target the app received
bg "$L" app env APP_PATHS_LOG="$app_paths" "$PY" "$here/tools/upstream_app.py" 198.19.6.2 8080 "$E2E_ID" $big
wait_until 10 "app listening" ip netns exec "$L" sh -c "ss -ltn | grep -q 198.19.6.2:8080"

key_c=$(wg genkey); pub_c=$(echo "$key_c" | wg pubkey)
key_s=$(wg genkey); pub_s=$(echo "$key_s" | wg pubkey)
audit="$E2E_TMP/audit.log"  # JSON lines; named .log so a failure prints its tail

# ---- the site: no listen port; three https resources ----
cat > "$E2E_TMP/site.json" <<JSON
{"wireguard": {"private_key": "$key_s", "address": "100.96.0.10"},
 "peers": [{"public_key": "$pub_c", "allowed_ips": ["100.96.0.5/32"], "endpoint": "198.18.6.1:51820",
            "persistent_keepalive": 5, "user": "tester", "roles": ["dev"]}],
 "audit_log": "$audit",
 "resources": [
  {"name": "vault", "address": "100.96.128.20", "port": 443, "protocol": "https", "target": "198.19.6.2:8080",
   "hostnames": ["vault.example.internal"], "certificate_file": "$pki/serving.pem", "key_file": "$pki/serving.key",
   "redirect_port": 80,
   "access": {"users": ["tester"], "paths": [{"prefix": "/admin", "roles": ["admin"]}], "case_insensitive_paths": true}},
  {"name": "wiki", "address": "100.96.128.21", "port": 443, "protocol": "https", "target": "198.19.6.2:8080",
   "hostnames": ["wiki.example.internal"], "certificate_file": "$pki/wiki.pem", "key_file": "$pki/wiki.key",
   "default_certificate": true, "access": {"roles": ["dev"]}},
  {"name": "admin", "address": "100.96.128.22", "port": 443, "protocol": "https", "target": "198.19.6.2:8080",
   "hostnames": ["admin.example.internal"], "certificate_file": "$pki/admin.pem", "key_file": "$pki/admin.key",
   "access": {"roles": ["admin"]}}
 ]}
JSON
start_p2p_site "$S" "$SITE"

# ---- the client: TUN + private DNS ----
cat > "$E2E_TMP/client.json" <<JSON
{"dns": {"state_dir": "$E2E_TMP/state"},
 "zones": ["example.internal"],
 "resources": [{"name": "vault.example.internal", "address": "100.96.128.20"},
               {"name": "wiki.example.internal", "address": "100.96.128.21"},
               {"name": "admin.example.internal", "address": "100.96.128.22"},
               {"name": "other.example.internal", "address": "100.96.128.20"}]}
JSON
start_p2p_tun_client "$C" "$CLIENT" p2h "$key_c" "$pub_s"
wgif=$WGIF
wait_until 20 "the site dialled in (handshake)" sh -c "ip netns exec '$C' wg show '$wgif' latest-handshakes | awk '{exit !(\$2 > 0)}'"

CURL=(curl -sS --max-time 60 --cacert "$pki/ca.pem")
audit_has() {  # a line of the audit log containing every argument
  local line
  while IFS= read -r line; do
    local ok=1 want
    for want in "$@"; do grep -qF -- "$want" <<<"$line" || { ok=0; break; }; done
    [ $ok = 1 ] && return 0
  done < "$audit"
  return 1
}

case "$scenario" in
basics)
  for v in --http2 --http1.1; do
    out=$(in_c "${CURL[@]}" "$v" -w '\nversion=%{http_version}' https://vault.example.internal/ 2>"$E2E_TMP/curl.err") \
      || fail "curl $v https://vault.example.internal/: $(cat "$E2E_TMP/curl.err")"
    grep -q "vault: the private app behind the site ($E2E_ID)" <<<"$out" || fail "curl $v: wrong page: $out"
    want=$([ "$v" = --http2 ] && echo 2 || echo 1.1)
    grep -q "^version=$want\$" <<<"$out" || fail "curl $v: HTTP version: $out"
    log "curl $v: the app's page, HTTP/$want, TLS verified against the test CA"
  done
  for tls in 1.2 1.3; do
    out=$(in_c "${CURL[@]}" -v --tlsv"$tls" --tls-max "$tls" https://vault.example.internal/ 2>&1) || fail "curl over TLS $tls: $out"
    grep -q "SSL connection using TLSv$tls" <<<"$out" || fail "curl --tls-max $tls did not negotiate TLS $tls: $(grep 'SSL connection' <<<"$out")"
    grep -q "vault: the private app behind the site ($E2E_ID)" <<<"$out" || fail "curl over TLS $tls: wrong page"
  done
  log "TLS 1.2 and TLS 1.3 both work"
  hdrs=$(in_c "${CURL[@]}" -H 'X-P2proxy-User: mallory' -H 'x-p2proxy-roles: admin' https://vault.example.internal/headers)
  for want in '"x-forwarded-for": "100.96.0.5"' '"x-p2proxy-user": "tester"' '"x-p2proxy-roles": "dev"' \
              '"x-forwarded-proto": "https"' '"x-forwarded-host": "vault.example.internal"' '"host": "vault.example.internal"'; do
    grep -qF "$want" <<<"$hdrs" || fail "the upstream did not see $want: $hdrs"
  done
  if grep -qiE 'mallory|"x-p2proxy-roles": "admin"' <<<"$hdrs"; then fail "a spoofed identity header reached the upstream: $hdrs"; fi
  log "the upstream sees X-Forwarded-For 100.96.0.5 and the site's identity headers; spoofed ones are stripped"

  loc=$(in_c curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{redirect_url}' http://vault.example.internal/x?y=1)
  [ "$loc" = "308 https://vault.example.internal/x?y=1" ] || fail "the :80 redirect gave '$loc'"
  log "http://vault.example.internal/x?y=1 -> $loc"

  code=$(in_c "${CURL[@]}" -o /dev/null -w '%{http_code}' https://vault.example.internal/admin/panel)
  [ "$code" = 403 ] || fail "a path rule should give 403, got $code"
  code=$(in_c "${CURL[@]}" -o /dev/null -w '%{http_code}' https://vault.example.internal/public/../admin/panel --path-as-is)
  [ "$code" = 403 ] || fail "a dotted path should not pass the rule: $code"
  wait_until 5 "the 403 in the audit log" audit_has '"resource":"vault"' '"user":"tester"' '"path":"/admin/panel"' '"status":403' '"decision":"deny"' "\"peer_key\":\"$pub_c\""
  log "GET /admin/panel -> 403 (path rule), audited with the peer's key and user"

  # Spellings of /admin/panel that some app behind a proxy serves as /admin (Tomcat and Spring
  # strip ";" parameters, IIS ignores case and trailing dots, apps decode %2F, %5C or "\" into
  # separators, decode twice, or map overlong UTF-8). vault compares paths without case.
  bypass=('/admin;x/panel' '/admin;/panel' '/admin;jsessionid=1' '/x/..;/admin/panel' '/.;/admin'
          '/Admin/panel' '/ADMIN' '/%41dmin/panel' '/admin.json' '//admin//panel' '/x/%2e%2e/admin'
          '/admin%2Fpanel' '/admin%2fpanel' '/admin%5Cpanel' '/x/..%5cadmin' '/admin\panel' '/x/..\admin'
          '/admin%3Bx/panel' '/%2561dmin' '/%u0061dmin' '/%c0%afadmin' '/../admin' '/admin%00'
          '/adm%C4%B1n' '/admin./panel' '/admin%20/panel')
  seen_before=$(cat "$app_paths" 2>/dev/null | wc -l)
  for v in --http1.1 --http2; do
    for p in "${bypass[@]}"; do
      code=$(in_c "${CURL[@]}" "$v" --path-as-is -o /dev/null -w '%{http_code}' "https://vault.example.internal$p" 2>"$E2E_TMP/curl.err" || true)
      case "$code" in
        400|403) ;;
        *) fail "curl $v $p: want 400 or 403 from the site, got '$code' $(cat "$E2E_TMP/curl.err")" ;;
      esac
    done
    # An allowed path with parameters and dot segments is served, as its canonical form.
    out=$(in_c "${CURL[@]}" "$v" --path-as-is -w '\ncode=%{http_code}' 'https://vault.example.internal/x/./y/../../headers;v=1') \
      || fail "curl $v /x/./y/../../headers;v=1 failed"
    grep -q '^code=200$' <<<"$out" || fail "curl $v /x/./y/../../headers;v=1: $out"
    grep -qF '"x-p2proxy-user": "tester"' <<<"$out" || fail "curl $v: /headers did not come from the app: $out"
  done
  new_paths=$(tail -n +"$((seen_before + 1))" "$app_paths")
  [ "$new_paths" = "$(printf '/headers\n/headers')" ] || fail "the app saw other targets than two canonical /headers: $(head -c 600 <<<"$new_paths")"
  # The app's view, however lenient it decodes, never reaches /admin.
  "$PY" - "$app_paths" <<'PY' || fail "a request target the app saw maps onto /admin: $(cat "$app_paths")"
import sys
from urllib.parse import unquote
for line in open(sys.argv[1], encoding="latin-1"):
    path = line.rstrip("\n").split("?")[0]
    for _ in range(3):
        path = unquote(path, encoding="latin-1")
    segs = []
    for seg in path.replace("\\", "/").lower().split("/"):
        seg = seg.split(";")[0]
        if seg not in (".", ".."):
            seg = seg.rstrip(". ")
        if seg in ("", "."):
            continue
        if seg == "..":
            segs = segs[:-1]
            continue
        segs.append(seg)
    if segs and (segs[0] == "admin" or segs[0].startswith("admin.")):
        sys.exit("the app saw %r" % line)
PY
  wait_until 5 "a 400 in the audit log" audit_has '"resource":"vault"' '"status":400' '"decision":"deny"' 'bad request target'
  log "${#bypass[@]} bypass spellings of /admin x HTTP/1.1 and HTTP/2 -> 400/403, the app saw none; /x/./y/../../headers;v=1 reached it as /headers"

  if in_c "${CURL[@]}" https://admin.example.internal/ -o /dev/null 2>"$E2E_TMP/curl.err"; then fail "a peer without the admin role reached the admin resource"; fi
  grep -qiE 'reset|closed|SSL_ERROR_SYSCALL|connect' "$E2E_TMP/curl.err" || fail "admin refusal: $(cat "$E2E_TMP/curl.err")"
  wait_until 5 "the refusal in the audit log" audit_has '"resource":"admin"' '"user":"tester"' '"decision":"deny"' 'not allowed'
  log "a peer not allowed on 'admin' is refused before TLS ($(head -c 80 "$E2E_TMP/curl.err")), audited"

  if in_c "${CURL[@]}" https://other.example.internal/ -o /dev/null 2>"$E2E_TMP/curl.err"; then fail "an unknown SNI got a page"; fi
  grep -qi 'unrecognized name' "$E2E_TMP/curl.err" || fail "unknown SNI: expected an unrecognized_name alert: $(cat "$E2E_TMP/curl.err")"
  log "unknown SNI on vault -> alert unrecognized_name"
  got=$(in_c openssl s_client -connect 100.96.128.21:443 -servername nobody.example.internal </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2)
  [ "$got" = "$(fingerprint "$pki/wiki.crt")" ] || fail "wiki's default certificate not served for an unknown SNI: '$got'"
  log "unknown SNI on wiki (default_certificate) -> wiki's certificate"

  rc=0
  in_c timeout 10 bash -c 'exec 3<>/dev/tcp/100.96.128.20/443; printf "GET / HTTP/1.1\r\nHost: x\r\n\r\n" >&3; cat <&3 >/dev/null' 2>/dev/null || rc=$?
  [ $rc -ne 124 ] || fail "plain HTTP bytes on the TLS port: the site kept the connection open"
  log "plain HTTP bytes on the TLS port -> the site closed the connection (rc $rc)"
  big_header=$(head -c 70000 /dev/zero | tr '\0' a)
  code=$(in_c "${CURL[@]}" --http1.1 -o /dev/null -w '%{http_code}' -H "X-Big: $big_header" https://vault.example.internal/ || true)
  [ "$code" = 431 ] || fail "oversized headers over HTTP/1.1 should give 431, got '$code'"
  log "70 kB of headers -> 431"
  kill -0 "$SITE_PID" || fail "the site died"
  out=$(in_c "${CURL[@]}" https://vault.example.internal/) || fail "the site stopped serving after bad input"

  listening=$(ip netns exec "$S" ss -lntup | grep -F "pid=$SITE_PID," || true)
  if grep -q '^tcp' <<<"$listening"; then fail "the site listens on TCP: $listening"; fi
  audit_has '"kind":"https"' '"method":"GET"' '"host":"vault.example.internal"' '"path":"/"' '"status":200' '"decision":"allow"' \
    || fail "no allowed GET / in the audit log: $(tail -3 "$audit")"
  log "audit: $(grep -c . "$audit") events, e.g. $(grep -m1 '"status":200' "$audit")"
  ;;
websocket)
  out=$(in_c "$PY" "$here/tools/ws_client.py" 100.96.128.20 vault.example.internal "$pki/ca.pem" 40 2>&1) || fail "websocket: $out"
  [ "$out" = "ok 40" ] || fail "websocket: $out"
  wait_until 5 "the upgrade in the audit log" audit_has '"path":"/ws"' '"status":101'
  log "WebSocket echo through the site: 40 messages up to 200 kB, byte for byte"
  ;;
bulk)
  got=$(in_c "${CURL[@]}" --max-time 600 https://vault.example.internal/big | sha256sum | cut -d' ' -f1)
  [ "$got" = "$big_sum" ] || fail "1 GiB download: sha256 $got, want $big_sum"
  log "1 GiB download over HTTPS (HTTP/2): sha256 matches"
  got=$(in_c "${CURL[@]}" --http1.1 --max-time 600 -T "$big" -X POST https://vault.example.internal/upload)
  [ "$got" = "$big_sum 1073741824" ] || fail "1 GiB upload: the app saw '$got', want '$big_sum 1073741824'"
  log "1 GiB upload over HTTPS (HTTP/1.1): the app's sha256 matches"
  got=$(in_c "${CURL[@]}" --http2 --max-time 600 -T "$big" -X POST https://vault.example.internal/upload)
  [ "$got" = "$big_sum 1073741824" ] || fail "1 GiB upload over HTTP/2: the app saw '$got'"
  log "1 GiB upload over HTTPS (HTTP/2): the app's sha256 matches"
  ;;
swap)
  old=$(fingerprint "$pki/vault.crt"); new=$(fingerprint "$pki/vault2.crt")
  in_c "${CURL[@]}" --max-time 600 --limit-rate 20M -o "$E2E_TMP/dl.bin" -w '%{http_code}' https://vault.example.internal/big \
    >"$E2E_TMP/dl.code" 2>"$E2E_TMP/dl.err" &
  dl=$!
  wait_until 30 "the download to start" test -s "$E2E_TMP/dl.bin"
  cp "$pki/vault2.pem" "$pki/serving.pem.new"; mv "$pki/serving.pem.new" "$pki/serving.pem"
  cp "$pki/vault2.key" "$pki/serving.key.new"; mv "$pki/serving.key.new" "$pki/serving.key"
  kill -HUP "$SITE_PID"
  wait_until 10 "the reload" grep -q 'event=site.certificate_reload.*resource=vault.*result=ok' "$E2E_TMP/site.log"
  got=$(in_c openssl s_client -connect 100.96.128.20:443 -servername vault.example.internal </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256 | cut -d= -f2)
  [ "$got" = "$new" ] || fail "a new connection after SIGHUP got '$got', want the new certificate $new (old: $old)"
  log "after SIGHUP, a new connection gets the new certificate"
  kill -0 "$dl" 2>/dev/null || fail "the download ended before the swap could be tested"
  wait "$dl" || fail "the download failed across the swap: $(cat "$E2E_TMP/dl.err")"
  got=$(sha256sum "$E2E_TMP/dl.bin" | cut -d' ' -f1)
  [ "$got" = "$big_sum" ] || fail "the download across the swap: sha256 $got, want $big_sum"
  log "the download that started with the old certificate completed, sha256 matches"
  ;;
chromium)
  spki=$(openssl x509 -in "$pki/ca.pem" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
  spki_leaf=$(openssl x509 -in "$pki/vault.crt" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
  shot="${P2P_SCREENSHOT:-$E2E_TMP/vault.png}"
  chrome=(chromium --headless=new --no-sandbox --disable-gpu --no-first-run --user-data-dir="$E2E_TMP/chrome"
          --ignore-certificate-errors-spki-list="$spki,$spki_leaf" --window-size=1000,400)
  dom=$(in_c timeout 60 "${chrome[@]}" --dump-dom https://vault.example.internal/ 2>"$E2E_TMP/chrome.err") || fail "chromium: $(tail -5 "$E2E_TMP/chrome.err")"
  grep -q "vault: the private app behind the site ($E2E_ID)" <<<"$dom" || fail "chromium did not get the app's page: $(head -c 300 <<<"$dom")"
  in_c timeout 60 "${chrome[@]}" --screenshot="$shot" https://vault.example.internal/ 2>>"$E2E_TMP/chrome.err" || fail "chromium screenshot failed"
  [ -s "$shot" ] || fail "no screenshot at $shot"
  audit_has '"user":"tester"' '"path":"/"' '"status":200' || fail "chromium's request is not in the audit log"
  log "headless Chromium loaded https://vault.example.internal/ (the app's page; screenshot $shot)"
  ;;
*) fail "unknown scenario '$scenario'" ;;
esac
log "PASS: https $scenario"
