#!/usr/bin/env bash
# install_test.sh BUILD_DIR: `cmake --install` into a fresh prefix, then build the C and C++
# examples against the installed tree only (copied to a directory that cannot see the source
# tree), once with find_package(p2proxy) and once with pkg-config, and run them (usage exit: the
# library loads and links).
set -euo pipefail
build=${1:?usage: install_test.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/p2proxy-install-XXXX)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
for f in include/p2proxy/client.h include/p2proxy/p2proxy.h include/p2proxy/status.h include/p2proxy/version.h; do
  [ -f "$prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
lib=$(find "$prefix" -name 'libp2proxy.so.0' | head -n1)
[ -n "$lib" ] || { echo "libp2proxy.so.0 not installed"; exit 1; }
libdir=$(dirname "$lib")
[ -f "$libdir/pkgconfig/p2proxy.pc" ] || { echo "p2proxy.pc not installed"; exit 1; }
[ -f "$libdir/cmake/p2proxy/p2proxyConfig.cmake" ] || { echo "p2proxyConfig.cmake not installed"; exit 1; }
for d in p2proxy-server p2proxy-site p2proxy-client; do
  [ -x "$prefix/bin/$d" ] || { echo "not installed: bin/$d"; exit 1; }
done
find "$prefix" -path '*/dist-packages/p2proxy/__init__.py' | grep -q . || { echo "the Python package is not installed"; exit 1; }
find "$prefix" -name 'p2proxy-site.service' | grep -q . || { echo "the systemd units are not installed"; exit 1; }
# No private header is installed.
if find "$prefix/include" -type f | grep -v '/include/p2proxy/' | grep -q .; then
  echo "private headers installed: $(find "$prefix/include" -type f | grep -v '/include/p2proxy/')"; exit 1
fi

# The consumer: the examples, alone in a directory of their own.
mkdir -p "$work/consumer"
cp "$src/examples/c/dial.c" "$src/examples/cpp/resolve.cc" "$src/examples/cpp/site_hello.cc" "$work/consumer/"
cat > "$work/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(consumer C CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(p2proxy 0.1 REQUIRED)
add_executable(dial dial.c)
target_link_libraries(dial PRIVATE p2proxy::p2proxy)
add_executable(resolve resolve.cc)
target_link_libraries(resolve PRIVATE p2proxy::p2proxy)
add_executable(site_hello site_hello.cc)
target_link_libraries(site_hello PRIVATE p2proxy::p2proxy)
CMAKE
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.log" \
  || { cat "$work/cmake.log"; exit 1; }
cmake --build "$work/consumer/build" > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
check_runs() {  # BINARY: prints its usage and exits 2, having loaded the installed library
  local rc=0
  LD_LIBRARY_PATH="$libdir" "$1" > "$work/run.out" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] && grep -q usage "$work/run.out" || { echo "$1 did not run: exit $rc: $(cat "$work/run.out")"; exit 1; }
  # (Captured first: grep -q stopping early would fail the pipeline under pipefail.)
  local deps
  deps=$(LD_LIBRARY_PATH="$libdir" ldd "$1")
  grep -q "$libdir/libp2proxy.so.0" <<<"$deps" || { echo "$1 does not use the installed library: $deps"; exit 1; }
}
check_runs "$work/consumer/build/dial"
check_runs "$work/consumer/build/resolve"
check_runs "$work/consumer/build/site_hello"
echo "find_package(p2proxy): dial (C), resolve and site_hello (C++) built and linked against $libdir"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -o "$work/consumer/dial-pc" "$work/consumer/dial.c" $(pkg-config --cflags --libs p2proxy)
c++ -std=c++20 -o "$work/consumer/resolve-pc" "$work/consumer/resolve.cc" $(pkg-config --cflags --libs p2proxy)
check_runs "$work/consumer/dial-pc"
c++ -std=c++20 -o "$work/consumer/site_hello-pc" "$work/consumer/site_hello.cc" $(pkg-config --cflags --libs p2proxy)
check_runs "$work/consumer/resolve-pc"
check_runs "$work/consumer/site_hello-pc"
echo "pkg-config p2proxy ($(pkg-config --modversion p2proxy)): dial, resolve and site_hello built and linked"
# Python finds the installed library through P2PROXY_LIBRARY.
pydir=$(dirname "$(find "$prefix" -path '*/dist-packages/p2proxy/__init__.py' | head -n1)")
P2PROXY_LIBRARY="$libdir/libp2proxy.so.0" PYTHONPATH="$(dirname "$pydir")" /usr/bin/python3 -c \
  'import p2proxy; print("python: import p2proxy, version", p2proxy.version())'
