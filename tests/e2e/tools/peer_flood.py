#!/usr/bin/env python3
"""peer_flood.py: one peer pushing the site to its per-peer limits, for limits_test.sh.

Each mode opens what it is asked to, prints one summary line ("key=value ..."), then holds
everything open until the file given with --hold disappears (or --max-hold seconds pass), so the
test can check that another peer is still served meanwhile. Bounded: every wait has a limit.

  peer_flood.py tcp ADDR PORT N        N connections to an echo service; each sends one byte and
                                       waits for it back: ok=echoed refused=reset or closed
  peer_flood.py udp ADDR PORT N        N sockets (N source ports) send one datagram to a UDP echo
                                       service: ok=answered silent=no answer
  peer_flood.py h2 ADDR SNI CA N       one TLS+HTTP/2 connection opening N POST /upload streams
                                       whose bodies never come: refused=RST_STREAM(REFUSED_STREAM)
                                       open=the rest
  peer_flood.py stall ADDR PORT N      N connections that send nothing (a stalled TLS handshake):
                                       closed=how many the site closed within --wait seconds
  peer_flood.py udp-echo ADDR PORT     serve: a UDP echo (the target of the udp resource)
"""
import argparse
import os
import select
import socket
import ssl
import struct
import sys
import time


def hold(args, keep):
    """Keeps |keep| referenced until the hold file is gone or max_hold passes."""
    end = time.monotonic() + args.max_hold
    while args.hold and os.path.exists(args.hold) and time.monotonic() < end:
        time.sleep(0.1)
    del keep


def mode_tcp(args):
    conns = []
    connect_errors = {}
    for _ in range(args.n):
        try:
            conns.append(socket.create_connection((args.addr, args.port), timeout=5))
        except OSError as e:
            name = type(e).__name__
            connect_errors[name] = connect_errors.get(name, 0) + 1
    ok = 0
    refused = sum(connect_errors.values())
    for s in conns:
        try:
            s.sendall(b"x")
            s.settimeout(5)
            data = s.recv(1)
            if data == b"x":
                ok += 1
            else:
                refused += 1
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            refused += 1
    errors = ",".join(f"{k}:{v}" for k, v in sorted(connect_errors.items())) or "none"
    print(f"mode=tcp ok={ok} refused={refused} connect_errors={errors}", flush=True)
    hold(args, conns)


def mode_udp(args):
    socks = []
    for i in range(args.n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        s.sendto(b"ping %d" % i, (args.addr, args.port))
        socks.append(s)
    answered = set()
    end = time.monotonic() + args.wait
    while len(answered) < len(socks) and time.monotonic() < end:
        ready, _, _ = select.select([s for s in socks if s not in answered], [], [], 0.2)
        for s in ready:
            s.recv(2048)
            answered.add(s)
    print(f"mode=udp ok={len(answered)} silent={len(socks) - len(answered)}", flush=True)
    hold(args, socks)


def hpack_literal(name, value):
    # Literal header field without indexing, new name (RFC 7541 §6.2.2); short strings only.
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return bytes([0x00, len(n)]) + n + bytes([len(v)]) + v


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def mode_h2(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((args.addr, 443), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=args.sni)
    if s.selected_alpn_protocol() != "h2":
        print("mode=h2 error=no_h2", flush=True)
        sys.exit(1)
    out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(0x4, 0, 0)
    for i in range(args.n):
        block = b"".join(hpack_literal(k, v) for k, v in [
            (":method", "POST"), (":scheme", "https"), (":path", "/upload"),
            (":authority", args.sni), ("content-length", "1000000")])
        out += frame(0x1, 0x4, 1 + 2 * i, block)  # END_HEADERS, no END_STREAM: the body never comes
    s.sendall(out)
    refused = set()
    buf = b""
    end = time.monotonic() + args.wait
    s.settimeout(0.2)
    while time.monotonic() < end and len(refused) < args.n:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            ftype, flags = buf[3], buf[4]
            stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            payload = buf[9:9 + length]
            buf = buf[9 + length:]
            if ftype == 0x4 and not flags & 0x1:
                s.sendall(frame(0x4, 0x1, 0))  # SETTINGS ACK
            elif ftype == 0x3 and int.from_bytes(payload[:4], "big") == 0x7:
                refused.add(stream)
    print(f"mode=h2 refused={len(refused)} open={args.n - len(refused)}", flush=True)
    hold(args, s)


def mode_stall(args):
    conns = [socket.create_connection((args.addr, args.port), timeout=5) for _ in range(args.n)]
    print(f"mode=stall opened={len(conns)}", flush=True)
    closed = set()
    end = time.monotonic() + args.wait
    while len(closed) < len(conns) and time.monotonic() < end:
        ready, _, _ = select.select([c for c in conns if c not in closed], [], [], 0.2)
        for c in ready:
            try:
                if not c.recv(4096):
                    closed.add(c)
            except ConnectionResetError:
                closed.add(c)
    print(f"mode=stall closed={len(closed)}", flush=True)
    hold(args, conns)


def mode_udp_echo(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((args.addr, args.port))
    end = time.monotonic() + args.max_hold
    s.settimeout(1)
    while time.monotonic() < end:
        try:
            data, peer = s.recvfrom(65536)
        except socket.timeout:
            continue
        s.sendto(data, peer)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hold", help="hold everything open while this file exists")
    p.add_argument("--max-hold", type=float, default=120, help="hold (or serve) at most this many seconds")
    p.add_argument("--wait", type=float, default=5, help="how long to wait for answers or closes")
    sub = p.add_subparsers(dest="mode", required=True)
    for name in ("tcp", "udp", "stall"):
        m = sub.add_parser(name)
        m.add_argument("addr")
        m.add_argument("port", type=int)
        m.add_argument("n", type=int)
    m = sub.add_parser("h2")
    m.add_argument("addr")
    m.add_argument("sni")
    m.add_argument("ca")
    m.add_argument("n", type=int)
    m = sub.add_parser("udp-echo")
    m.add_argument("addr")
    m.add_argument("port", type=int)
    args = p.parse_args()
    {"tcp": mode_tcp, "udp": mode_udp, "h2": mode_h2, "stall": mode_stall, "udp-echo": mode_udp_echo}[args.mode](args)


if __name__ == "__main__":
    main()
