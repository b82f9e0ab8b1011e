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

p2proxy demo: the private path, p2proxy at both ends, in three network namespaces.

  ns C: p2proxy-client   TUN + userspace WireGuard (100.96.0.5), private DNS on 100.96.128.1
  ns S: p2proxy-site     no listen port: dials out to the client; lwIP serves 100.96.128.20:80
  ns L: the app          nginx on the site's LAN (198.19.4.2:8080), never exposed

`curl http://vault.example.internal/` in C: the name has no public record; the client's
resolver answers it (nothing leaves the machine for a private name), packets ride WireGuard to
the site, whose userspace TCP/IP stack accepts the connection and splices it to the app.
Then the headline: https://vault.example.internal in the same layout, with TLS ending at the
site (certificates from a test CA the client trusts), HTTP/2 and HTTP/1.1, identity headers
stamped by the site, a path rule's 403 and a refused peer in the audit log, and headless
Chromium loading the page. Still to come: the server (control plane, relay, public mode).

MSG
export P2P_CLIENT_BIN=$PWD/build/default/daemons/p2proxy-client
export P2P_SITE_BIN=$PWD/build/default/daemons/p2proxy-site
export P2P_DEMO_VERBOSE=1
bash tests/e2e/path_test.sh
echo
echo "Private HTTPS, TLS ending at the site:"
bash tests/e2e/https_test.sh basics 2>&1 | grep -E '^\[' | sed 's/^\[[0-9:]*\] /  /'
shot=/tmp/p2proxy-demo-vault.png
P2P_SCREENSHOT=$shot bash tests/e2e/https_test.sh chromium 2>&1 | grep -E '^\[' | sed 's/^\[[0-9:]*\] /  /'
echo "  (the screenshot stays at $shot)"
echo
echo "Private DNS against a stock resolver, interop against wireguard-go, and throughput:"
bash tests/e2e/dns_test.sh answers 2>&1 | grep -E '^\[' | sed 's/^\[[0-9:]*\] /  /'
bash tests/e2e/wg_interop_test.sh initiator 2>&1 | tail -n 3 | sed 's/^/  /'
bench/wg_throughput.sh 5
bench/dns_qps.sh 5
bench/https_rps.sh 5 32 1
