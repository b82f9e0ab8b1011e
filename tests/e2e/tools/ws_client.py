#!/usr/bin/env python3
"""ws_client.py: a WebSocket (RFC 6455) client over TLS for the https end-to-end tests.

Connects to ADDRESS:443 with SNI HOST, trusting only CA_FILE, upgrades GET /ws, sends COUNT
messages (text and binary, sizes up to 200 KB), checks each echo byte for byte, closes, and
prints "ok COUNT". Any mismatch or protocol error exits 1 with a reason.

Usage: ws_client.py ADDRESS HOST CA_FILE COUNT
"""
import base64
import os
import socket
import ssl
import struct
import sys


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def send_frame(sock, opcode, payload):
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(head + mask + masked)


def recv_frame(sock):
    head = read_exact(sock, 2)
    opcode = head[0] & 0x0F
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(sock, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(sock, 8))[0]
    if head[1] & 0x80:
        raise ValueError("server frames must not be masked")
    return opcode, read_exact(sock, n)


def main():
    address, host, ca, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection((address, 443), timeout=20)
    sock = ctx.wrap_socket(raw, server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            sys.exit("closed during the upgrade: %r" % head)
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        sys.exit("no 101: %r" % head)
    for i in range(count):
        payload = os.urandom(1 + (i * 7919) % 200000)
        opcode = 2 if i % 2 else 1
        if opcode == 1:
            payload = base64.b64encode(payload)
        send_frame(sock, opcode, payload)
        got_op, got = recv_frame(sock)
        if got_op != opcode or got != payload:
            sys.exit("message %d: echo differs (opcode %d, %d bytes vs %d)" % (i, got_op, len(got), len(payload)))
    send_frame(sock, 8, b"")
    op, _ = recv_frame(sock)
    if op != 8:
        sys.exit("no close frame back")
    print("ok %d" % count)


if __name__ == "__main__":
    main()
