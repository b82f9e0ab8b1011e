#!/usr/bin/env python3
"""admin_seeds.py: writes the seed corpus of admin_request_fuzzer (fuzz/corpus/admin_request/).

Each seed is one payload as src/server/admin_socket.h lays it out, without the 32-bit length
the connection puts in front (the fuzzer gives the whole input to the decoders):

  request:  u8 version (1) | u32 num_args | num_args x (u32 len | bytes)
  response: u8 version (1) | u8 exit_code | u32 out_len | out | u32 err_len | err

all integers big-endian, nothing trailing, at most 256 args and 64 KiB per request. The bytes are
built here from that text, not by the code under test. valid_* and empty_args decode; the
others are each one way a message goes wrong. Run from the tree's root:

  python3 fuzz/tools/admin_seeds.py
"""
import os
import struct

OUT = "fuzz/corpus/admin_request"
VERSION = 1
MAX_ARGS = 256


def request(args, version=VERSION, num_args=None):
    body = b"".join(struct.pack(">I", len(a)) + a for a in (x.encode() for x in args))
    count = len(args) if num_args is None else num_args
    return bytes([version]) + struct.pack(">I", count) + body


def response(exit_code, out, err):
    out, err = out.encode(), err.encode()
    return (bytes([VERSION, exit_code]) + struct.pack(">I", len(out)) + out +
            struct.pack(">I", len(err)) + err)


RESOURCE_ADD = ["resource", "add", "vault", "--domain", "vault.example.internal", "--site", "s1",
                "--target", "10.0.10.15:8080", "--kind", "https", "--allow", "role:admins",
                "--path", "/admin=user:alice,role:admins"]

SEEDS = {
    "valid_help": request(["help"]),
    "valid_resource_add": request(RESOURCE_ADD),
    "valid_token_create": request(["token", "create", "device", "--user", "alice", "--ttl", "12h", "--json"]),
    "valid_max_args": request(["x"] * MAX_ARGS),
    "empty_args": request([]),
    # One more than the limit, every arg present: refused for the count, not for truncation.
    "too_many_args": request(["x"] * (MAX_ARGS + 1)),
    "truncated": request(RESOURCE_ADD)[:-7],
    "trailing_bytes": request(["help"]) + b"\n",
    "bad_version": request(["help"], version=2),
    # An arg claiming 4 GiB - 1 bytes behind a valid header.
    "huge_length": request([], num_args=1) + struct.pack(">I", 0xFFFFFFFF) + b"help",
    "huge_count": request([], num_args=0xFFFFFFFF),
    "nul_in_arg": request(["resource", "remove", "va\0ult"]),
    "valid_response_ok": response(0, "vault  100.96.128.20  https  s1\n", ""),
    "valid_response_error": response(2, "", "resource add: --port 70000 is not a port (1-65535)\n"),
    "response_truncated": response(1, "partial output\n", "")[:-3],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, payload in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(payload)


if __name__ == "__main__":
    main()
