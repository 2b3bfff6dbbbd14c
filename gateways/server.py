"""The External Python Server: ``python -m gateways.server --host H --port P``.

Runs on any CPython 3.9+ with only the project root on sys.path and msgpack installed; it never
imports Django or the portal. Options:

    --host H                 address to bind (default 127.0.0.1)
    --port P                 port to bind; 0 picks a free one (the readiness line names it)
    --log-file F             one line per connection opened/closed, authentication failure,
                             protocol error, failed request and unhandled error
    --passphrase-file F      file holding the passphrase or a pbkdf2_sha256 verifier
    --max-frame-bytes N      largest accepted frame (default 64 MiB)

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
import hmac
import importlib
import ipaddress
import logging
import os
import random
import selectors
import signal
import socket
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

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_MSGPACK = 3
EXIT_BIND = 4
EXIT_PASSPHRASE = 5

PASSPHRASE_ENV = "GATEWAY_PASSPHRASE"
log = logging.getLogger("gateways.server")


def _peer_text(addr: Any) -> str:
    try:
        host, port = addr[0], addr[1]
    except (TypeError, IndexError):
        return str(addr)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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
        return super().request(op, *args)

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
    def __init__(self, host: str, port: int, secret: tuple | None = None,
                 max_frame: int = P.DEFAULT_MAX_FRAME_BYTES if P is not None else 0) -> None:
        self.host = host
        self.port = port
        self.iterations, self.salt, self.key = secret if secret else (0, b"", None)
        self.max_frame = max_frame
        self.listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._conns: set = set()
        self._conns_lock = threading.Lock()

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
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r or self._stopping.is_set():
                        continue
                    try:
                        conn, addr = self.listener.accept()
                    except OSError:
                        continue
                    t = threading.Thread(target=self._serve_connection, args=(conn, addr),
                                         name=f"gateway-{_peer_text(addr)}", daemon=True)
                    t.start()
        finally:
            sel.close()
            self.listener.close()
            with self._conns_lock:
                conns = list(self._conns)
            for ep in conns:
                ep.close()

    # -- one connection ---------------------------------------------------------------------

    def _serve_connection(self, sock: socket.socket, addr: Any) -> None:
        peer = _peer_text(addr)
        log.info("connection opened peer=%s", peer)
        reason = "closed by peer"
        ep = None
        try:
            P.tune_socket(sock)
            ep = ServerEndpoint(self, sock, peer, _is_loopback(str(addr[0])))
            with self._conns_lock:
                self._conns.add(ep)
            if not self._handshake(ep):
                reason = "handshake refused"
                return
            self._loop(ep)
        except P.ConnectionLost as exc:
            reason = str(exc)
        except P.ProtocolError as exc:
            reason = "protocol error"
            log.warning("protocol error peer=%s: %s", peer, exc)
            if ep is not None:
                with contextlib.suppress(P.GatewayError):
                    ep.send_message([P.KIND_ERROR, 0, None, "ProtocolError", str(exc), ""])
        except P.GatewayTimeout as exc:
            reason = f"timeout: {exc}"
        except Exception as exc:
            reason = "unhandled error"
            log.exception("unhandled error peer=%s: %s", peer, exc.__class__.__name__)
        finally:
            if ep is not None:
                with self._conns_lock:
                    self._conns.discard(ep)
                ep.close()
            else:
                sock.close()
            log.info("connection closed peer=%s (%s)", peer, reason)

    def _handshake(self, ep: ServerEndpoint) -> bool:
        fs = ep.fs
        fs.max_frame = P.HANDSHAKE_MAX_FRAME_BYTES
        ep.sock.settimeout(P.HANDSHAKE_TIMEOUT)
        nonce = os.urandom(32)
        hello = P.server_info()
        del hello["executable"]
        hello["nonce"] = nonce
        if self.key is not None:
            hello.update(auth=P.VERIFIER_PREFIX, salt=self.salt, iterations=self.iterations)
        else:
            hello["auth"] = None
        hello_frame = P.msgpack.packb([P.KIND_HELLO, hello], use_bin_type=True)
        fs.send(hello_frame)
        body = fs.recv()
        try:
            msg = P.msgpack.unpackb(body, raw=False, ext_hook=_refuse_ext)
        except P.DECODE_ERRORS as exc:
            raise P.ProtocolError(f"undecodable handshake frame: {exc.__class__.__name__}") from None
        if type(msg) is not list or len(msg) != 2 or msg[0] != P.KIND_AUTH or type(msg[1]) is not dict:
            raise P.ProtocolError("expected an auth message")
        auth = msg[1]
        if auth.get("protocol") != P.PROTOCOL_VERSION:
            log.warning("protocol error peer=%s: unsupported protocol version %r", ep.peer, auth.get("protocol"))
            self._refuse(ep, f"unsupported protocol version {auth.get('protocol')!r}; "
                             f"this server speaks {P.PROTOCOL_VERSION}")
            return False
        welcome: dict = {"ok": True}
        if self.key is not None:
            cnonce, mac = auth.get("nonce"), auth.get("mac")
            expected = P.auth_mac(self.key, b"client", hello_frame, cnonce if type(cnonce) is bytes else b"")
            good = type(cnonce) is bytes and len(cnonce) == 32 and type(mac) is bytes
            # compare_digest runs even for malformed input so timing reveals nothing either way.
            if not (hmac.compare_digest(expected, mac if type(mac) is bytes else b"") and good):
                log.warning("authentication failed peer=%s", ep.peer)
                # Slows down guessing; only this connection's thread waits.
                time.sleep(random.uniform(0.5, 0.8))
                self._refuse(ep, "authentication failed")
                return False
            welcome["mac"] = P.auth_mac(self.key, b"server", hello_frame, cnonce)
        fs.send(P.msgpack.packb([P.KIND_WELCOME, welcome], use_bin_type=True))
        ep.sock.settimeout(None)
        fs.max_frame = self.max_frame
        return True

    @staticmethod
    def _refuse(ep: ServerEndpoint, text: str) -> None:
        try:
            ep.fs.send(P.msgpack.packb([P.KIND_REFUSED, {"error": text}], use_bin_type=True))
        except P.GatewayError:
            pass

    def _loop(self, ep: ServerEndpoint) -> None:
        recv, serve = ep.recv_message, ep.serve_one
        while True:
            msg = recv()
            if msg[0] == P.KIND_REQUEST:
                serve(msg)
                # The releases riding on a request take effect after it is served: an id that the
                # request names is resolved before it is dropped, as its arguments already were
                # (they are decoded on receipt).
                if msg[2]:
                    ep._release(msg[2])
                if ep.shutdown_requested:
                    self.stop()
            elif msg[0] not in (P.KIND_RESPONSE, P.KIND_ERROR):
                raise P.ProtocolError(f"unexpected message kind {msg[0]!r}")
            elif msg[2]:
                # A stray response (to a callback the client gave up on) is dropped, its releases kept.
                ep._release(msg[2])


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError("extension types are not allowed in the handshake")


# ---------------------------------------------------------------------------- command line


def _msgpack_missing_message() -> str:
    return (f"gateways.server: the msgpack package is not installed for {sys.executable}.\n"
            f"Install it with:\n    {sys.executable} -m pip install msgpack")


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
    return p


def main(argv: list | None = None) -> int:
    if P is None:
        print(_msgpack_missing_message(), file=sys.stderr, flush=True)
        return EXIT_NO_MSGPACK
    args = build_parser().parse_args(argv)
    if not 0 <= args.port <= 65535 or args.max_frame_bytes < 1024:
        print("gateways.server: --port must be 0..65535 and --max-frame-bytes at least 1024", file=sys.stderr)
        return EXIT_USAGE
    try:
        secret = _read_secret(args)
    except (OSError, ValueError) as exc:
        print(f"gateways.server: cannot use the passphrase: {exc}", file=sys.stderr)
        return EXIT_PASSPHRASE
    if args.log_file:
        handler: logging.Handler = logging.FileHandler(args.log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    else:
        log.addHandler(logging.NullHandler())
    log.propagate = False
    server = GatewayServer(args.host, args.port, secret, args.max_frame_bytes)
    try:
        host, port = server.bind()
    except OSError as exc:
        print(f"gateways.server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_BIND
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: server.stop())
    log.info("listening on %s:%s pid=%s python=%s auth=%s", host, port, os.getpid(),
             sys.version.split()[0], "on" if secret else "off")
    print(f"listening on {host}:{port}", flush=True)
    server.serve_forever()
    log.info("stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
