#!/usr/bin/env python3
"""path_seeds.py: writes the path-rule bypass seeds of the HTTP fuzzers.

  fuzz/corpus/http1_request/path_*   HTTP/1.1 requests (byte 0: pieces, bytes 1-2: splits)
  fuzz/corpus/h2_server/path_*       an HTTP/2 client connection (byte 0: chunk size - 1,
                                     byte 1: flags), one HEADERS frame per target

Each holds request targets that some app maps onto "/admin" (";" parameters, mixed case,
encoded or raw slashes and backslashes, dot segments, double encoding, overlong UTF-8,
absolute-form), which path_policy_check.h asserts never get forwarded. Run from the tree's
root: python3 fuzz/tools/path_seeds.py
"""
import os

BYPASSES = [
    b"/admin;x/panel", b"/admin;/panel", b"/admin;jsessionid=1", b"/x/..;/admin/panel", b"/.;/admin",
    b"/Admin/panel", b"/ADMIN;x", b"/%41dmin", b"/aDmIn.json",
    b"/admin%2Fpanel", b"/admin%2fpanel", b"/%2fadmin", b"/admin%5Cpanel", b"/x/..%5cadmin",
    b"/admin\\panel", b"/x/..\\admin", b"/admin%3Bx/panel",
    b"/public/../admin", b"/x/%2e%2e/admin", b"//admin//panel", b"/../admin", b"/%2e%2e/admin",
    b"/%2561dmin", b"/%25%36%31dmin", b"/%u0061dmin", b"/%c0%afadmin", b"/x%c0%af..%c0%afadmin",
    b"/adm%C4%B1n", b"/%C5%BFecret", b"/admin./panel", b"/admin%20/panel", b"/admin%00", b"/admin%zz",
    b"/admin?x=1", b"/admin#frag", b"/ok;p/../admin", b"/ok",
]


def h1_request(target, host=b"app.test"):
    return b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"


def h1_seed(stream, pieces=0, a=0, b=0):
    return bytes([pieces, a, b]) + stream


def hpack_int(value, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(index, value):
    # Literal header field without indexing, indexed name (RFC 7541 §6.2.2), no Huffman.
    return hpack_int(index, 4, 0x00) + hpack_int(len(value), 7, 0x00) + value


def frame(ftype, flags, stream_id, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream_id.to_bytes(4, "big") + payload


def h2_connection(targets):
    out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(0x04, 0, 0, b"")
    stream_id = 1
    for target in targets:
        block = b"\x82\x87" + literal(1, b"app.test") + literal(4, target)  # GET, https
        out += frame(0x01, 0x05, stream_id, block)  # HEADERS, END_STREAM | END_HEADERS
        stream_id += 2
    return out


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main():
    h1 = "fuzz/corpus/http1_request"
    h2 = "fuzz/corpus/h2_server"
    write(os.path.join(h1, "path_bypass_pipelined"), h1_seed(b"".join(h1_request(t) for t in BYPASSES)))
    write(os.path.join(h1, "path_params"), h1_seed(h1_request(b"/admin;x/panel") + h1_request(b"/x/..;/admin")))
    write(os.path.join(h1, "path_encoded_slash"), h1_seed(h1_request(b"/admin%2Fpanel") + h1_request(b"/x/..%5Cadmin")))
    write(os.path.join(h1, "path_absolute_form"),
          h1_seed(h1_request(b"http://app.test/admin;x/panel") + h1_request(b"https://APP.test/%61dmin?x")))
    write(os.path.join(h1, "path_mixed_case_split"), h1_seed(h1_request(b"/ADMIN/panel"), 3, 9, 14))
    write(os.path.join(h2, "path_bypass"), bytes([0x3F, 0x04]) + h2_connection(BYPASSES[:18]))
    write(os.path.join(h2, "path_bypass_more"), bytes([0xFF, 0x04]) + h2_connection(BYPASSES[18:]))
    write(os.path.join(h2, "path_asterisk_and_forms"),
          bytes([0x0F, 0x04]) + h2_connection([b"*", b"http://app.test/admin", b"admin", b"/a b"]))


if __name__ == "__main__":
    main()
