"""Client of the External Python Server.

    from gateways.client import connect
    with connect("127.0.0.1", 25001, passphrase="secret") as gw:
        gw.add_to_class_path("/x/demo/PersonDemo.py")
        person = gw.new("PersonDemo.Person")
        person.name = "George"              # property set: one round trip
        person.displayPerson()              # method call: one round trip
        person.company.displayEmployer()    # chain: one round trip (see below)

``connect(host, port, passphrase=None, timeout=10.0, verifier=None)`` returns a Gateway, also a
context manager. ``verifier`` is the stored ``pbkdf2_sha256$...`` string (see
gateways.protocol.make_verifier) and replaces the passphrase without deriving the key again.
``timeout`` (seconds, None for none) bounds every wait for the server. A server whose handshake
slots are taken for the moment (its refusal says "too many unfinished handshakes", "too many
connections in handshake" or "handshake closed to make room") is tried again after a short
backoff (50 ms, doubling up to 0.5 s) until ``timeout`` has passed since connect() was called (10 s
when None); then the last refusal is raised as ProtocolError.

Values and references
    None, bool, int, float, str, bytes, list, tuple and dict (exactly these types, recursively)
    travel by value; tuples come back as tuples. Any other object, a subclass of those included,
    travels by reference: the receiver gets a Proxy, and the sender keeps the object in a
    per-connection table until the proxy is garbage-collected (the release rides on the next
    message) or the connection closes. Local objects and functions passed as arguments go the
    same way, so the server can call them back while the original call is in flight, nested to
    any depth.

Attribute access on a proxy (``p.attr``)
    * a method of the remote class: returns a callable without any traffic; calling it is one
      round trip;
    * an attribute that held a reference when the proxy was received (the server lists those
      with each reference): returns a LazyProxy without any traffic. Calling a method on it
      sends the attribute path and the call in one frame, so ``person.company.displayEmployer()``
      costs one round trip. Any other use of a LazyProxy (str, repr, ==, bool, len, iteration,
      indexing, setting an attribute, passing it as an argument) is one request that the server
      resolves along the path at that moment, so it always sees the current attribute and an
      AttributeError on the way surfaces there as RemoteError. ``resolve(x)`` materialises one
      (the value, or a plain Proxy) for identity tests such as ``resolve(p.company) is None``;
    * anything else: one eager round trip that returns the value (``person.name`` is a str) or,
      for a by-reference result, a Proxy.

Errors
    A remote exception raises RemoteError (``remote_type``, ``remote_message``,
    ``remote_traceback``); it is also an instance of the matching builtin exception when there is
    one (``except KeyError`` and ``hasattr`` work). AuthenticationError, ConnectionLost and
    GatewayTimeout all derive from GatewayError, as RemoteError does.

Threads
    A connection may be shared by threads. One lock covers a whole round trip and the thread
    that asked reads its own answer: no hand-off between threads, which keeps single-thread
    latency lowest; concurrent threads take turns (use one connection per thread for
    throughput). Callbacks from the server run on the thread waiting for the call that
    triggered them and may use the connection again (the lock is reentrant).
"""

from __future__ import annotations

import hmac
import os
import random
import socket
import time
from typing import Any

import msgpack

from gateways import protocol as P
from gateways.protocol import (
    AuthenticationError,
    ConnectionLost,
    GatewayError,
    GatewayTimeout,
    LazyProxy,
    ProtocolError,
    Proxy,
    RemoteError,
    resolve,
)

# Refusals that say the server's handshake slots are taken for now: another try may get in.
SLOTS_TAKEN = ("too many unfinished handshakes", "too many connections in handshake", "handshake closed to make room")
RETRY_FIRST_DELAY = 0.05
RETRY_MAX_DELAY = 0.5

__all__ = [
    "AuthenticationError",
    "ConnectionLost",
    "Gateway",
    "GatewayError",
    "GatewayTimeout",
    "LazyProxy",
    "ProtocolError",
    "Proxy",
    "RemoteError",
    "connect",
    "resolve",
]


