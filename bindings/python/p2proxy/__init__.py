"""p2proxy: join a p2proxy overlay from Python, in userspace (no TUN, no root).

    import p2proxy, ssl
    with p2proxy.Client(state_dir="/var/lib/myapp/p2proxy", server="ctl.example.com:443",
                        token=open("token").read().strip()) as client:
        sock = client.dial("vault.example.internal", 443)       # a connected socket.socket
        tls = ssl.create_default_context(cafile="ca.pem").wrap_socket(
            sock, server_hostname="vault.example.internal")

A program can also be a site and serve resources itself (their target "in-process"):

    with p2proxy.Site(state_dir="/var/lib/myapp/site") as site, site.listen(7070) as listener:
        sock, peer = listener.accept()          # peer.user, peer.roles: who, checked already
        sock.sendall(b"hello %s\\n" % peer.user.encode())

Connections are plain sockets (a socketpair end the library splices into the overlay), so
select, selectors and asyncio (loop.sock_connect is not needed: pass it to
asyncio.open_connection(sock=...)) work on it. Blocking calls release the GIL. Errors raise
p2proxy.Error (with .code, the p2proxy::Code number) or one of its subclasses.

The library is libp2proxy.so.0, found through P2PROXY_LIBRARY (a path), next to this package,
or the system's library path.
"""
import ctypes
import ctypes.util
import json
import os
import socket
import threading

__all__ = ["Client", "Site", "Listener", "Peer", "Server", "AdminError", "Error", "NotFound", "Unavailable", "Timeout", "InvalidArgument",
           "Cancelled", "AlreadyExists", "version"]

_ERR_LEN = 1024


class Error(Exception):
    """A libp2proxy call failed; .code is the status code (p2proxy.h), str() the message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class InvalidArgument(Error, ValueError):
    pass


class Timeout(Error, TimeoutError):
    pass


class NotFound(Error, LookupError):
    pass


class Unavailable(Error, ConnectionError):
    pass


class AdminError(Error):
    """An admin command was refused: .exit_code (1 refused, 2 usage), .out, and str() its error."""

    def __init__(self, exit_code, out, err):
        super().__init__(exit_code, err.strip())
        self.exit_code, self.out = exit_code, out


class Cancelled(Error):
    """The listener was closed, or its site stopped."""


class AlreadyExists(Error):
    pass


_BY_CODE = {1: Cancelled, 3: InvalidArgument, 4: Timeout, 5: NotFound, 6: AlreadyExists, 14: Unavailable}


def _load():
    candidates = []
    if os.environ.get("P2PROXY_LIBRARY"):
        candidates.append(os.environ["P2PROXY_LIBRARY"])
    here = os.path.dirname(os.path.abspath(__file__))
    candidates.append(os.path.join(here, "libp2proxy.so.0"))
    candidates.append("libp2proxy.so.0")
    found = ctypes.util.find_library("p2proxy")
    if found:
        candidates.append(found)
    errors = []
    for path in candidates:
        try:
            # CDLL (not PyDLL): every call releases the GIL while it runs.
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    raise ImportError("libp2proxy not found (set P2PROXY_LIBRARY to its path): " + "; ".join(errors))


_lib = _load()
_lib.p2proxy_version.restype = ctypes.c_char_p
_lib.p2proxy_client_start.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
_lib.p2proxy_client_dial.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint16, ctypes.c_int,
                                     ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_size_t]
_lib.p2proxy_client_dial_udp.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint16,
                                         ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_size_t]
_lib.p2proxy_client_resolve.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                        ctypes.c_char_p, ctypes.c_size_t]
_lib.p2proxy_client_status_json.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                                            ctypes.c_size_t]
_lib.p2proxy_client_stop.argtypes = [ctypes.c_void_p]
_lib.p2proxy_client_free.argtypes = [ctypes.c_void_p]
_lib.p2proxy_free.argtypes = [ctypes.c_void_p]
_lib.p2proxy_site_start.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
_lib.p2proxy_site_listen.argtypes = [ctypes.c_void_p, ctypes.c_uint16, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                                     ctypes.c_size_t]
_lib.p2proxy_site_status_json.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                                          ctypes.c_size_t]
_lib.p2proxy_site_stop.argtypes = [ctypes.c_void_p]
_lib.p2proxy_site_free.argtypes = [ctypes.c_void_p]
_lib.p2proxy_listener_accept.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                         ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
_lib.p2proxy_listener_fd.argtypes = [ctypes.c_void_p]
_lib.p2proxy_listener_close.argtypes = [ctypes.c_void_p]
_lib.p2proxy_listener_free.argtypes = [ctypes.c_void_p]
_lib.p2proxy_server_init.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
_lib.p2proxy_server_start.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                                      ctypes.c_size_t]
_lib.p2proxy_server_admin.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
                                      ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_void_p),
                                      ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t]
_lib.p2proxy_server_stop.argtypes = [ctypes.c_void_p]
_lib.p2proxy_server_free.argtypes = [ctypes.c_void_p]


def _check(rc, err):
    if rc != 0:
        raise _BY_CODE.get(rc, Error)(rc, err.value.decode("utf-8", "replace"))


class _Handle:
    """A library handle shared by threads. Each call holds it (`with handle as h:`); close()
    first wakes calls blocked in the library (|stop|), waits for every call in flight to return,
    and only then frees the handle, so no call ever runs on freed memory."""

    def __init__(self, ptr, stop, free, closed):
        self._ptr, self._stop, self._free, self._closed = ptr, stop, free, closed
        self._cv = threading.Condition()
        self._busy = 0
        self._closing = False

    def __enter__(self):
        with self._cv:
            if self._ptr is None or self._closing:
                raise self._closed()
            self._busy += 1
            return self._ptr

    def __exit__(self, *exc):
        with self._cv:
            self._busy -= 1
            self._cv.notify_all()

    def close(self):
        with self._cv:
            if self._ptr is None or self._closing:
                return
            self._closing = True
            ptr = self._ptr
        if self._stop is not None:
            self._stop(ptr)
        with self._cv:
            while self._busy:
                self._cv.wait()
            self._ptr = None
        self._free(ptr)


class _Object:
    """What every library object shares: `with` closes it, and so does garbage collection."""

    def close(self):
        self._h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        h = getattr(self, "_h", None)
        if h is not None:
            try:
                h.close()
            except Exception:
                pass


def _json_out(call, *args):
    out = ctypes.c_void_p()
    err = ctypes.create_string_buffer(_ERR_LEN)
    _check(call(*args, ctypes.byref(out), err, _ERR_LEN), err)
    try:
        return json.loads(ctypes.string_at(out).decode())
    finally:
        _lib.p2proxy_free(out)


def version():
    """The library's version, "MAJOR.MINOR.PATCH"."""
    return _lib.p2proxy_version().decode()


