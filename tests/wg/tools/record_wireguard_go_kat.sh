#!/usr/bin/env bash
# record_wireguard_go_kat.sh RECORDER [OUT]: records one real WireGuard handshake between
# wireguard-go (the initiator, on a TUN) and our device (wg_kat_recorder: fixed keys, ephemeral
# and index; the responder, on a UDP socket), for tests/wg/wireguard_go_kat_test.cc.
# OUT defaults to tests/wg/testdata/wireguard_go_handshake.h.
#
#   sudo tests/wg/tools/record_wireguard_go_kat.sh build/default/tests/wg/wg_kat_recorder
#
# Needs root, wireguard-go, wg and ip. Everything runs in one network namespace this script
# creates, over its loopback: no traffic leaves it. The namespace, both processes, the UAPI
# socket and the temporary files are removed on exit, also on failure. Run it once: the data
# it writes is the fixed answer the test checks, so do not re-record without a reason.
set -euo pipefail

invocation="$0 $*"
recorder=$(realpath "${1:?usage: record_wireguard_go_kat.sh RECORDER [OUT]}")
here=$(cd "$(dirname "$0")" && pwd)
out=${2:-$(cd "$here/../testdata" && pwd)/wireguard_go_handshake.h}
[ "$(id -u)" -eq 0 ] || { echo "record_wireguard_go_kat.sh: needs root (namespace, TUN)" >&2; exit 1; }
for t in wireguard-go wg ip; do
  command -v "$t" >/dev/null || { echo "record_wireguard_go_kat.sh: $t is not installed" >&2; exit 1; }
done

ns="p2pkat-$$"
ifname="p2pkat$$"; ifname=${ifname:0:15}
uapi_sock="/var/run/wireguard/$ifname.sock"
wg_port=51000   # wireguard-go's listen port
our_port=51001  # the recorder's
tmp=$(mktemp -d /tmp/p2pkat-XXXXXX)
pids=()

cleanup() {
  local rc=$?
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
  rm -f "$uapi_sock"
  if [ $rc -ne 0 ]; then
    for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done >&2
  fi
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT

# wait_for SECONDS WHAT CMD...: poll CMD every 0.1 s.
wait_for() {
  local limit=$(( $1 * 10 )) what=$2
  shift 2
  for _ in $(seq "$limit"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "record_wireguard_go_kat.sh: timed out waiting for $what" >&2
  return 1
}

# The fixed settings come from the recorder, so the keys live in one place.
declare -A cfg
while IFS= read -r line; do cfg[${line%%=*}]=${line#*=}; done < <("$recorder" config)
umask 077
printf '%s\n' "${cfg[initiator_private_key]}" > "$tmp/initiator.key"
printf '%s\n' "${cfg[preshared_key]}" > "$tmp/psk"

ip netns add "$ns"
ip -n "$ns" link set lo up

wgo_version=$(wireguard-go --version 2>&1 | head -n1)
pkg_version=$(dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null || echo unknown)
ip netns exec "$ns" "$recorder" record "$our_port" "$tmp/out.h" \
  "Recorded with (as root, from the repository root): $invocation" \
  "on $(date -u +%Y-%m-%d), against $wgo_version (Debian package wireguard-go $pkg_version)." \
  "wireguard-go ran on a TUN in a fresh network namespace with \`wg set\` (listen-port $wg_port, the" \
  "keys and preshared key of wireguard_go_kat_keys.h, endpoint 127.0.0.1:$our_port, allowed-ips" \
  "${cfg[responder_tunnel_ip]}/32); a UDP datagram to ${cfg[responder_tunnel_ip]}:${cfg[udp_port]} triggered the handshake." \
  > "$tmp/recorder.log" 2>&1 &
recorder_pid=$!
pids+=("$recorder_pid")
wait_for 10 "the recorder" grep -q ready "$tmp/recorder.log"

ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$ifname" > "$tmp/wireguard-go.log" 2>&1 &
pids+=("$!")
wait_for 10 "wireguard-go's UAPI socket" test -S "$uapi_sock"
ip netns exec "$ns" wg set "$ifname" private-key "$tmp/initiator.key" listen-port "$wg_port" \
  peer "${cfg[responder_public_key]}" preshared-key "$tmp/psk" endpoint "127.0.0.1:$our_port" \
  allowed-ips "${cfg[responder_tunnel_ip]}/32"
ip -n "$ns" addr add "${cfg[initiator_tunnel_ip]}/24" dev "$ifname"
ip -n "$ns" link set "$ifname" up

# One datagram through the tunnel: wireguard-go holds it, initiates, and sends it first.
# shellcheck disable=SC2016  # the inner bash expands $1..$3, given as arguments
ip netns exec "$ns" bash -c 'printf "%s" "$1" > "/dev/udp/$2/$3"' _ \
  "${cfg[udp_payload]}" "${cfg[responder_tunnel_ip]}" "${cfg[udp_port]}"

wait "$recorder_pid" || { echo "record_wireguard_go_kat.sh: the recorder failed" >&2; exit 1; }
cp "$tmp/out.h" "$out"
cat "$tmp/recorder.log" >&2
echo "record_wireguard_go_kat.sh: wrote $out" >&2
