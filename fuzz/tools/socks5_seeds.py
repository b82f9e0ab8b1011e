#!/usr/bin/env python3
"""socks5_seeds.py: writes the seed corpus of socks5_fuzzer (fuzz/corpus/socks5/).

Each seed is one byte that picks where the fuzzer splits the input (0..255, scaled to its
length), then the bytes a local SOCKS5 client would send, laid out from RFC 1928 here rather
than by the code under test:

  greeting      VER=5 NMETHODS METHODS
  request       VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT    (ATYP 1 IPv4, 3 name, 4 IPv6)
  reply         VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT
  UDP datagram  RSV=0000 FRAG ATYP DST.ADDR DST.PORT DATA

The fuzzer gives every input to every parser. Seeds that are not named as a refusal parse;
the others are each one way a message goes wrong. Run from the tree's root:

  python3 fuzz/tools/socks5_seeds.py
"""
import os
import struct

OUT = "fuzz/corpus/socks5"


def greeting(*methods, version=5):
    return bytes([version, len(methods), *methods])


def addr_v4(a, port):
    return bytes([1, *a]) + struct.pack(">H", port)


def addr_v6(a16, port):
    return bytes([4]) + a16 + struct.pack(">H", port)


def addr_name(name, port, length=None):
    name = name.encode("latin-1")
    return bytes([3, len(name) if length is None else length]) + name + struct.pack(">H", port)


def request(cmd, addr, rsv=0, version=5):
    return bytes([version, cmd, rsv]) + addr


def reply(rep, addr):
    return bytes([5, rep, 0]) + addr


def udp(addr, data, frag=0, rsv=b"\0\0"):
    return rsv + bytes([frag]) + addr + data


V6_DOC = bytes.fromhex("20010db8000000000000000000000001")  # 2001:db8::1
CONNECT_NAME = request(1, addr_name("example.com", 443))

SEEDS = {
    "greeting_curl": (0x80, greeting(0)),
    "greeting_userpass_too": (0x40, greeting(0, 2)),
    # Only username/password (RFC 1929): parses; the proxy answers 05 FF.
    "greeting_only_userpass": (0x80, greeting(2)),
    "greeting_then_connect": (0x20, greeting(0) + CONNECT_NAME),
    "connect_name": (0x80, CONNECT_NAME),
    "connect_name_then_data": (0xC0, CONNECT_NAME + b"\x16\x03\x01\x00\x05hello"),
    "connect_ipv4": (0x80, request(1, addr_v4((192, 0, 2, 1), 22))),
    "connect_ipv6": (0x80, request(1, addr_v6(V6_DOC, 8443))),
    "connect_name_upper_dot": (0x60, request(1, addr_name("Vault.Example.INTERNAL.", 443))),
    "connect_name_quad": (0x80, request(1, addr_name("10.0.0.1", 80))),
    "bind": (0x80, request(2, addr_name("ftp.example.com", 21))),
    "udp_associate_zeros": (0x80, request(3, addr_v4((0, 0, 0, 0), 0))),
    "reply_ok_v4": (0x80, reply(0, addr_v4((127, 0, 0, 1), 1080))),
    "reply_host_unreachable": (0x80, reply(4, addr_v4((0, 0, 0, 0), 0))),
    "udp_dns_v4": (0x80, udp(addr_v4((10, 0, 0, 53), 53), bytes.fromhex("abcd01000001000000000000"))),
    "udp_name": (0x80, udp(addr_name("ns.lan", 53), b"query")),
    # Refusals.
    "socks4_connect": (0x80, bytes([4, 1, 0, 80, 192, 0, 2, 1]) + b"user\0"),
    "http_on_socks_port": (0x80, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
    "no_methods": (0x80, greeting()),
    "bad_command": (0x80, request(4, addr_name("example.com", 443))),
    "bad_atyp": (0x80, request(1, bytes([2, 1, 2, 3, 4, 0, 80]))),
    "rsv_nonzero": (0x80, request(1, addr_v4((192, 0, 2, 1), 22), rsv=1)),
    "empty_name": (0x80, request(1, addr_name("", 443))),
    "name_with_nul": (0x80, request(1, addr_name("exa\0mple.com", 443))),
    "name_ends_in_number": (0x80, request(1, addr_name("127.1", 443))),
    "name_empty_label": (0x80, request(1, addr_name("a..b", 443))),
    "truncated_ipv6": (0xFF, request(1, addr_v6(V6_DOC, 443))[:-3]),
    "udp_fragment": (0x80, udp(addr_v4((10, 0, 0, 53), 53), b"part", frag=1)),
    "udp_truncated": (0x80, udp(addr_v6(V6_DOC, 53), b"")[:-1]),
    "reply_undefined_code": (0x80, reply(9, addr_v4((0, 0, 0, 0), 0))),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (split, payload) in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([split]) + payload)


if __name__ == "__main__":
    main()