class Client(_Object):
    """A p2proxy client in this process (userspace). Keyword arguments are the fields of
    p2proxy::ClientOptions (client.h): state_dir (required), server, token, name, socks5,
    http_proxy, forwards, status_file, log_level, start_timeout_ms."""

    def __init__(self, **options):
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERR_LEN)
        _check(_lib.p2proxy_client_start(json.dumps(options).encode(), ctypes.byref(handle), err, _ERR_LEN), err)
        self._h = _Handle(handle, _lib.p2proxy_client_stop, _lib.p2proxy_client_free,
                          lambda: Error(9, "the client is closed"))

    def dial(self, host, port, timeout=15.0):
        """A connected socket.socket to host:port through the overlay."""
        if not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidArgument(3, "port: %r is not 1-65535" % (port,))
        timeout_ms = max(1, min(int(timeout * 1000), 2**31 - 1))
        fd = ctypes.c_int(-1)
        err = ctypes.create_string_buffer(_ERR_LEN)
        with self._h as h:
            _check(_lib.p2proxy_client_dial(h, host.encode(), port, timeout_ms, ctypes.byref(fd),
                                            err, _ERR_LEN), err)
        return socket.socket(fileno=fd.value)

    def dial_udp(self, host, port):
        """A UDP flow to host:port as a connected socket.socket (SOCK_SEQPACKET): send() one
        datagram, recv() one datagram back. Closing it ends the flow."""
        if not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidArgument(3, "port: %r is not 1-65535" % (port,))
        fd = ctypes.c_int(-1)
        err = ctypes.create_string_buffer(_ERR_LEN)
        with self._h as h:
            _check(_lib.p2proxy_client_dial_udp(h, host.encode(), port, ctypes.byref(fd), err, _ERR_LEN), err)
        return socket.socket(fileno=fd.value)

    def resolve(self, host):
        """The overlay address of a private name."""
        out = ctypes.create_string_buffer(64)
        err = ctypes.create_string_buffer(_ERR_LEN)
        with self._h as h:
            _check(_lib.p2proxy_client_resolve(h, host.encode(), out, 64, err, _ERR_LEN), err)
        return out.value.decode()

    def status(self):
        """The client's status as a dict (mode, server, peers, resources)."""
        with self._h as h:
            return _json_out(_lib.p2proxy_client_status_json, h)

    def close(self):
        """Stop the client and every connection it carries (after calls in flight return)."""
        self._h.close()


class Peer:
    """Who an accepted connection comes from: .resource, .user, .roles, .address, .port. For an
    https resource user and roles are empty: each request carries them in its X-P2proxy-User and
    X-P2proxy-Roles headers."""

    __slots__ = ("resource", "user", "roles", "address", "port")

    def __init__(self, resource, user, roles, address, port):
        self.resource, self.user, self.roles, self.address, self.port = resource, user, roles, address, port

    def __repr__(self):
        return "Peer(resource=%r, user=%r, roles=%r, address=%r, port=%r)" % (
            self.resource, self.user, self.roles, self.address, self.port)