class Gateway(P.Endpoint):
    """A connection to an External Python Server; see the module docstring."""

    def __init__(self, sock: socket.socket, hello: dict, max_frame: int) -> None:
        super().__init__(sock, max_frame)
        self.hello = hello

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_to_class_path(self, path_or_list: str | list) -> list:
        """Add module files, directories or dot-notation paths to the server's sys.path."""
        return self.request(P.OP_ADD_CLASS_PATH, path_or_list)

    def new(self, class_name: str, *args: Any, **kwargs: Any) -> Any:
        """Create ``module.Class`` (or ``pkg.module.Class``) on the server; returns its proxy."""
        return self.request(P.OP_NEW, class_name, list(args), kwargs or None)

    def invoke(self, target: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call a module function, a class's static or class method, or a method of a proxy."""
        return self.request(P.OP_INVOKE, target, name, list(args), kwargs or None)

    def get_static(self, class_name: str, attr: str) -> Any:
        return self.request(P.OP_GET_STATIC, class_name, attr)

    def set_static(self, class_name: str, attr: str, value: Any) -> None:
        self.request(P.OP_SET_STATIC, class_name, attr, value)

    def version(self) -> dict:
        """{"protocol", "python", "implementation", "pid", "executable"} of the server."""
        return self.request(P.OP_VERSION)

    def ping(self) -> bool:
        return self.request(P.OP_PING) == "pong"

    def stats(self) -> dict:
        """Frames this connection's server thread received and sent; for tests and diagnostics."""
        return self.request(P.OP_STATS)

    def shutdown(self) -> None:
        """Ask the server to stop (allowed when authenticated, or from loopback without a passphrase)."""
        self.request(P.OP_SHUTDOWN)
        self.close()

    def handlers(self) -> dict:
        # A client serves callbacks only; the server-side operations have no meaning here.
        return super().handlers()


class _SlotsTaken(ProtocolError):
    """A refusal worth another try (SLOTS_TAKEN); connect() raises it once its timeout is spent."""


def _handshake(sock: socket.socket, passphrase: str | None, verifier: str | None, keys: dict | None = None) -> dict:
    fs = P.FrameSocket(sock, P.HANDSHAKE_MAX_FRAME_BYTES)
    hello_frame = bytes(fs.recv())
    try:
        kind, hello = msgpack.unpackb(hello_frame, raw=False)
    except P.DECODE_ERRORS:
        raise ProtocolError("the peer is not an External Python Server") from None
    if kind == P.KIND_REFUSED:  # refused at once: too many connections, or no thread to serve one
        _raise_refused(hello)
    if kind != P.KIND_HELLO or type(hello) is not dict:
        raise ProtocolError("the peer is not an External Python Server")
    if hello.get("protocol") != P.PROTOCOL_VERSION:
        raise ProtocolError(f"server speaks protocol {hello.get('protocol')!r}, this client {P.PROTOCOL_VERSION}")
    auth: dict = {"protocol": P.PROTOCOL_VERSION}
    key = None
    if hello.get("auth"):
        if hello["auth"] != P.VERIFIER_PREFIX:
            raise AuthenticationError(f"unsupported authentication scheme {hello['auth']!r}")
        salt, iterations = hello.get("salt"), hello.get("iterations")
        if type(salt) is not bytes or type(iterations) is not int or not 0 < iterations <= P.MAX_ITERATIONS:
            raise ProtocolError("malformed authentication challenge")
        if verifier is not None:
            v_iter, v_salt, key = P.parse_verifier(verifier)
            if v_salt != salt or v_iter != iterations:
                raise AuthenticationError("the verifier does not belong to this server (salt or iterations differ)")
        elif passphrase is not None:
            # Derived once per connect(), not again for each try after a refusal.
            keys = {} if keys is None else keys
            key = keys.get((salt, iterations))
            if key is None:
                key = keys[salt, iterations] = P.derive_key(passphrase, salt, iterations)
        else:
            raise AuthenticationError("the server requires a passphrase")
        cnonce = os.urandom(32)
        auth.update(nonce=cnonce, mac=P.auth_mac(key, b"client", hello_frame, cnonce))
    elif passphrase is not None or verifier is not None:
        # The caller expects an authenticated server; one that asks for nothing cannot prove itself.
        raise AuthenticationError("the server does not use a passphrase but one was given")
    fs.send(msgpack.packb([P.KIND_AUTH, auth], use_bin_type=True))
    try:
        body = fs.recv()
    except ConnectionLost:
        raise AuthenticationError("the server closed the connection during the handshake") from None
    try:
        kind, answer = msgpack.unpackb(body, raw=False)
    except P.DECODE_ERRORS:
        raise ProtocolError("malformed handshake answer") from None
    if kind == P.KIND_REFUSED:
        _raise_refused(answer)
    if kind != P.KIND_WELCOME or type(answer) is not dict:
        raise ProtocolError("malformed handshake answer")
    if key is not None:
        mac = answer.get("mac")
        expected = P.auth_mac(key, b"server", hello_frame, auth["nonce"])
        if type(mac) is not bytes or not hmac.compare_digest(mac, expected):
            raise AuthenticationError("the server failed to prove that it knows the passphrase")
    return hello


def _raise_refused(answer: Any) -> None:
    text = str(answer.get("error", "refused")) if type(answer) is dict else "refused"
    if "authentication" in text:
        raise AuthenticationError(text)
    if text.startswith(SLOTS_TAKEN):
        raise _SlotsTaken(f"the server refused the connection: {text}")
    raise ProtocolError(f"the server refused the connection: {text}")


def connect(host: str, port: int, passphrase: str | None = None, timeout: float | None = 10.0,
            verifier: str | None = None, max_frame_bytes: int = P.DEFAULT_MAX_FRAME_BYTES) -> Gateway:
    """Open and authenticate a gateway connection; see the module docstring."""
    if passphrase is not None and verifier is not None:
        raise ValueError("give either passphrase or verifier, not both")
    deadline = time.monotonic() + (P.HANDSHAKE_TIMEOUT if timeout is None else timeout)
    delay = RETRY_FIRST_DELAY
    keys: dict = {}
    while True:
        try:
            return _connect_once(host, port, passphrase, timeout, verifier, max_frame_bytes, keys, deadline)
        except _SlotsTaken:
            pause = delay * random.uniform(0.5, 1.0)  # apart from other clients refused at the same moment
            if time.monotonic() + pause >= deadline:
                raise
            time.sleep(pause)
            delay = min(2 * delay, RETRY_MAX_DELAY)


def _connect_once(host: str, port: int, passphrase: str | None, timeout: float | None, verifier: str | None,
                  max_frame_bytes: int, keys: dict, deadline: float) -> Gateway:
    # A try after a refusal gets what is left of the timeout, so connect() as a whole keeps within it.
    first_timeout = None if timeout is None else max(0.001, min(timeout, deadline - time.monotonic()))
    try:
        sock = socket.create_connection((host, port), timeout=first_timeout)
    except socket.timeout:
        raise GatewayTimeout(f"timed out connecting to {host}:{port}") from None
    except OSError as exc:
        raise ConnectionLost(f"cannot connect to {host}:{port}: {exc}") from None
    try:
        P.tune_socket(sock)
        hello = _handshake(sock, passphrase, verifier, keys)
        P.set_recv_timeout(sock, timeout)
    except BaseException:
        sock.close()
        raise
    return Gateway(sock, hello, max_frame_bytes)
