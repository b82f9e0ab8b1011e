#!/usr/bin/env bash
# check_exports.sh LIB: libp2proxy.so exports the C API and the public C++ classes, and nothing
# else (no module, abseil, protobuf, libuv or BoringSSL symbol); it has a SONAME.
set -euo pipefail
lib=${1:?usage: check_exports.sh LIB}
syms=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | c++filt | sort -u)
bad=$(grep -v -E '^(p2proxy_[a-z_]+|p2proxy::(Client|Site|Listener|Server)::.*|P2PROXY_[0-9.]+)$' <<<"$syms" || true)
if [ -n "$bad" ]; then
  echo "libp2proxy exports symbols outside the public API:"
  echo "$bad" | head -n 50
  exit 1
fi
for s in p2proxy_version p2proxy_client_start p2proxy_client_dial p2proxy_client_dial_udp p2proxy_client_resolve \
         p2proxy_client_status_json p2proxy_client_stop p2proxy_client_free p2proxy_free \
         p2proxy_site_start p2proxy_site_listen p2proxy_site_status_json p2proxy_site_stop p2proxy_site_free \
         p2proxy_listener_accept p2proxy_listener_fd p2proxy_listener_close p2proxy_listener_free \
         p2proxy_server_init p2proxy_server_start p2proxy_server_admin p2proxy_server_stop p2proxy_server_free; do
  grep -qx "$s" <<<"$syms" || { echo "libp2proxy does not export $s"; exit 1; }
done
for s in 'p2proxy::Client::Start(' 'p2proxy::Site::Start(' 'p2proxy::Site::Listen(' 'p2proxy::Listener::Accept(' 'p2proxy::Server::Start(' 'p2proxy::Server::Admin('; do
  grep -qF "$s" <<<"$syms" || { echo "libp2proxy does not export $s"; exit 1; }
done
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = libp2proxy.so.0 ] || { echo "SONAME is '$soname', not libp2proxy.so.0"; exit 1; }
echo "exports: $(wc -l <<<"$syms") symbols, all public; SONAME $soname"
