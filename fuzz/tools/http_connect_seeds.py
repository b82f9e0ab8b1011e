#!/usr/bin/env python3
"""http_connect_seeds.py: writes the seed corpus of http_connect_fuzzer (fuzz/corpus/http_connect/).

Each seed is one byte that picks where the fuzzer splits the input (0..255, scaled to its
length), then what a local client would send to an HTTP CONNECT proxy: a request head
(RFC 9112: request line, fields, CRLF CRLF), sometimes followed by the tunnel's first bytes.
Seeds not named as a refusal parse; the others are each one way a head goes wrong (the status
the proxy answers with is in the comment). Run from the tree's root:

  python3 fuzz/tools/http_connect_seeds.py
"""
import os

OUT = "fuzz/corpus/http_connect"


def head(line, *fields):
    return (line + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n").encode("latin-1")


def connect(target, *fields, version="HTTP/1.1"):
    return head(f"CONNECT {target} {version}", *fields)


CURL = connect("example.com:443", "Host: example.com:443", "User-Agent: curl/8.5.0",
               "Proxy-Connection: Keep-Alive")
CLIENT_HELLO = bytes.fromhex("160301003a0100003603035f1b")

SEEDS = {
    "curl": (0x80, CURL),
    "firefox": (0x40, connect("vault.example.internal:443", "User-Agent: Mozilla/5.0 (X11; Linux x86_64; "
                              "rv:128.0) Gecko/20100101 Firefox/128.0", "Proxy-Connection: keep-alive",
                              "Connection: keep-alive", "Host: vault.example.internal:443")),
    "http10_ipv4": (0x80, connect("192.0.2.1:22", version="HTTP/1.0")),
    "ipv6": (0x80, connect("[2001:db8::1]:8443", "Host: [2001:db8::1]:8443")),
    "name_upper_dot": (0x80, connect("Vault.Example.INTERNAL.:443")),
    "proxy_authorization": (0x80, connect("example.com:443", "Host: example.com:443",
                                          "Proxy-Authorization: Basic dXNlcjpwYXNz")),
    # A client that sends its ClientHello without waiting for the 200: the head ends first.
    "pipelined_client_hello": (0xF0, CURL + CLIENT_HELLO),
    "incomplete": (0xFF, CURL[:-2]),
    # Refusals.
    "get_absolute_form": (0x80, head("GET http://example.com/ HTTP/1.1", "Host: example.com")),  # 405
    "lowercase_method": (0x80, head("connect example.com:443 HTTP/1.1")),  # 405
    "http2_version": (0x80, connect("example.com:443", version="HTTP/2.0")),  # 505
    "no_port": (0x80, connect("example.com")),  # 400
    "port_zero": (0x80, connect("example.com:0")),  # 400
    "port_too_big": (0x80, connect("example.com:65536")),  # 400
    "ipv6_unbracketed": (0x80, connect("2001:db8::1:443")),  # 400
    "scheme_and_path": (0x80, connect("https://example.com:443/")),  # 400
    "userinfo": (0x80, connect("user:pass@example.com:443")),  # 400
    "name_ends_in_number": (0x80, connect("0x7f.1:80")),  # 400
    "bare_lf": (0x80, b"CONNECT example.com:443 HTTP/1.1\nHost: example.com:443\n\n"),  # 400
    "bare_cr": (0x80, connect("example.com:443", "Host: a\rb")),  # 400
    "nul_in_field": (0x80, connect("example.com:443", "X-A: a\0b")),  # 400
    "obs_fold": (0x80, connect("example.com:443", "X-A: one", " two")),  # 400
    "space_before_colon": (0x80, connect("example.com:443", "Host : example.com:443")),  # 400
    "too_many_fields": (0x80, connect("example.com:443", *[f"X-F: {i}" for i in range(101)])),  # 431
    # Longer than CTest's -max_len=4096 (which cuts it to an incomplete head); a longer run by
    # hand with a larger -max_len reaches the 8 KiB cap.
    "head_too_large": (0x80, connect("example.com:443", "X-Pad: " + "p" * 8200)),  # 431
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (split, payload) in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([split]) + payload)


if __name__ == "__main__":
    main()
