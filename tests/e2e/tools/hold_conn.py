#!/usr/bin/env python3
"""hold_conn.py HOST PORT IN OUT: one TCP connection held open for a test.

Sends what is appended to the file IN (as it appears) and appends what arrives to the file OUT.
Exits when the connection ends: status 0 after an orderly end (FIN), 3 after a reset, and
writes the way it ended to OUT.status. One process, no children, so the test's cleanup kills it.
"""
import os
import select
import socket
import sys


def main():
    host, port, in_path, out_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(None)
    sent = 0
    status = "eof"
    with open(out_path, "ab", buffering=0) as out:
        while True:
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    status = "reset"
                    break
                if not data:
                    break
                out.write(data)
            size = os.path.getsize(in_path)
            if size > sent:
                with open(in_path, "rb") as f:
                    f.seek(sent)
                    chunk = f.read(size - sent)
                try:
                    sock.sendall(chunk)
                except (ConnectionResetError, BrokenPipeError):
                    status = "reset"
                    break
                sent += len(chunk)
    with open(out_path + ".status", "w") as f:
        f.write(status + "\n")
    sys.exit(3 if status == "reset" else 0)


if __name__ == "__main__":
    main()
