#!/usr/bin/env python3
"""upstream_app.py: the plain-HTTP app behind the site in the https end-to-end tests.

  GET  /            a page naming the app (and the test id given as argv[3])
  GET  /headers     the request's headers as JSON (to check X-Forwarded-* and identity)
  GET  /big         the file argv[4] (sent with sendfile), for download checksums
  POST /upload      the SHA-256 and length of the request body, as "sha256 length"
  GET  /ws          a WebSocket (RFC 6455) echo of text and binary messages
  any  /admin...    "admin area" (the site's path rules decide who gets here)

With APP_PATHS_LOG set in the environment, the request target of every request the app
receives is appended to that file, one per line, as received (for the path-rule checks).

Usage: upstream_app.py ADDRESS PORT TEST_ID [BIG_FILE]
"""
import base64
import hashlib
import http.server
import json
import os
import socket
import socketserver
import struct
import sys
import threading

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("upstream: %s %s\n" % (self.address_string(), fmt % args))

    def parse_request(self):
        ok = super().parse_request()
        if ok and PATHS_LOG:
            with PATHS_LOCK, open(PATHS_LOG, "a", encoding="latin-1") as f:
                f.write(self.path + "\n")
        return ok

    def reply(self, code, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/":
            self.reply(200, "<html><head><title>vault</title></head><body style='font-size:40px'>"
                       "<h1>vault: the private app behind the site (%s)</h1></body></html>\n" % TEST_ID,
                       "text/html")
        elif self.path == "/headers":
            self.reply(200, json.dumps({k.lower(): v for k, v in self.headers.items()}) + "\n",
                       "application/json")
        elif self.path == "/big" and BIG:
            size = os.path.getsize(BIG)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            self.wfile.flush()
            with open(BIG, "rb") as f:
                self.connection.sendfile(f)
        elif self.path == "/ws":
            self.websocket()
        elif self.path.startswith("/admin"):
            self.reply(200, "admin area\n")
        else:
            self.reply(404, "not found\n")

    def do_POST(self):
        if self.path != "/upload":
            self.reply(404, "not found\n")
            return
        h = hashlib.sha256()
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    h.update(chunk)
                    n += len(chunk)
                    left -= len(chunk)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
                left -= len(chunk)
        self.reply(200, "%s %d\n" % (h.hexdigest(), n))

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        if self.headers.get("Upgrade", "").lower() != "websocket" or not key:
            self.reply(400, "not a websocket upgrade\n")
            return
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode = head[0] & 0x0F
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytearray(self.rfile.read(length))
            for i in range(len(payload)):
                payload[i] ^= mask[i % 4]
            if opcode == 8:  # close: answer and end
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                self.close_connection = True
                return
            if opcode in (1, 2):
                out = bytes([0x80 | opcode])
                if len(payload) < 126:
                    out += bytes([len(payload)])
                elif len(payload) < 65536:
                    out += bytes([126]) + struct.pack("!H", len(payload))
                else:
                    out += bytes([127]) + struct.pack("!Q", len(payload))
                self.wfile.write(out + bytes(payload))
                self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET

    def server_bind(self):
        # HTTPServer.server_bind looks up the host's FQDN, which in a namespace whose resolver
        # is unreachable waits for DNS timeouts; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]


if __name__ == "__main__":
    ADDR, PORT, TEST_ID = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    BIG = sys.argv[4] if len(sys.argv) > 4 else ""
    PATHS_LOG = os.environ.get("APP_PATHS_LOG", "")
    PATHS_LOCK = threading.Lock()
    Server((ADDR, PORT), Handler).serve_forever()
