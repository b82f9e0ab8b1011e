#!/usr/bin/env python3
"""echo_seeds.py: seeds for fuzz/echo_reply: ICMP echo requests to 100.96.0.1 (answered) and
near misses (another address, a reply, a fragment, a bad checksum, truncated, IPv6)."""
import os
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def echo(dst=bytes([100, 96, 0, 1]), typ=8, payload=b"ping", frag=0):
    icmp = struct.pack("!BBHHH", typ, 0, 0, 0x1234, 1) + payload
    icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 1, frag, 64, 1, 0, bytes([100, 96, 0, 2]), dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + icmp


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "corpus", "echo_reply")
    os.makedirs(out, exist_ok=True)
    bad_sum = bytearray(echo())
    bad_sum[22] ^= 0xFF
    seeds = {
        "request": echo(),
        "request_large": echo(payload=bytes(range(256)) * 5),
        "request_odd": echo(payload=b"odd"),
        "other_address": echo(dst=bytes([100, 96, 0, 7])),
        "reply": echo(typ=0),
        "fragment": echo(frag=0x2000),
        "bad_checksum": bytes(bad_sum),
        "truncated": echo()[:24],
        "padded": echo() + b"\0" * 6,
        "ipv6": bytes([0x60]) + bytes(47),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
