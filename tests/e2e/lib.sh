# lib.sh: helpers for end-to-end tests in network namespaces. Source it; it sets a cleanup trap
# that kills what the test started and deletes its namespaces, even on failure.
# Every test host is a namespace the test creates; traffic never leaves them.
set -euo pipefail

E2E_ID="${E2E_ID:-$$}"
E2E_TMP=$(mktemp -d "/tmp/p2p-e2e-${E2E_ID}-XXXX")
E2E_NETNS=()
E2E_PIDS=()
E2E_FILES=()
E2E_DIRS=()  # removed (if empty) after E2E_FILES

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

e2e_cleanup() {
  local rc=$?
  set +e
  for pid in "${E2E_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${E2E_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  for ns in "${E2E_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  for f in "${E2E_FILES[@]}"; do rm -f "$f"; done
  for d in "${E2E_DIRS[@]}"; do rmdir "$d" 2>/dev/null; done
  if [ $rc -ne 0 ] && [ -d "$E2E_TMP" ]; then
    for f in "$E2E_TMP"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done >&2
  fi
  # E2E_KEEP=DIR keeps the run's files (logs, captures) there, for a person to read.
  if [ -n "${E2E_KEEP:-}" ] && [ -d "$E2E_TMP" ]; then rm -rf "$E2E_KEEP"; cp -r "$E2E_TMP" "$E2E_KEEP"; fi
  rm -rf "$E2E_TMP"
  exit $rc
}
trap e2e_cleanup EXIT

# require_root_or_skip exits 77 (CTest's skip) with a message when namespaces cannot be made.
require_root_or_skip() {
  if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root for network namespaces" >&2; exit 77; fi
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "SKIP: $t is not installed (scripts/setup.sh test installs it)" >&2; exit 77; }
  done
}

# netns_add NAME: a fresh namespace with loopback up.
netns_add() {
  ip netns add "$1"
  E2E_NETNS+=("$1")
  ip -n "$1" link set lo up
}

# veth_link NS1 ADDR1 NS2 ADDR2: a veth pair between two namespaces with the given CIDRs.
# Names: v<test id><a|b><n>, n counting this test's links (random suffixes collided once in a
# thousand runs: "An interface with the same name exists in the target netns").
E2E_VETH_N=0
veth_link() {
  E2E_VETH_N=$((E2E_VETH_N + 1))
  local a="v${E2E_ID}a${E2E_VETH_N}" b="v${E2E_ID}b${E2E_VETH_N}"
  [ ${#a} -le 15 ] || { a="v${E2E_ID: -8}a${E2E_VETH_N}"; b="v${E2E_ID: -8}b${E2E_VETH_N}"; }
  ip link add "$a" type veth peer name "$b"
  ip link set "$a" netns "$1"
  ip link set "$b" netns "$3"
  ip -n "$1" addr add "$2" dev "$a"
  ip -n "$3" addr add "$4" dev "$b"
  ip -n "$1" link set "$a" up
  ip -n "$3" link set "$b" up
}

# bg NS LOGNAME CMD...: run CMD in namespace NS in the background, logging to $E2E_TMP/LOGNAME.log.
# Sets BG_PID.
bg() {
  local ns=$1 name=$2
  shift 2
  ip netns exec "$ns" "$@" >"$E2E_TMP/$name.log" 2>&1 &
  BG_PID=$!
  E2E_PIDS+=("$BG_PID")
}

# start_sshd NS ADDR: an sshd in NS on ADDR:22 that lets root in with the key
# $E2E_TMP/user_key only (both keys made here); /run/sshd is made if missing (and then removed
# at the end). Sets SSHD_PID; the caller waits for it to listen.
start_sshd() {
  ssh-keygen -q -t ed25519 -N '' -f "$E2E_TMP/ssh_host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$E2E_TMP/user_key"
  cp "$E2E_TMP/user_key.pub" "$E2E_TMP/authorized_keys"
  if [ ! -d /run/sshd ]; then mkdir -p /run/sshd; E2E_DIRS+=(/run/sshd); fi
  cat > "$E2E_TMP/sshd_config" <<SSHD
ListenAddress $2:22
HostKey $E2E_TMP/ssh_host_key
PidFile $E2E_TMP/sshd.pid
AuthorizedKeysFile $E2E_TMP/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SSHD
  bg "$1" sshd /usr/sbin/sshd -D -e -f "$E2E_TMP/sshd_config"
  SSHD_PID=$BG_PID
}

# wait_until SECONDS DESCRIPTION CMD...: poll CMD (every 0.1 s) until it succeeds, or fail.
wait_until() {
  local limit=$1 what=$2
  shift 2
  local end=$(( $(date +%s) + limit ))
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || fail "timed out after ${limit}s waiting for: $what"
    sleep 0.1
  done
}

# start_p2p_site NS SITE_BIN: run p2proxy-site in NS with $E2E_TMP/site.json (written by the caller),
# logging to site.log, and wait until it is up. Sets SITE_PID.
start_p2p_site() {
  bg "$1" site "$2" --config="$E2E_TMP/site.json"
  SITE_PID=$BG_PID
  wait_until 10 "site up" grep -q 'event=site.up' "$E2E_TMP/site.log"
}

# start_p2p_tun_client NS CLIENT_BIN IFPREFIX KEY PEER_PUB: run p2proxy-client in NS in WireGuard
# mode (TUN 100.96.0.5/32, listen port 51820, one peer for 100.96.128.0/18 and the site's node
# address 100.96.0.10) with $E2E_TMP/client.json (written by the caller), and wait until its DNS
# is ready. Sets CLIENT_PID and WGIF.
start_p2p_tun_client() {
  WGIF="$3${E2E_ID}"; WGIF=${WGIF:0:15}
  E2E_FILES+=("/var/run/wireguard/$WGIF.sock")
  printf '[Interface]\nPrivateKey = %s\nAddress = 100.96.0.5/32\nListenPort = 51820\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 100.96.128.0/18, 100.96.0.10/32\n' \
    "$4" "$5" > "$E2E_TMP/$WGIF.conf"
  bg "$1" client "$2" --wg-config="$E2E_TMP/$WGIF.conf" --config="$E2E_TMP/client.json"
  CLIENT_PID=$BG_PID
  wait_until 10 "client DNS ready" grep -q 'event=client.dns_ready' "$E2E_TMP/client.log"
}
