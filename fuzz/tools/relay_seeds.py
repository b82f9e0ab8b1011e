#!/usr/bin/env python3
"""relay_seeds.py: seeds for relay_frame_fuzzer (fuzz/corpus/relay_frame): relay frames as
nat/relay_frame.h lays them out, good and broken, and WireGuard's own messages."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "corpus", "relay_frame")
os.makedirs(out, exist_ok=True)


def frame(dst, src, payload):
    return bytes([0x50, 0, 0, 0]) + bytes(dst) + bytes(src) + payload


site, client, other = [100, 96, 0, 2], [100, 96, 0, 3], [100, 96, 0, 4]
initiation = struct.pack("<I", 1) + bytes(range(144))
transport = struct.pack("<I", 4) + bytes(28)
seeds = {
    "initiation_to_site": frame(site, client, initiation),
    "keepalive_to_site": frame(site, client, transport),
    "spoofed_source": frame(site, other, initiation),
    "unknown_destination": frame(other, client, initiation),
    "to_itself": frame(client, client, initiation),
    "short": frame(site, client, transport[:20]),
    "bad_inner_type": frame(site, client, struct.pack("<I", 9) + bytes(60)),
    "plain_wireguard": initiation,
    "type_word_only": bytes([0x50, 0, 0, 0]),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), out))
