"""The External Python Server: ``python -m gateways.server --host H --port P``.

Runs on any CPython 3.9+ with only the project root on sys.path and msgpack installed; it never
imports Django or the portal. Options:

    --host H                 address to bind (default 127.0.0.1)
    --port P                 port to bind; 0 picks a free one (the readiness line names it)
    --log-file F             one line per connection opened/closed, authentication failure,
                             protocol error, failed request and unhandled error; repeated
                             handshake failures from one address are summed up every 10 s
    --passphrase-file F      file holding the passphrase or a pbkdf2_sha256 verifier
    --max-frame-bytes N      largest accepted frame (default 64 MiB)
    --max-connections N      authenticated connections served at once (default 100)
    --max-handshakes N       connections still in their handshake at once (default 64; one
                             address may hold a quarter of them, and a new connection from an
                             address at its quarter closes its oldest stalled one, if any)
    --handshake-timeout S    seconds for the whole handshake (default 10)
    --idle-timeout S         close an authenticated connection that sends nothing for S seconds
                             while no call of its is running (default 3600; 0 never)

The passphrase (or verifier) may instead come from the environment variable GATEWAY_PASSPHRASE,
which is removed from os.environ at start; it is never accepted as an argument, so it cannot show
in ``ps``. The file wins when both are given.

Once bound the server prints exactly one line ``listening on H:P`` to stdout. SIGTERM, SIGINT or an
authorised shutdown request close the listener and exit with status 0.

Exit codes: 0 normal stop; 2 bad arguments; 3 msgpack is not installed for this interpreter;
4 the address cannot be bound; 5 the passphrase file cannot be read or the verifier is malformed.

Shutdown requests: with a passphrase every peer is authenticated and may stop the server; without
one only a loopback peer may.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hmac
import importlib
import ipaddress
import logging
import os
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from typing import Any

try:
    from gateways import protocol as P
except ImportError as _exc:  # pragma: no cover - exercised by a subprocess test under 3.9 without msgpack
    if getattr(_exc, "name", None) != "msgpack":
        raise
    P = None  # type: ignore[assignment]
from gateways.server_guard import (
    BurstLog,
    FailureLimiter,
    Handshake,
    OneLineFormatter,
    raise_file_limit,
)

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_MSGPACK = 3
EXIT_BIND = 4
EXIT_PASSPHRASE = 5

PASSPHRASE_ENV = "GATEWAY_PASSPHRASE"
DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_MAX_HANDSHAKES = 64
DEFAULT_HANDSHAKE_TIMEOUT = P.HANDSHAKE_TIMEOUT if P is not None else 10.0
DEFAULT_IDLE_TIMEOUT = 3600.0
# A handshake open this long is evicted when the table is full and a new connection arrives.
EVICT_AFTER = 1.0
BURST_WINDOW = 10.0
ACCEPT_PAUSE = 0.5
log = logging.getLogger("gateways.server")


def _is_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def resolve_name(name: Any) -> Any:
    """The object named ``module.attr`` or ``pkg.module.Class.attr``: longest importable module first."""
    if type(name) is not str or not name or not all(p.isidentifier() for p in name.split(".")):
        raise ValueError(f"not a dotted Python name: {name!r}")
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        modname = ".".join(parts[:i])
        try:
            obj = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            # Only "this prefix is not a module" means try a shorter one; a module that exists but
            # fails to import one of its own dependencies is the real error and must surface.
            missing = exc.name or ""
            if missing and (modname == missing or modname.startswith(missing + ".")):
                continue
            raise
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(
        f"cannot import {name!r}: no module {parts[0]!r} on the class path", name=parts[0]
    )


def add_to_class_path(paths: Any) -> list:
    """Accepts a module file, a directory, or the dot notation ``/x/demo.PersonDemo.py``."""
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise TypeError("add_to_class_path takes a path or a list of paths")
    added = []
    for raw in paths:
        path = os.path.abspath(os.path.expanduser(raw))
        if os.path.isdir(path):
            directory = path
        elif os.path.isfile(path) and path.endswith(".py") and "." not in os.path.basename(path)[:-3]:
            directory = os.path.dirname(path)
        else:
            # Dot notation: "/x/demo.PersonDemo.py" is module PersonDemo in package demo under /x.
            head, base = os.path.split(path)
            stem = base.removesuffix(".py")
            parts = stem.split(".")
            candidate = os.path.join(head, *parts) + ".py"
            if len(parts) > 1 and all(p.isidentifier() for p in parts) and os.path.isfile(candidate):
                directory = head
            elif os.path.isfile(path) and path.endswith(".py"):
                directory = os.path.dirname(path)
            else:
                raise FileNotFoundError(f"class path does not exist: {raw}")
        if directory not in sys.path:
            sys.path.append(directory)
        added.append(directory)
    importlib.invalidate_caches()
    return added


class ServerEndpoint(P.Endpoint if P is not None else object):  # type: ignore[misc]
    def __init__(self, server: GatewayServer, sock: socket.socket, peer: str, loopback: bool) -> None:
        super().__init__(sock, server.max_frame)
        self.server = server
        self.peer = peer
        self.loopback = loopback
        self.shutdown_requested = False
        self.serving_thread = threading.get_ident()
        self._callback_depth = 0

    def handlers(self) -> dict:
        h = super().handlers()
        h.update({
            P.OP_NEW: ServerEndpoint._op_new,
            P.OP_INVOKE: ServerEndpoint._op_invoke,
            P.OP_GET_STATIC: ServerEndpoint._op_get_static,
            P.OP_SET_STATIC: ServerEndpoint._op_set_static,
            P.OP_ADD_CLASS_PATH: ServerEndpoint._op_add_class_path,
            P.OP_VERSION: ServerEndpoint._op_version,
            P.OP_SHUTDOWN: ServerEndpoint._op_shutdown,
            P.OP_STATS: ServerEndpoint._op_stats,
        })
        return h

    def request(self, op: int, *args: Any) -> Any:
        # A client object may only be called back while its call is in flight, from the thread
        # serving it: any other thread would race that thread's reads on the socket.
        if threading.get_ident() != self.serving_thread:
            raise P.GatewayError("client objects can only be called from the thread serving the client's call")
        idle = self.server.idle_timeout
        if not idle:
            return super().request(op, *args)
        # Waiting for the client's answer to a callback is not idleness: no idle timeout meanwhile.
        self._callback_depth += 1
        if self._callback_depth == 1:
            P.set_wait_timeout(self.sock, 0)
        try:
            return super().request(op, *args)
        finally:
            self._callback_depth -= 1
            if self._callback_depth == 0 and not self.closed:
                with contextlib.suppress(OSError):
                    P.set_wait_timeout(self.sock, idle)

    def on_request_error(self, msg: list, exc: BaseException) -> None:
        op = msg[3] if len(msg) > 3 else None
        name = P.OP_NAMES.get(op, repr(op)) if isinstance(op, int) else repr(op)
        log.info("request error peer=%s op=%s: %s: %s", self.peer, name, P.exception_type_name(exc),
                 str(exc)[:500])

    @staticmethod
    def _args(msg: list, i: int) -> tuple:
        args, kwargs = msg[i], msg[i + 1]
        if type(args) is not list or (kwargs is not None and type(kwargs) is not dict):
            raise TypeError("malformed arguments")
        return args, kwargs or {}

    def _op_new(self, msg: list) -> Any:
        cls = resolve_name(msg[4])
        if not isinstance(cls, type):
            raise TypeError(f"{msg[4]} is not a class")
        args, kwargs = self._args(msg, 5)
        return cls(*args, **kwargs)

    def _op_invoke(self, msg: list) -> Any:
        target = msg[4]
        obj = resolve_name(target) if type(target) is str else target
        args, kwargs = self._args(msg, 6)
        return getattr(obj, msg[5])(*args, **kwargs)

    def _op_get_static(self, msg: list) -> Any:
        return getattr(resolve_name(msg[4]), msg[5])

    def _op_set_static(self, msg: list) -> None:
        setattr(resolve_name(msg[4]), msg[5], msg[6])

    def _op_add_class_path(self, msg: list) -> list:
        return add_to_class_path(msg[4])

    def _op_version(self, msg: list) -> dict:
        return P.server_info()

    def _op_shutdown(self, msg: list) -> str:
        if not (self.server.key is not None or self.loopback):
            raise PermissionError("shutdown is only allowed from a loopback peer when the server has no passphrase")
        self.shutdown_requested = True
        log.info("shutdown requested peer=%s", self.peer)
        return "shutting down"

    def _op_stats(self, msg: list) -> dict:
        return {"frames_in": self.fs.frames_in, "frames_out": self.fs.frames_out, "objects": len(self.objects)}


class GatewayServer:
    """The listener: handshakes in its own thread, one thread per authenticated connection.

    Hand-written around ``selectors`` rather than asyncio or socketserver: the hot path after the
    handshake is a blocking thread per connection (the fastest round trip in CPython), and the
    handshake phase needs per-connection deadlines, delays and caps that neither offers.
    """

    def __init__(self, host: str, port: int, secret: tuple | None = None,
                 max_frame: int = P.DEFAULT_MAX_FRAME_BYTES if P is not None else 0,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, max_handshakes: int = DEFAULT_MAX_HANDSHAKES,
                 handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.iterations, self.salt, self.key = secret if secret else (0, b"", None)
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.max_handshakes = max_handshakes
        # One address may hold a quarter of the handshake slots, so it alone cannot fill them.
        self.max_handshakes_per_peer = max(1, max_handshakes // 4)
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._conns: set = set()  # authenticated connections, each served by its own thread
        self._conns_lock = threading.Lock()
        self._handshakes: dict = {}  # socket -> Handshake, touched by the listener's thread only
        self._pending_per_peer: dict = {}
        self._sel: selectors.BaseSelector | None = None
        self._accept_paused_until = 0.0
        self.limiter = FailureLimiter()
        self.bursts = BurstLog(BURST_WINDOW)
        hello = P.server_info() if P is not None else {}
        hello.pop("executable", None)
        if self.key is not None:
            hello.update(auth=P.VERIFIER_PREFIX, salt=self.salt, iterations=self.iterations)
        else:
            hello["auth"] = None
        self._hello = hello
        # One packer reused for every frame the listener's thread sends: no buffer to allocate per
        # connection, which matters when memory is what ran out.
        self._packer = P.msgpack.Packer(use_bin_type=True) if P is not None else None

    def bind(self) -> tuple:
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        self.listener = sock
        return sock.getsockname()[:2]

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def serve_forever(self) -> None:
        assert self.listener is not None
        self.listener.setblocking(False)
        sel = self._sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        next_flush = time.monotonic() + BURST_WINDOW
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                for key, _ in sel.select(self._next_due(now, next_flush) - now):
                    hs = key.data
                    if hs is not None:
                        self._guarded(self._on_readable, hs)
                    elif key.fileobj is self.listener:
                        self._accept_some()
                    else:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(64)
                now = time.monotonic()
                self._on_time(now)
                if now >= next_flush:
                    self.bursts.flush()
                    self.limiter.prune(now)
                    next_flush = now + BURST_WINDOW
        finally:
            sel.close()
            self.listener.close()
            for hs in list(self._handshakes.values()):
                hs.sock.close()
            self._handshakes.clear()
            with self._conns_lock:
                conns = list(self._conns)
            for ep in conns:
                ep.close()
            self.bursts.flush()

    def _guarded(self, fn: Any, hs: Handshake) -> None:
        # Whatever goes wrong with one handshake (even MemoryError) closes that one, not the listener.
        try:
            fn(hs)
        except Exception as exc:
            self._drop(hs)
            self.bursts.note("failed handshakes", hs.key, "server error",
                             f"handshake error peer={hs.peer}: {exc.__class__.__name__}: {exc}")

    def _next_due(self, now: float, next_flush: float) -> float:
        due = next_flush
        if self._accept_paused_until:
            due = min(due, self._accept_paused_until)
        for hs in self._handshakes.values():
            due = min(due, hs.refuse_at or hs.deadline)
        return max(due, now)

    def _on_time(self, now: float) -> None:
        if self._accept_paused_until and now >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._sel.register(self.listener, selectors.EVENT_READ)
        for hs in [h for h in self._handshakes.values() if (h.refuse_at or h.deadline) <= now]:
            if hs.refuse_at:
                self._refuse(hs.sock, hs.refusal)
                self._drop(hs)
            else:
                text = f"handshake not completed within {self.handshake_timeout:g} s"
                self.bursts.note("failed handshakes", hs.key, "timed out", f"{text} peer={hs.peer}")
                self._refuse(hs.sock, text)
                self._drop(hs)

    # -- accepting ------------------------------------------------------------------------------

    def _accept_some(self) -> None:
        for _ in range(64):
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # The pending connection stays in the backlog; accepting again at once would spin.
                    self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE
                    self._sel.unregister(self.listener)
                    why = exc.strerror or str(exc)
                    self.bursts.note("accept failures", "", why,
                                     f"cannot accept connections: {why}; retrying in {ACCEPT_PAUSE:g} s")
                return
            try:
                self._admit(sock, addr)
            except Exception as exc:
                sock.close()
                self.bursts.note("failed handshakes", "", "server error",
                                 f"cannot admit a connection: {exc.__class__.__name__}: {exc}")

    def _admit(self, sock: socket.socket, addr: Any) -> None:
        now = time.monotonic()
        hs = Handshake(sock, addr, now, now + self.handshake_timeout)
        sock.setblocking(False)
        P.tune_socket(sock)
        with self._conns_lock:
            n_conns = len(self._conns)
        refusal = ""
        if n_conns >= self.max_connections:
            refusal = (f"too many connections: this server serves at most {self.max_connections} at once "
                       f"(--max-connections); try again later")
        elif (self._pending_per_peer.get(hs.key, 0) >= self.max_handshakes_per_peer
              and not self._evict_own(hs.key, now)):
            refusal = f"too many unfinished handshakes from {hs.key}; finish or close them first"
        elif len(self._handshakes) >= self.max_handshakes and not self._evict_for(hs.key, now):
            refusal = "too many connections in handshake; try again later"
        if refusal:
            self.bursts.note("refused connections", hs.key, refusal.split(";")[0],
                             f"connection refused peer={hs.peer}: {refusal}")
            self._refuse(sock, refusal)
            sock.close()
            return
        hello = dict(self._hello, nonce=os.urandom(32))
        hs.hello_frame = self._packer.pack([P.KIND_HELLO, hello])
        if not self._send_now(sock, hs.hello_frame):
            sock.close()
            return
        self._handshakes[sock] = hs
        self._pending_per_peer[hs.key] = self._pending_per_peer.get(hs.key, 0) + 1
        self._sel.register(sock, selectors.EVENT_READ, hs)

    def _evict_for(self, key: str, now: float) -> bool:
        """Make room in a full handshake table by closing the oldest handshake that is already
        refused, or open for EVICT_AFTER seconds (a client that knows what to say answers in
        milliseconds, a peer holding a slot does not), or, for an address that authenticated
        before, the oldest one from an address that never did."""
        trusted = self.limiter.trusted
        known = key in trusted
        candidates = [h for h in self._handshakes.values()
                      if h.refuse_at or now - h.opened >= EVICT_AFTER or (known and h.key not in trusted)]
        if not candidates:
            return False
        self._close_to_make_room(min(candidates, key=lambda h: h.opened))
        return True

    def _evict_own(self, key: str, now: float) -> bool:
        """Make room for a new connection from an address at its cap by closing that address's oldest
        stalled handshake: already refused, or open for EVICT_AFTER seconds without its auth frame
        (bytes trickling in are no progress, or dripping would keep a slot). So idle sockets that
        another program of the same host holds cannot lock a client of that host out, while the
        address's count, and the server's, stay where they are. A handshake younger than that is
        kept: a client in the middle of its own is not closed by the next connection."""
        # The table is in the order of admission, so the first match is the address's oldest.
        victim = next((h for h in self._handshakes.values()
                       if h.key == key and (h.refuse_at or now - h.opened >= EVICT_AFTER)), None)
        if victim is None:
            return False
        self._close_to_make_room(victim)
        return True

    def _close_to_make_room(self, victim: Handshake) -> None:
        if victim.refuse_at:
            self._refuse(victim.sock, victim.refusal)
        else:
            self.bursts.note("failed handshakes", victim.key, "closed to make room",
                             f"handshake closed to make room for a new connection peer={victim.peer}")
            self._refuse(victim.sock, "handshake closed to make room for other connections")
        self._drop(victim)

    def _drop(self, hs: Handshake) -> None:
        if self._handshakes.pop(hs.sock, None) is not None:
            left = self._pending_per_peer.get(hs.key, 1) - 1
            if left:
                self._pending_per_peer[hs.key] = left
            else:
                self._pending_per_peer.pop(hs.key, None)
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(hs.sock)
        hs.sock.close()

    @staticmethod
    def _send_now(sock: socket.socket, frame: bytes) -> bool:
        """Send a small frame on a non-blocking socket; a fresh socket's buffer always has room."""
        data = P.frame_bytes(frame)
        try:
            return sock.send(data) == len(data)
        except OSError:
            return False

    def _refuse(self, sock: socket.socket, text: str) -> None:
        self._send_now(sock, self._packer.pack([P.KIND_REFUSED, {"error": text}]))

    # -- the handshake --------------------------------------------------------------------------

    def _on_readable(self, hs: Handshake) -> None:
        try:
            data = hs.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(hs)  # gone before the end of the handshake (a port check, a client giving up)
            return
        hs.buf += data
        if len(hs.buf) < 4:
            return
        (n,) = struct.unpack_from("!I", hs.buf)
        try:
            if n > P.HANDSHAKE_MAX_FRAME_BYTES:
                raise P.ProtocolError(f"frame of {n} bytes exceeds the limit of {P.HANDSHAKE_MAX_FRAME_BYTES} "
                                      f"bytes before authentication")
            if len(hs.buf) < 4 + n:
                return
            body, rest = bytes(hs.buf[4:4 + n]), bytes(hs.buf[4 + n:])
            self._check_auth(hs, body, rest)
        except P.ProtocolError as exc:
            self.bursts.note("failed handshakes", hs.key, "protocol error", f"protocol error peer={hs.peer}: {exc}")
            self._send_now(hs.sock, self._packer.pack([P.KIND_ERROR, 0, None, "ProtocolError", str(exc), ""]))
            self._drop(hs)

    def _check_auth(self, hs: Handshake, body: bytes, rest: bytes) -> None:
        try:
            msg = P.msgpack.unpackb(body, raw=False, ext_hook=_refuse_ext)
        except P.DECODE_ERRORS as exc:
            raise P.ProtocolError(f"undecodable handshake frame: {exc.__class__.__name__}") from None
        if type(msg) is not list or len(msg) != 2 or msg[0] != P.KIND_AUTH or type(msg[1]) is not dict:
            raise P.ProtocolError("expected an auth message")
        auth = msg[1]
        if auth.get("protocol") != P.PROTOCOL_VERSION:
            text = (f"unsupported protocol version {auth.get('protocol')!r}; "
                    f"this server speaks {P.PROTOCOL_VERSION}")
            self.bursts.note("failed handshakes", hs.key, "unsupported protocol",
                             f"protocol error peer={hs.peer}: {text}")
            self._refuse(hs.sock, text)
            self._drop(hs)
            return
        welcome: dict = {"ok": True}
        if self.key is not None:
            now = time.monotonic()
            refusal = self.limiter.refusal(hs.key, now)
            if refusal:
                self.bursts.note("failed handshakes", hs.key, "refused by the rate limit",
                                 f"{refusal.split(';')[0]} peer={hs.peer}")
                self._refuse(hs.sock, refusal)
                self._drop(hs)
                return
            cnonce, mac = auth.get("nonce"), auth.get("mac")
            expected = P.auth_mac(self.key, b"client", hs.hello_frame, cnonce if type(cnonce) is bytes else b"")
            good = type(cnonce) is bytes and len(cnonce) == 32 and type(mac) is bytes
            # compare_digest runs even for malformed input so timing reveals nothing either way.
            if not (hmac.compare_digest(expected, mac if type(mac) is bytes else b"") and good):
                self.limiter.failed(hs.key, now)
                self.bursts.note("failed handshakes", hs.key, "authentication failed",
                                 f"authentication failed peer={hs.peer}")
                # Answered after a delay, without holding a thread: the slot stays taken meanwhile.
                hs.refuse_at = now + random.uniform(0.5, 0.8)
                hs.refusal = "authentication failed"
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(hs.sock)  # nothing it sends now matters
                return
            welcome["mac"] = P.auth_mac(self.key, b"server", hs.hello_frame, cnonce)
        self.limiter.succeeded(hs.key)
        self._start_connection(hs, self._packer.pack([P.KIND_WELCOME, welcome]), rest)

    def _start_connection(self, hs: Handshake, welcome_frame: bytes, rest: bytes) -> None:
        sock = hs.sock
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(sock)
        with self._conns_lock:
            full = len(self._conns) >= self.max_connections
        if full:
            text = (f"too many connections: this server serves at most {self.max_connections} at once "
                    f"(--max-connections); try again later")
            self.bursts.note("refused connections", hs.key, "too many connections",
                             f"connection refused peer={hs.peer}: {text}")
            self._refuse(sock, text)
            self._drop(hs)
            return
        try:
            ep = ServerEndpoint(self, sock, hs.peer, _is_loopback(str(hs.addr[0])))
            if rest:
                ep.fs.prime(rest)
            t = threading.Thread(target=self._serve_connection, args=(ep, welcome_frame),
                                 name=f"gateway-{hs.peer}", daemon=True)
            with self._conns_lock:
                self._conns.add(ep)
            try:
                t.start()
            except BaseException:
                with self._conns_lock:
                    self._conns.discard(ep)
                raise
        except (RuntimeError, MemoryError) as exc:
            # "can't start new thread": out of threads or memory. Refuse this one, keep serving.
            why = f"{exc.__class__.__name__}: {exc}"
            self.bursts.note("connections refused for want of a thread or memory", "", why,
                             f"cannot start a thread for a connection: {exc}; refusing connections "
                             f"until the server can start threads again")
            self._refuse(sock, "the server cannot take more connections now (it cannot start a thread); "
                               "try again later")
            self._drop(hs)
            return
        # Handed over: the connection's thread owns the socket now.
        self._handshakes.pop(sock, None)
        left = self._pending_per_peer.get(hs.key, 1) - 1
        if left:
            self._pending_per_peer[hs.key] = left
        else:
            self._pending_per_peer.pop(hs.key, None)

    # -- one authenticated connection -----------------------------------------------------------

    def _serve_connection(self, ep: ServerEndpoint, welcome_frame: bytes) -> None:
        ep.serving_thread = threading.get_ident()
        peer = ep.peer
        reason = "closed by peer"
        try:
            ep.sock.setblocking(True)
            if self.idle_timeout:
                P.set_recv_timeout(ep.sock, self.idle_timeout)
            ep.fs.send(welcome_frame)
            log.info("connection opened peer=%s", peer)
            self._loop(ep)
        except P.ConnectionLost as exc:
            reason = str(exc)
        except P.ProtocolError as exc:
            reason = "protocol error"
            log.warning("protocol error peer=%s: %s", peer, exc)
            with contextlib.suppress(P.GatewayError):
                ep.send_message([P.KIND_ERROR, 0, None, "ProtocolError", str(exc), ""])
        except P.GatewayTimeout as exc:
            if str(exc) == P.RECV_TIMEOUT_TEXT:
                reason = f"idle for {self.idle_timeout:g} s (--idle-timeout)"
                with contextlib.suppress(P.GatewayError):
                    ep.send_message([P.KIND_ERROR, 0, None, "GatewayTimeout",
                                     f"connection closed by the server after {self.idle_timeout:g} s idle", ""])
            else:
                reason = f"timeout: {exc}"
        except Exception as exc:
            reason = "unhandled error"
            log.exception("unhandled error peer=%s: %s", peer, exc.__class__.__name__)
        finally:
            with self._conns_lock:
                self._conns.discard(ep)
            ep.close()
            log.info("connection closed peer=%s (%s)", peer, reason)

    def _loop(self, ep: ServerEndpoint) -> None:
        # Looked up once per connection, not once per frame.
        recv, serve, release, check_releases = ep.recv_message, ep.serve_one, ep._release, ep._check_releases
        request, response, error = P.KIND_REQUEST, P.KIND_RESPONSE, P.KIND_ERROR
        while True:
            msg = recv()
            kind, releases = msg[0], msg[2]
            if kind == request:
                if releases:
                    check_releases(releases)  # a malformed message is refused whole, before it is served
                serve(msg)
                # The releases riding on a request take effect after it is served: an id that the
                # request names is resolved before it is dropped, as its arguments already were
                # (they are decoded on receipt).
                if releases:
                    release(releases)
                if ep.shutdown_requested:
                    self.stop()
            elif kind != response and kind != error:
                raise P.ProtocolError(f"unexpected message kind {kind!r}")
            elif releases:
                # A stray response (to a callback the client gave up on) is dropped, its releases kept.
                release(releases)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError("extension types are not allowed in the handshake")


