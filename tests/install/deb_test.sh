#!/usr/bin/env bash
# deb_test.sh BUILD_DIR: cpack makes the .deb; it holds the library, headers, pkg-config and
# CMake files, the daemons, the systemd units and the Python package under /usr, its
# dependencies are Debian packages found by dpkg-shlibdeps, and its maintainer scripts create
# the p2proxy user. As root it is then installed for real with dpkg -i, in a throwaway copy of
# this machine (an overlay of / on a tmpfs, in a mount namespace of its own, chrooted): the
# dependencies resolve against Debian's packages, the p2proxy user appears, `python3 -c "import
# p2proxy"` loads the installed library, the daemons run, systemd-analyze accepts the units,
# and dpkg --purge takes it all away. Nothing of it reaches the real machine.
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

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP the dpkg -i check: it needs root (a mount namespace and a chroot)"
  exit 0
fi
cp "$deb" "$work/p2proxy.deb"
cat > "$work/inside.sh" <<'INSIDE'
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
# Nothing of the build tree is visible: only what the package installs.
unset PYTHONPATH P2PROXY_LIBRARY LD_LIBRARY_PATH
if dpkg -s p2proxy > /dev/null 2>&1; then echo "p2proxy is installed already: the check needs a machine without it"; exit 3; fi
dpkg -i /tmp/p2proxy.deb > /tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
echo "dpkg -i: $(grep -c . /tmp/dpkg.log) lines, status: $(dpkg-query -W -f='${Status} ${Version}' p2proxy)"
id p2proxy > /dev/null || { echo "postinst made no p2proxy user"; exit 1; }
[ "$(stat -c '%a %G' /etc/p2proxy)" = "750 p2proxy" ] || { echo "/etc/p2proxy: $(stat -c '%a %G' /etc/p2proxy)"; exit 1; }
python3 -c 'import p2proxy; print("python3 -c import p2proxy: version", p2proxy.version())'
for d in p2proxy-server p2proxy-site p2proxy-client; do
  "/usr/bin/$d" --help > /tmp/help.out 2>&1 || true
  grep -q -- '--state_dir' /tmp/help.out || { echo "$d --help: $(head -c 300 /tmp/help.out)"; exit 1; }
done
echo "the daemons run from /usr/bin"
for u in p2proxy-server p2proxy-site p2proxy-client; do
  systemd-analyze verify "/usr/lib/systemd/system/$u.service" > /tmp/verify.out 2>&1 \
    || { echo "systemd-analyze verify $u.service: $(cat /tmp/verify.out)"; exit 1; }
done
echo "systemd-analyze verify accepts the three units"
dpkg --purge p2proxy > /tmp/purge.log 2>&1 || { cat /tmp/purge.log; exit 1; }
left=$(ls /usr/bin/p2proxy-* /usr/lib/*/libp2proxy* /usr/include/p2proxy 2>/dev/null || true)
[ -z "$left" ] || { echo "dpkg --purge left: $left"; exit 1; }
echo "dpkg --purge removed it"
INSIDE
unshare --mount --propagation private bash -euc '
  work=$1
  mkdir -p "$work/ov"
  mount -t tmpfs tmpfs "$work/ov"
  mkdir -p "$work/ov/up" "$work/ov/wk" "$work/ov/root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$work/ov/up,workdir=$work/ov/wk" "$work/ov/root"
  r=$work/ov/root
  for m in proc sys dev; do mount --rbind "/$m" "$r/$m"; done
  mount -t tmpfs tmpfs "$r/tmp"
  mount -t tmpfs tmpfs "$r/run"
  cp "$work/p2proxy.deb" "$work/inside.sh" "$r/tmp/"
  chroot "$r" bash /tmp/inside.sh
' _ "$work"
