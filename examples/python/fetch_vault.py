#!/usr/bin/env python3
"""fetch_vault.py: fetch https://vault.example.internal/ through a p2proxy client running in
this process (userspace, no root), with TLS from Python's ssl module over the socket the
client hands back, trusting the server's CA (`p2proxy-server admin ca export`).

    fetch_vault.py STATE_DIR CA_PEM [SERVER TOKEN]    (server and token: first start only)
"""
import ssl
import sys

import p2proxy


def main():
    if len(sys.argv) not in (3, 5):
        print(__doc__, file=sys.stderr)
        return 2
    options = {"state_dir": sys.argv[1]}
    if len(sys.argv) == 5:
        options.update(server=sys.argv[3], token=sys.argv[4])
    host = "vault.example.internal"
    with p2proxy.Client(**options) as client:
        print("%s is %s in the overlay" % (host, client.resolve(host)), file=sys.stderr)
        context = ssl.create_default_context(cafile=sys.argv[2])
        with context.wrap_socket(client.dial(host, 443), server_hostname=host) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
            response = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    print(head.split(b"\r\n")[0].decode(), file=sys.stderr)
    sys.stdout.write(body.decode("utf-8", "replace"))
    return 0 if head.startswith(b"HTTP/1.1 200") else 1


if __name__ == "__main__":
    sys.exit(main())
