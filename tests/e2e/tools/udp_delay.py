#!/usr/bin/env python3
"""udp_delay.py LISTEN_PORT TARGET_IP TARGET_PORT DELAY_MS: a UDP delay line for tests.

Stands in for `tc qdisc ... netem delay` on kernels without sch_netem: every datagram that
arrives on LISTEN_PORT (nftables redirects a flow here) is sent to TARGET after DELAY_MS from
one socket per source, and every answer goes back to that source after DELAY_MS from the
listening socket (conntrack makes it look as if the target answered). One process, one thread.
"""
import heapq
import select
import socket
import sys
import time


def main():
    port, target, delay = int(sys.argv[1]), (sys.argv[2], int(sys.argv[3])), int(sys.argv[4]) / 1000.0
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("0.0.0.0", port))
    back = {}   # source -> socket towards the target
    owner = {}  # that socket -> source
    queue = []  # (due, seq, socket, data, address)
    seq = 0
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
        ready, _, _ = select.select([front] + list(owner), [], [], timeout)
        now = time.monotonic()
        for sock in ready:
            data, src = sock.recvfrom(65535)
            if sock is front:
                if src not in back:
                    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    back[src] = b
                    owner[b] = src
                heapq.heappush(queue, (now + delay, seq, back[src], data, target))
            else:
                heapq.heappush(queue, (now + delay, seq, front, data, owner[sock]))
            seq += 1
        while queue and queue[0][0] <= time.monotonic():
            _, _, sock, data, addr = heapq.heappop(queue)
            try:
                sock.sendto(data, addr)
            except OSError:
                pass


if __name__ == "__main__":
    main()
