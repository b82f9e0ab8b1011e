#!/usr/bin/env bash
# demo.sh: the end-to-end demo on one machine. Installs what it needs (scripts/setup.sh), builds,
# then runs the product's story in network namespaces (tests/e2e/demo_test.sh), then the benchmarks
# briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo >&2
export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)"

cat <<'MSG'

p2proxy demo: the whole story on this machine, in network namespaces (tests/e2e/demo_test.sh).
A server on "the internet", a site behind a NAT that only dials out, the app on the site's LAN,
and a laptop: enrollment with one-time tokens, https://vault.example.internal in curl and
headless Chromium, ssh to a LAN host, three invariants captured with tcpdump, failover to a
second site after kill -9, and the audit log. Each step says what happens.

MSG
export P2P_SERVER_BIN=$PWD/build/default/daemons/p2proxy-server
export P2P_SITE_BIN=$PWD/build/default/daemons/p2proxy-site
export P2P_CLIENT_BIN=$PWD/build/default/daemons/p2proxy-client
P2P_SCREENSHOT=/tmp/p2proxy-demo-vault.png bash tests/e2e/demo_test.sh
echo "(the screenshot stays at /tmp/p2proxy-demo-vault.png)"
echo
echo "Throughput and capacity, briefly (p2proxy against wireguard-go, dnsmasq and nginx):"
bench/wg_throughput.sh 5
bench/dns_qps.sh 5
bench/https_rps.sh 5 32 1
