#!/usr/bin/env bash
# setup.sh: installs everything p2proxy needs on Debian 12 from Debian's packages, and fetches
# lwIP's source with `apt-get source lwip`. Idempotent; a second run installs and downloads nothing.
#
# Usage: scripts/setup.sh [build|test|demo]...   (default: test)
#   build  compilers and libraries
#   test   build + tools the tests drive (wireguard-go, wg, iperf3, dig, curl, ...)
#   demo   test + what the end-to-end demo and the benchmarks use (dnsperf)
#
# Environment:
#   P2P_DEPS_DIR  where lwIP's source is unpacked (default /var/cache/p2proxy/src); it survives
#                 fresh clones, so CI does not download it again.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs Debian packages); try: sudo $0 $*"
[ -r /etc/os-release ] || die "/etc/os-release is missing; this script supports Debian 12"
. /etc/os-release
codename="${VERSION_CODENAME:-}"
[ -n "$codename" ] || die "/etc/os-release has no VERSION_CODENAME"
[ "$codename" = bookworm ] || log "warning: tested on Debian 12 (bookworm), this is $codename"

build_pkgs=(
  build-essential cmake ninja-build ccache pkg-config git dpkg-dev help2man
  clang libclang-rt-14-dev llvm
  libuv1-dev android-libboringssl-dev libc-ares-dev libprotobuf-dev protobuf-compiler
  libabsl-dev catch2 libnghttp2-dev libhttp-parser-dev libsqlite3-dev
)
test_pkgs=(
  iproute2 nftables iputils-ping procps psmisc wireguard-go wireguard-tools iperf3 curl dnsutils
  openssl openssh-server openssh-client socat netcat-openbsd tcpdump dnsmasq nginx-light
  python3 chromium libnss3-tools conntrack
)
demo_pkgs=(dnsperf nghttp2-client)

want=("${build_pkgs[@]}")
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(test)
for m in "${modes[@]}"; do
  case "$m" in
    build) ;;
    test) want+=("${test_pkgs[@]}") ;;
    demo) want+=("${test_pkgs[@]}" "${demo_pkgs[@]}") ;;
    *) die "unknown mode '$m' (expected build, test or demo)" ;;
  esac
done

# ---- deb-src entry, derived from this machine's own apt sources -------------------------------
# apt-get source needs a deb-src line. We copy the URIs of the enabled Debian entries for this
# release's main suite; no host name is written by hand anywhere in the project.
src_list=/etc/apt/sources.list.d/p2proxy-deb-src.sources
have_deb_src() {
  grep -rqsE '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list && return 0
  grep -rqsiE '^Types:.*deb-src' /etc/apt/sources.list.d/*.sources
}
derive_deb_src() {
  local uris=()
  # deb822 stanzas: Types contains deb, Suites contains the codename.
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    [ "$f" = "$src_list" ] && continue
    while IFS= read -r u; do [ -n "$u" ] && uris+=("$u"); done < <(awk -v cn="$codename" '
      function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " cn " ") && enabled != "no") print uri; types=""; suites=""; uri=""; enabled="" }
      /^[[:space:]]*$/ { flush(); next }
      /^[Tt]ypes:/ { sub(/^[^:]*:[[:space:]]*/, ""); types=$0 }
      /^[Ss]uites:/ { sub(/^[^:]*:[[:space:]]*/, ""); suites=$0 }
      /^URIs:/ { sub(/^[^:]*:[[:space:]]*/, ""); uri=$1 }
      /^[Ee]nabled:/ { sub(/^[^:]*:[[:space:]]*/, ""); enabled=tolower($0) }
      END { flush() }' "$f")
  done
  # one-line format: "deb [opts] URI codename components"
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    while IFS= read -r u; do [ -n "$u" ] && uris+=("$u"); done < <(awk -v cn="$codename" '
      $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } if ($(i+1) == cn) print $i }' "$f")
  done
  [ ${#uris[@]} -gt 0 ] || die "no enabled 'deb' entry for $codename in /etc/apt/sources.list{,.d}; add one, then rerun"
  local uniq
  uniq=$(printf '%s\n' "${uris[@]}" | awk '!seen[$0]++' | tr '\n' ' ')
  log "adding deb-src for $codename from the machine's sources: $uniq"
  cat > "$src_list" <<EOF
# Written by p2proxy scripts/setup.sh: source entries derived from this machine's apt sources,
# so that 'apt-get source lwip' works.
Types: deb-src
URIs: $uniq
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

apt_updated=0
apt_update() {
  if [ $apt_updated -eq 0 ]; then
    log "apt-get update"
    apt-get update -q >/dev/null || die "apt-get update failed; check the machine's apt sources"
    apt_updated=1
  fi
}

# ---- packages -------------------------------------------------------------------------------
missing=()
for p in $(printf '%s\n' "${want[@]}" | awk '!seen[$0]++'); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt_update
  log "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
else
  log "all ${#want[@]} packages already installed"
fi
# Daemons that Debian starts on install are stopped: tests start their own copies.
for svc in nginx dnsmasq ssh; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then
    systemctl stop "$svc" 2>/dev/null || true
  fi
done

# ---- lwIP source ----------------------------------------------------------------------------
deps_dir="${P2P_DEPS_DIR:-/var/cache/p2proxy/src}"
lwip_version=2.1.3
lwip_dir="$deps_dir/lwip"
if [ -f "$lwip_dir/.p2proxy-ok" ] && [ -f "$lwip_dir/src/core/tcp.c" ]; then
  log "lwIP source present at $lwip_dir"
else
  if ! have_deb_src; then derive_deb_src; apt_updated=0; fi
  apt_update
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  log "apt-get source lwip (into $tmp)"
  (cd "$tmp" && apt-get source -q lwip >/dev/null 2>"$tmp/err") \
    || { cat "$tmp/err" >&2; die "apt-get source lwip failed"; }
  src=$(find "$tmp" -maxdepth 1 -mindepth 1 -type d -name 'lwip-*' | head -n1)
  [ -n "$src" ] && [ -f "$src/src/core/tcp.c" ] || die "apt-get source lwip gave no source tree"
  got=$(sed -n 's/.*LWIP_VERSION_MAJOR[[:space:]]*\([0-9]*\).*/\1/p' "$src/src/include/lwip/init.h" | head -n1)
  log "unpacked $(basename "$src") (major $got)"
  mkdir -p "$deps_dir"
  rm -rf "$lwip_dir"
  mv "$src" "$lwip_dir"
  echo "$lwip_version" > "$lwip_dir/.p2proxy-ok"
fi
echo "$lwip_dir"
