#!/usr/bin/env python3
"""socks5_udp.py PROXY_HOST PROXY_PORT HOST PORT MESSAGE: one UDP datagram through a SOCKS5
proxy's UDP ASSOCIATE (RFC 1928 section 7), addressed to HOST by name (the proxy resolves it),
and the answer printed ("reply=<text> from=<addr>:<port>"). Exit 0 on an answer, 1 otherwise.
Bounded: 5 tries, 1 s each."""
import socket
import struct
import sys


def main():
    proxy_host, proxy_port, host, port, message = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    ctl = socket.create_connection((proxy_host, proxy_port), timeout=5)
    ctl.sendall(b"\x05\x01\x00")
    if ctl.recv(2) != b"\x05\x00":
        print("error=method refused")
        return 1
    # UDP ASSOCIATE from 0.0.0.0:0: the proxy takes our first datagram's source as ours.
    ctl.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("0.0.0.0") + struct.pack("!H", 0))
    head = ctl.recv(4)
    if len(head) < 4 or head[1] != 0:
        print("error=associate refused rep=%s" % (head[1] if len(head) > 1 else "?"))
        return 1
    if head[3] != 1:
        print("error=unexpected bound address type %d" % head[3])
        return 1
    rest = ctl.recv(6)
    relay = (socket.inet_ntoa(rest[:4]), struct.unpack("!H", rest[4:6])[0])
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(1)
    name = host.encode()
    datagram = b"\x00\x00\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", port) + message.encode()
    for _ in range(5):
        udp.sendto(datagram, relay)
        try:
            data, _ = udp.recvfrom(65535)
        except socket.timeout:
            continue
        if len(data) < 10 or data[:3] != b"\x00\x00\x00" or data[3] != 1:
            print("error=malformed answer")
            return 1
        src = socket.inet_ntoa(data[4:8])
        sport = struct.unpack("!H", data[8:10])[0]
        print("reply=%s from=%s:%d" % (data[10:].decode(errors="replace"), src, sport))
        return 0
    print("error=no answer")
    return 1


if __name__ == "__main__":
    sys.exit(main())
