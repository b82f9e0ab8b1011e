#!/usr/bin/env python3
"""stream_seeds.py: seeds for stream_frame_fuzzer (fuzz/corpus/stream_frame): a first byte that
chooses the read size, then WireGuard-over-TLS streams framed as nat/stream_frame.h lays them
out (a 16-bit big-endian length, then the message), good and broken."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "corpus", "stream_frame")
os.makedirs(out, exist_ok=True)


def framed(msg):
    return struct.pack(">H", len(msg)) + msg


initiation = struct.pack("<I", 1) + bytes(range(144))
response = struct.pack("<I", 2) + bytes(88)
keepalive = struct.pack("<I", 4) + bytes(28)
relay = bytes([0x50, 0, 0, 0, 100, 96, 0, 2, 100, 96, 0, 3]) + initiation
full = struct.pack("<I", 4) + bytes(1612 - 4)
seeds = {
    "handshake": bytes([7]) + framed(initiation) + framed(response),
    "keepalives_bytewise": bytes([0]) + framed(keepalive) * 3,
    "relay_frame": bytes([13]) + framed(relay),
    "largest": bytes([63]) + framed(full),
    "too_long": bytes([5]) + struct.pack(">H", 1613) + bytes(1613),
    "too_short": bytes([1]) + framed(keepalive) + struct.pack(">H", 31) + bytes(31),
    "zero_length": bytes([2]) + struct.pack(">H", 0),
    "truncated": bytes([3]) + framed(initiation)[:100],
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), out))
