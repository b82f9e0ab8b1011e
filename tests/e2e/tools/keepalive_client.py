#!/usr/bin/env python3
"""keepalive_client.py HOST PORT STOPFILE OUT: one HTTP/1.1 keep-alive connection, used for a test.

Sends GET / on the same connection about five times a second until STOPFILE exists, checks that
each answer is complete (Content-Length) and records which page it was. Writes one line to OUT:
"ok requests=N pages=PAGE1,PAGE2..." and exits 0 after STOPFILE; on any failure (reset, early
end, a timeout of 10 s on one answer) writes "fail requests=N error=..." and exits 1.
"""
import os
import socket
import sys
import time


def read_response(sock, buf):
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the connection ended before a response")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("a response without Content-Length")
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the connection ended inside a body")
        rest += data
    return rest[:length], rest[length:]


def main():
    host, port, stop, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    n = 0
    pages = []
    try:
        sock = socket.create_connection((host, port), timeout=10)
        buf = b""
        while not os.path.exists(stop):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
            body, buf = read_response(sock, buf)
            page = body.decode(errors="replace").strip()
            if page not in pages:
                pages.append(page)
            n += 1
            with open(out + ".count", "w") as f:
                f.write(str(n))
            time.sleep(0.2)  # pacing, not synchronisation: the test waits on the count file
    except Exception as e:  # noqa: BLE001 - every failure is the test's answer
        with open(out, "w") as f:
            f.write(f"fail requests={n} error={type(e).__name__}: {e}\n")
        return 1
    with open(out, "w") as f:
        f.write(f"ok requests={n} pages={','.join(pages)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
