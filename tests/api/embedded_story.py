#!/usr/bin/env python3
"""embedded_story.py: a whole deployment driven from Python through libp2proxy, on loopback, as
any user (no root, no TUN, no namespaces): a Server (init, start, admin commands), a Site in the
same process serving an in-process tcp resource and an in-process https resource, and a Client in
a child process (one userspace stack per process) that dials both. Checks the grants, the
identity each handler sees, a UDP flow (DialUdp) to a udp resource, a refused user, admin
refusals, and a clean stop."""
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

import p2proxy

CHILD = r'''
import json, ssl, sys, p2proxy
state, server, token, ca = sys.argv[1:5]
out = {}
with p2proxy.Client(state_dir=state, server=server, token=token) as c:
    s = c.dial("echo.example.internal", 7070, timeout=10)
    s.sendall(b"ping\n")
    out["echo"] = s.makefile().readline().strip()
    s.close()
    ctx = ssl.create_default_context(cafile=ca)
    with ctx.wrap_socket(c.dial("page.example.internal", 443, timeout=10), server_hostname="page.example.internal") as t:
        t.sendall(b"GET / HTTP/1.1\r\nHost: page.example.internal\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = t.recv(65536)
            if not b:
                break
            data += b
    out["page"] = data.decode(errors="replace")
    u = c.dial_udp("udp.example.internal", 9999)
    u.settimeout(10)
    got = []
    for i in range(3):
        u.send(b"datagram-%d" % i)
        got.append(u.recv(2048).decode())
    u.close()
    out["udp"] = got
    try:
        c.dial("secret.example.internal", 7070, timeout=5)
        out["secret"] = "dialed"
    except p2proxy.Error as e:
        out["secret"] = type(e).__name__
print(json.dumps(out))
'''


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(text):
    m = re.search(r"p2p1_[0-9a-f_]+", text)
    assert m, text
    return m.group(0)


def serve_echo(listener, seen):
    while True:
        try:
            sock, peer = listener.accept(timeout=30)
        except p2proxy.Cancelled:
            return
        with sock:
            line = sock.makefile("rb").readline()
            seen.append(peer)
            sock.sendall(b"%s from %s\n" % (line.strip(), peer.user.encode()))


def serve_page(listener, seen):
    while True:
        try:
            sock, peer = listener.accept(timeout=30)
        except p2proxy.Cancelled:
            return
        with sock:
            head = b""
            while b"\r\n\r\n" not in head:
                b = sock.recv(4096)
                if not b:
                    break
                head += b
            user = re.search(rb"(?im)^x-p2proxy-user: *(\S+)", head)
            body = b"page for %s\n" % (user.group(1) if user else b"nobody")
            seen.append(user.group(1).decode() if user else "")
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


def udp_echo(sock):
    while True:
        try:
            data, addr = sock.recvfrom(65536)
        except OSError:
            return
        sock.sendto(b"echo " + data, addr)


def main():
    tmp = tempfile.mkdtemp(prefix="p2proxy-story-")
    echo_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo_sock.bind(("127.0.0.1", 0))
    threading.Thread(target=udp_echo, args=(echo_sock,), daemon=True).start()
    ctl, wg = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    opts = dict(state_dir=tmp + "/server", listen="127.0.0.1:%d" % ctl, wireguard_listen="127.0.0.1:%d" % wg)
    summary = p2proxy.Server.init(public_address="127.0.0.1:%d" % ctl, **opts)
    print("init:", summary.splitlines()[0])
    try:
        p2proxy.Server.init(public_address="127.0.0.1:%d" % ctl, **opts)
        sys.exit("a second init over the same state dir was accepted")
    except p2proxy.Error as e:
        print("refused: second init:", e)
    with p2proxy.Server(**opts) as server:
        server.admin("user", "add", "alice")
        server.admin("user", "add", "bob")
        try:
            server.admin("user", "add", "alice")
            sys.exit("a duplicate user was accepted")
        except p2proxy.AdminError as e:
            assert e.exit_code == 1, e.exit_code
            print("refused: duplicate user:", e)
        code, _, err = server.admin("resource", "add", "x", "--kind", "udp", "--port", "53", "--site", "app",
                                    "--target", "in-process", check=False)
        assert code != 0, "a udp in-process resource was accepted"
        site_token = token(server.admin("token", "create", "site", "app"))
        device_token = token(server.admin("token", "create", "device", "--user", "alice"))
        with p2proxy.Site(state_dir=tmp + "/site", server="127.0.0.1:%d" % ctl, token=site_token) as site, \
                site.listen(7070) as echo, site.listen(443) as page:
            echo_seen, page_seen = [], []
            threads = [threading.Thread(target=serve_echo, args=(echo, echo_seen)),
                       threading.Thread(target=serve_page, args=(page, page_seen))]
            for t in threads:
                t.start()
            server.admin("resource", "add", "echo", "--domain", "echo.example.internal", "--kind", "tcp", "--port",
                         "7070", "--site", "app", "--target", "in-process", "--allow", "user:alice")
            server.admin("resource", "add", "page", "--domain", "page.example.internal", "--kind", "https",
                         "--site", "app", "--target", "in-process", "--allow", "user:alice")
            server.admin("resource", "add", "secret", "--domain", "secret.example.internal", "--kind", "tcp",
                         "--port", "7070", "--site", "app", "--target", "in-process", "--allow", "user:bob")
            server.admin("resource", "add", "udpecho", "--domain", "udp.example.internal", "--kind", "udp",
                         "--port", "9999", "--site", "app", "--target", "127.0.0.1:%d" % echo_sock.getsockname()[1],
                         "--allow", "user:alice")
            with open(tmp + "/ca.pem", "w") as f:
                f.write(server.admin("ca", "export"))
            status = site.status()
            names = {r["name"]: r for r in status["resources"]}
            # The site got the resources pushed (the admin command returns once stored).
            child = subprocess.run([sys.executable, "-c", CHILD, tmp + "/client", "127.0.0.1:%d" % ctl, device_token,
                                    tmp + "/ca.pem"], capture_output=True, text=True, timeout=120)
            assert child.returncode == 0, child.stderr
            out = __import__("json").loads(child.stdout.strip().splitlines()[-1])
            print("client:", out)
            assert out["echo"] == "ping from alice", out
            assert "page for alice" in out["page"] and out["page"].startswith("HTTP/1.1 200"), out
            assert out["secret"] == "NotFound", out
            assert out["udp"] == ["echo datagram-%d" % i for i in range(3)], out  # bob's resource is not even a name for alice
            assert [p.user for p in echo_seen] == ["alice"] and echo_seen[0].resource == "echo", echo_seen
            assert page_seen == ["alice"], page_seen
            listing = server.admin("site", "list")
            assert "app" in listing and "online" in listing, listing
            status = site.status()
            names = {r["name"]: r for r in status["resources"]}
            assert names["echo"]["in_process"] and names["echo"]["listening"], names
            print("site:", status["node_address"], sorted(names))
        for t in threads:
            t.join(10)
            assert not t.is_alive(), "a handler did not see its listener close"
    echo_sock.close()
    print("PASS: server, site and client through libp2proxy from Python")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
