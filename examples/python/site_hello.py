#!/usr/bin/env python3
"""site_hello.py: a Python program that is its own p2proxy site and serves a tcp resource from an
in-process handler, with asyncio: no LAN app, no host port, no root. Give it a resource whose
target is in-process:

    p2proxy-server admin resource add pyhello --domain pyhello.example.internal --kind tcp \\
        --port 7070 --site app2 --target in-process --allow user:alice
    site_hello.py STATE_DIR PORT [SERVER TOKEN]     (server and token: first start only)

Each connection (already allowed by the site's access check) gets an HTTP/1.0 answer that greets
the peer's user. Stops on SIGINT or SIGTERM.
"""
import asyncio
import signal
import sys

import p2proxy


async def handle(sock, peer):
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        body = ("hello %s (roles: %s) from a Python site: resource %s, you are %s:%d\n" % (
            peer.user, ",".join(peer.roles), peer.resource, peer.address, peer.port)).encode()
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        print("served:", body.decode().strip(), flush=True)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
        print("dropped a connection from %s: %r" % (peer.user, e), flush=True)
    finally:
        writer.close()


async def serve(listener):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The listener's fd is readable while a connection waits: asyncio wakes us for each.
    ready = asyncio.Event()
    loop.add_reader(listener.fileno(), ready.set)
    tasks = set()
    print("listening on port %d of the site's in-process resources" % listener.port, flush=True)
    while not stop.is_set():
        waiters = [asyncio.ensure_future(ready.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
        ready.clear()
        while not stop.is_set():
            try:
                sock, peer = listener.accept(timeout=0)
            except p2proxy.Timeout:
                break
            except p2proxy.Cancelled:
                stop.set()
                break
            task = asyncio.create_task(handle(sock, peer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    loop.remove_reader(listener.fileno())
    if tasks:
        await asyncio.wait(tasks, timeout=5)


def main():
    if len(sys.argv) not in (3, 5):
        print(__doc__, file=sys.stderr)
        return 2
    options = {"state_dir": sys.argv[1]}
    if len(sys.argv) == 5:
        options.update(server=sys.argv[3], token=sys.argv[4])
    with p2proxy.Site(**options) as site, site.listen(int(sys.argv[2])) as listener:
        asyncio.run(serve(listener))
    return 0


if __name__ == "__main__":
    sys.exit(main())