class Listener(_Object):
    """The connections to a site's in-process resources on one port (Site.listen)."""

    def __init__(self, handle, port):
        self._h = _Handle(handle, _lib.p2proxy_listener_close, _lib.p2proxy_listener_free,
                          lambda: Cancelled(1, "the listener is closed"))
        self.port = port

    def accept(self, timeout=None):
        """(socket.socket, Peer) of the next connection; waits at most timeout seconds (None: no
        limit). Raises Timeout, or Cancelled once the listener or its site is closed."""
        timeout_ms = -1 if timeout is None else max(0, min(int(timeout * 1000), 2**31 - 1))
        fd = ctypes.c_int(-1)
        peer = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERR_LEN)
        with self._h as h:
            _check(_lib.p2proxy_listener_accept(h, timeout_ms, ctypes.byref(fd), ctypes.byref(peer), err,
                                                _ERR_LEN), err)
        try:
            p = json.loads(ctypes.string_at(peer).decode())
        finally:
            _lib.p2proxy_free(peer)
        return socket.socket(fileno=fd.value), Peer(p["resource"], p["user"], p["roles"], p["address"], p["port"])

    def fileno(self):
        """Readable while a connection waits (or once closed): for select, selectors and asyncio's
        loop.add_reader."""
        with self._h as h:
            return _lib.p2proxy_listener_fd(h)

    def close(self):
        """Stop taking connections; an accept() blocked in another thread raises Cancelled."""
        self._h.close()


class Site(_Object):
    """A p2proxy site in this process: it serves its resources whose target is in-process
    (`admin resource add NAME ... --site SITE --target in-process`) through listen(port).
    Keyword arguments are the fields of p2proxy::SiteOptions (site.h): state_dir (required),
    server, token, name, listen_port, audit_log, log_level, start_timeout_ms."""

    def __init__(self, **options):
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERR_LEN)
        _check(_lib.p2proxy_site_start(json.dumps(options).encode(), ctypes.byref(handle), err, _ERR_LEN), err)
        self._h = _Handle(handle, _lib.p2proxy_site_stop, _lib.p2proxy_site_free,
                          lambda: Error(9, "the site is closed"))

    def listen(self, port):
        """A Listener for the site's in-process resources on port (443 for an https resource, whose
        requests arrive as plain HTTP/1.1)."""
        if not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidArgument(3, "port: %r is not 1-65535" % (port,))
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERR_LEN)
        with self._h as h:
            _check(_lib.p2proxy_site_listen(h, port, ctypes.byref(handle), err, _ERR_LEN), err)
        return Listener(handle, port)

    def status(self):
        """The site's status as a dict (node_id, node_address, server, resources)."""
        with self._h as h:
            return _json_out(_lib.p2proxy_site_status_json, h)

    def close(self):
        """Stop the site; its listeners' accept() then raises Cancelled."""
        self._h.close()


def _take_string(ptr):
    try:
        return ctypes.string_at(ptr).decode() if ptr else ""
    finally:
        _lib.p2proxy_free(ptr)


class Server(_Object):
    """The p2proxy control server in this process. Keyword arguments are the fields of
    p2proxy::ServerOptions (server.h): state_dir (required), listen, public_address,
    wireguard_listen, wireguard_endpoint, zones, node_range, resource_range, admin_socket,
    log_level."""

    @staticmethod
    def init(**options):
        """Make a new state dir (CA, keys, database); returns the summary for people."""
        out = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERR_LEN)
        _check(_lib.p2proxy_server_init(json.dumps(options).encode(), ctypes.byref(out), err, _ERR_LEN), err)
        return _take_string(out)

    def __init__(self, **options):
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERR_LEN)
        _check(_lib.p2proxy_server_start(json.dumps(options).encode(), ctypes.byref(handle), err, _ERR_LEN), err)
        self._h = _Handle(handle, _lib.p2proxy_server_stop, _lib.p2proxy_server_free,
                          lambda: Error(9, "the server is closed"))

    def admin(self, *args, check=True):
        """Run an admin command (the words after `p2proxy-server admin`) and return its output.
        A refused command raises AdminError, unless check=False: then (exit_code, out, err)."""
        words = (ctypes.c_char_p * len(args))(*[str(a).encode() for a in args])
        code = ctypes.c_int(-1)
        out, errout = ctypes.c_void_p(), ctypes.c_void_p()
        err = ctypes.create_string_buffer(_ERR_LEN)
        with self._h as h:
            _check(_lib.p2proxy_server_admin(h, words, len(args), ctypes.byref(code), ctypes.byref(out),
                                             ctypes.byref(errout), err, _ERR_LEN), err)
        out_text, err_text = _take_string(out), _take_string(errout)
        if not check:
            return code.value, out_text, err_text
        if code.value != 0:
            raise AdminError(code.value, out_text, err_text)
        return out_text

    def close(self):
        """Stop serving (after calls in flight return)."""
        self._h.close()