# ---------------------------------------------------------------------------- command line


def _msgpack_missing_message() -> str:
    import sysconfig

    python = sys.executable
    # A distribution's own Python (PEP 668: Debian 12's /usr/bin/python3) refuses pip's installs
    # with "externally-managed-environment"; a virtualenv made from it does not.
    marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
    if sys.prefix == getattr(sys, "base_prefix", sys.prefix) and os.path.exists(marker):
        return (f"gateways.server: the msgpack package is not installed for {python}, the distribution's own "
                "Python, which pip may not install into (externally-managed-environment).\n"
                "Install the distribution's package (Debian and Ubuntu):\n    apt-get install python3-msgpack\n"
                f"or make a virtualenv and run the server with its interpreter:\n    {python} -m venv "
                "/opt/python-venv && /opt/python-venv/bin/pip install msgpack")
    return (f"gateways.server: the msgpack package is not installed for {python}.\n"
            f"Install it with:\n    {python} -m pip install msgpack")


def _read_secret(args: argparse.Namespace) -> tuple | None:
    env_value = os.environ.pop(PASSPHRASE_ENV, None)
    if args.passphrase_file:
        with open(args.passphrase_file, encoding="utf-8") as f:
            value: str | None = f.read().rstrip("\r\n")
    else:
        value = env_value
    if not value:
        return None
    if P.is_verifier(value):
        return P.parse_verifier(value)
    return P.parse_verifier(P.make_verifier(value))


