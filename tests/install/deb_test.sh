#!/usr/bin/env bash
# deb_test.sh BUILD_DIR: cpack makes the .deb; it holds the library, headers, pkg-config and
# CMake files, the daemons, the systemd units and the Python package under /usr, its
# dependencies are Debian packages found by dpkg-shlibdeps, and its maintainer scripts create
# the p2proxy user. (Installing it needs a machine of its own: not done here.)
set -euo pipefail
build=${1:?usage: deb_test.sh BUILD_DIR}
work=$(mktemp -d /tmp/p2proxy-deb-XXXX)
trap 'rm -rf "$work"' EXIT
(cd "$build" && cpack -B "$work" > "$work/cpack.log" 2>&1) || { tail -n 30 "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/*.deb | head -n1)
[ -n "$deb" ] || { echo "no .deb made"; tail -n 30 "$work/cpack.log"; exit 1; }
dpkg-deb -c "$deb" | awk '{print $6}' > "$work/files"
for f in ./usr/bin/p2proxy-server ./usr/bin/p2proxy-site ./usr/bin/p2proxy-client \
         ./usr/include/p2proxy/p2proxy.h ./usr/include/p2proxy/client.h \
         ./usr/lib/systemd/system/p2proxy-site.service ./usr/lib/python3/dist-packages/p2proxy/__init__.py \
         ./usr/share/man/man8/p2proxy-site.8 ./usr/share/man/man8/p2proxy-server.8 ./usr/share/man/man8/p2proxy-client.8; do
  grep -qx "$f" "$work/files" || { echo "the .deb lacks $f"; cat "$work/files"; exit 1; }
done
grep -q '/libp2proxy.so.0$' "$work/files" || { echo "the .deb lacks libp2proxy.so.0"; exit 1; }
grep -q '/pkgconfig/p2proxy.pc$' "$work/files" || { echo "the .deb lacks p2proxy.pc"; exit 1; }
grep -q '/cmake/p2proxy/p2proxyConfig.cmake$' "$work/files" || { echo "the .deb lacks p2proxyConfig.cmake"; exit 1; }
depends=$(dpkg-deb -f "$deb" Depends)
for p in libuv1 libprotobuf32 android-libboringssl adduser; do
  grep -q "$p" <<<"$depends" || { echo "Depends lacks $p: $depends"; exit 1; }
done
grep -qi openssl <<<"$depends" && { echo "the .deb depends on OpenSSL: $depends"; exit 1; }
dpkg-deb -e "$deb" "$work/control"
grep -q 'adduser --system' "$work/control/postinst" || { echo "postinst does not create the p2proxy user"; exit 1; }
echo "$(basename "$deb"): $(wc -l < "$work/files") entries; Depends: $depends"
