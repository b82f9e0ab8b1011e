#!/usr/bin/env bash
# demo.sh: the end-to-end demo on one machine. Installs what it needs (scripts/setup.sh), builds,
# and runs the most complete scenario that works so far, in network namespaces, saying which.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo >&2
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)"

cat <<'MSG'

p2proxy demo. The full path (browser -> private DNS -> WireGuard -> the site's lwIP -> TLS at
the site) arrives with issues M1.3-M1.5. What works today, shown now in two network namespaces
joined by a veth pair (the "internet" between them is 198.18.0.0/24):

  ns A: p2proxy-client --wg-config   (userspace WireGuard on a TUN, 100.96.0.2)
  ns B: wireguard-go                 (the reference userspace implementation, 100.96.0.3)

It pings through the tunnel both ways, shows the tunnel with `wg show` against p2proxy's UAPI
socket, and runs iperf3 both ways.

MSG
export P2P_CLIENT_BIN=$PWD/build/default/daemons/p2proxy-client
export P2P_DEMO_VERBOSE=1
bash tests/e2e/wg_interop_test.sh initiator
echo
echo "Throughput, p2proxy pair against wireguard-go pair (5 s each):"
bench/wg_throughput.sh 5