def build_parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: "--passphrase X" must not be taken as --passphrase-file, nor a secret land in argv.
    p = argparse.ArgumentParser(prog="python -m gateways.server", description="External Python Server",
                                allow_abbrev=False)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log-file")
    p.add_argument("--passphrase-file")
    p.add_argument("--max-frame-bytes", type=int,
                   default=P.DEFAULT_MAX_FRAME_BYTES if P is not None else 64 * 1024 * 1024)
    p.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS)
    p.add_argument("--max-handshakes", type=int, default=DEFAULT_MAX_HANDSHAKES)
    p.add_argument("--handshake-timeout", type=float, default=DEFAULT_HANDSHAKE_TIMEOUT)
    p.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
    return p


def _usage_error(args: argparse.Namespace) -> str | None:
    if not 0 <= args.port <= 65535:
        return f"--port {args.port} is out of range: give 0 (any free port) to 65535"
    if args.max_frame_bytes < 1024:
        return f"--max-frame-bytes {args.max_frame_bytes} is too small: give at least 1024"
    if not 1 <= args.max_connections <= 100_000:
        return f"--max-connections {args.max_connections} is out of range: give 1 to 100000"
    if not 1 <= args.max_handshakes <= 100_000:
        return f"--max-handshakes {args.max_handshakes} is out of range: give 1 to 100000"
    if not 0.1 <= args.handshake_timeout <= 3600:  # NaN fails every comparison, so it is refused too
        return f"--handshake-timeout {args.handshake_timeout} is out of range: give 0.1 to 3600 seconds"
    if not (args.idle_timeout == 0 or 0.1 <= args.idle_timeout <= 30 * 86400):
        return f"--idle-timeout {args.idle_timeout} is out of range: give 0 (never) or 0.1 to 2592000 seconds"
    return None


