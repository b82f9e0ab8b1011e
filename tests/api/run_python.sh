#!/usr/bin/env bash
# run_python.sh LIB SCRIPT [ARGS...]: run a Python script with `import p2proxy` from the tree
# over LIB (libp2proxy.so.0). A sanitizer build of the library needs its runtime loaded first,
# and Python's own allocations would read as leaks.
set -euo pipefail
lib=${1:?usage: run_python.sh LIB SCRIPT [ARGS...]}
shift
here=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$here/../../bindings/python" P2PROXY_LIBRARY="$lib"
asan_rt=$(ldd "$lib" | awk '/libasan/ {print $3}')
if [ -n "$asan_rt" ]; then export LD_PRELOAD="$asan_rt" ASAN_OPTIONS=detect_leaks=0; fi
exec /usr/bin/python3 "$@"