def _same_file(stream: Any, path: str) -> bool:
    try:
        a, b = os.fstat(stream.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def main(argv: list | None = None) -> int:
    if P is None:
        print(_msgpack_missing_message(), file=sys.stderr, flush=True)
        return EXIT_NO_MSGPACK
    args = build_parser().parse_args(argv)
    problem = _usage_error(args)
    if problem:
        print(f"gateways.server: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        secret = _read_secret(args)
    except (OSError, ValueError) as exc:
        print(f"gateways.server: cannot use the passphrase: {exc}", file=sys.stderr)
        return EXIT_PASSPHRASE
    if args.log_file == "-":
        # Managed by the portal: its keeper opened the log file safely (no symlinks, regular file
        # only, inside the allowed folders) and gave it to us as stdout and stderr, so the server
        # never opens a path of its own that could have been swapped since that check.
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    elif args.log_file:
        handler = logging.FileHandler(args.log_file, encoding="utf-8")
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    else:
        log.addHandler(logging.NullHandler())
    log.propagate = False
    raise_file_limit(args.max_connections + args.max_handshakes + 64)
    server = GatewayServer(args.host, args.port, secret, args.max_frame_bytes, max_connections=args.max_connections,
                           max_handshakes=args.max_handshakes, handshake_timeout=args.handshake_timeout,
                           idle_timeout=args.idle_timeout)
    try:
        host, port = server.bind()
    except OSError as exc:
        print(f"gateways.server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_BIND
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: server.stop())
    details = (f"pid={os.getpid()} python={sys.version.split()[0]} auth={'on' if secret else 'off'} "
               f"max-connections={args.max_connections} max-handshakes={args.max_handshakes} "
               f"handshake-timeout={args.handshake_timeout:g} idle-timeout={args.idle_timeout:g}")
    # The readiness line below is the log's "listening on" line when stdout is the log file too
    # (as when the portal runs the server): say it once.
    print(f"listening on {host}:{port}", flush=True)
    if args.log_file == "-" or (args.log_file and _same_file(sys.stdout, args.log_file)):
        log.info("started %s", details)
    else:
        log.info("listening on %s:%s %s", host, port, details)
    server.serve_forever()
    log.info("stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
