"""Wire protocol of the External Python Server, shared by the server and the client.

Everything here runs on any CPython 3.9+ with only msgpack installed; nothing imports Django or
the portal. The full description (frames, handshake, object table, pipelining, limits) lives in
docs/gateway-protocol.md; the comments here say why the code is shaped the way it is.

Frame: a 4-byte big-endian unsigned length, then that many bytes of one msgpack value.
Messages (msgpack arrays):
    request   [0, req_id, releases, op, *args]
    response  [1, req_id, releases, value]
    error     [2, req_id, releases, type_name, message, traceback_text]
    hello     [10, {...}]   server -> client, first frame
    auth      [11, {...}]   client -> server
    welcome   [12, {...}]   server -> client, handshake accepted
    refused   [13, {...}]   server -> client, handshake refused, then close
``releases`` is None or a list of object ids the sender no longer references (see Endpoint).
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import hmac
import inspect
import itertools
import operator
import os
import platform
import socket
import struct
import sys
import threading
import traceback
import types
from collections.abc import Callable
from typing import Any

import msgpack

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
# Before authentication only the tiny handshake frames are legal: an unauthenticated peer must
# not be able to make the server buffer megabytes by announcing a large frame.
HANDSHAKE_MAX_FRAME_BYTES = 64 * 1024
HANDSHAKE_TIMEOUT = 10.0  # the whole handshake; the server's --handshake-timeout default
DEFAULT_ITERATIONS = 200_000
# A hostile server could announce absurd PBKDF2 iterations to burn the client's CPU.
MAX_ITERATIONS = 10_000_000
VERIFIER_PREFIX = "pbkdf2_sha256"
ITER_BATCH = 64

KIND_REQUEST = 0
KIND_RESPONSE = 1
KIND_ERROR = 2
KIND_HELLO = 10
KIND_AUTH = 11
KIND_WELCOME = 12
KIND_REFUSED = 13

# Operation codes: small ints keep the hot-path frames short and the dispatch a list index.
OP_CALL = 1          # target, name|None, args, kwargs
OP_GETATTR = 2       # target, name
OP_SETATTR = 3       # target, name, value
OP_NEW = 4           # class_name, args, kwargs
OP_INVOKE = 5        # module/class name or object, name, args, kwargs
OP_GET_STATIC = 6    # class_name, name
OP_SET_STATIC = 7    # class_name, name, value
OP_LEN = 8           # target
OP_ITER = 9          # target -> [items, iterator or None]
OP_NEXT = 10         # iterator -> [items, iterator or None]
OP_GETITEM = 11      # target, key
OP_SETITEM = 12      # target, key, value
OP_DELITEM = 13      # target, key
OP_DIR = 14          # target
OP_REPR = 15         # target
OP_STR = 16          # target
OP_OPERATOR = 17     # name, a, b  (eq, ne, lt, le, gt, ge, contains, hash, truth)
OP_ADD_CLASS_PATH = 18   # list of paths
OP_VERSION = 19
OP_PING = 20
OP_SHUTDOWN = 21
OP_STATS = 22
OP_RESOLVE = 23      # target -> the value, or the object by reference
OP_DELATTR = 24      # target, name

OP_NAMES = {v: k[3:].lower() for k, v in globals().items() if k.startswith("OP_")}

EXT_TUPLE = 1        # payload: msgpack array of the items
EXT_SENDER_OBJ = 2   # payload: [id, class_key, class_info|None, hint|None]; lives in the sender's table
EXT_RECEIVER_OBJ = 3  # payload: 8-byte id; lives in the receiver's table
EXT_RECEIVER_PATH = 4  # payload: [id, attr, attr, ...]; an attribute path from a receiver's object
EXT_BIGINT = 5       # payload: decimal text of an int outside msgpack's 64-bit range

_HDR = struct.Struct("!I")
# A receive buffer grown past this by a large frame goes back to the initial size once drained.
_SHRINK_ABOVE = 1024 * 1024
_INITIAL_BUFFER = 65536
RECV_TIMEOUT_TEXT = "timed out waiting for the peer"
_ID = struct.Struct("!Q")
VALUE_TYPES = frozenset((type(None), bool, int, float, str, bytes, list, tuple, dict))
_HINT_SCAN_LIMIT = 32
# What a malformed msgpack body can raise while being decoded.
DECODE_ERRORS = (ValueError, TypeError, msgpack.UnpackException, RecursionError, UnicodeDecodeError)
_METHOD_TYPES = (
    types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
    types.ClassMethodDescriptorType, types.WrapperDescriptorType, staticmethod, classmethod,
)


# ---------------------------------------------------------------------------- errors


class GatewayError(Exception):
    """Base of every error the gateway raises on its own account."""


class ConnectionLost(GatewayError):
    """The connection closed or broke while a call was in flight."""


class GatewayTimeout(GatewayError):
    """No answer arrived within the connection's timeout."""


class AuthenticationError(GatewayError):
    """The handshake was refused (wrong or missing passphrase) or the server failed to prove itself."""


class ProtocolError(GatewayError):
    """The peer sent something that is not a valid frame or message."""


class RemoteError(GatewayError):
    """An exception raised by the code on the other side of the connection."""

    def __init__(self, remote_type: str, remote_message: str, remote_traceback: str = "") -> None:
        super().__init__(remote_type, remote_message, remote_traceback)
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        text = f"{self.remote_type}: {self.remote_message}"
        if self.remote_traceback:
            text += "\n--- remote traceback ---\n" + self.remote_traceback.rstrip()
        return text


_remote_error_classes: dict[str, type] = {}


def make_remote_error(remote_type: str, message: str, tb: str) -> RemoteError:
    """A RemoteError that is also an instance of the matching builtin exception, when one exists.

    So ``getattr(proxy, "x", None)``, ``hasattr``, ``except KeyError`` and the iteration protocol
    keep working across the connection.
    """
    cls = _remote_error_classes.get(remote_type)
    if cls is None:
        base = getattr(builtins, remote_type, None)
        cls = RemoteError
        if isinstance(base, type) and issubclass(base, Exception) and base is not Exception:
            try:
                cls = type("Remote" + remote_type, (RemoteError, base), {})
            except TypeError:  # instance layout conflict (OSError family): plain RemoteError
                cls = RemoteError
        _remote_error_classes[remote_type] = cls
    return cls(remote_type, message, tb)


def exception_type_name(exc: BaseException) -> str:
    if isinstance(exc, RemoteError):
        return exc.remote_type
    t = type(exc)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


# ---------------------------------------------------------------------------- passphrase verifier


def derive_key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), salt, iterations, dklen=32)


def make_verifier(passphrase: str, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None) -> str:
    """The string the portal stores instead of the passphrase: ``pbkdf2_sha256$<it>$<salt>$<key>``."""
    if salt is None:
        salt = os.urandom(16)
    if iterations < 1:
        raise ValueError("iterations must be positive")
    key = derive_key(passphrase, salt, iterations)
    return "$".join(
        (VERIFIER_PREFIX, str(iterations), base64.b64encode(salt).decode(), base64.b64encode(key).decode())
    )


def is_verifier(s: str) -> bool:
    return s.startswith(VERIFIER_PREFIX + "$")


def parse_verifier(s: str) -> tuple[int, bytes, bytes]:
    """(iterations, salt, key) from a verifier string; ValueError when it is malformed."""
    parts = s.strip().split("$")
    if len(parts) != 4 or parts[0] != VERIFIER_PREFIX:
        raise ValueError("not a pbkdf2_sha256 verifier")
    try:
        iterations = int(parts[1])
        salt = base64.b64decode(parts[2], validate=True)
        key = base64.b64decode(parts[3], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"malformed verifier: {exc}") from None
    if iterations < 1 or not salt or len(key) != 32:
        raise ValueError("malformed verifier")
    return iterations, salt, key


def auth_mac(key: bytes, role: bytes, hello_frame: bytes, client_nonce: bytes) -> bytes:
    """HMAC over the whole hello frame (version, salt, server nonce) and the client's nonce.

    ``role`` differs for the client's and the server's proof so one cannot be replayed as the other.
    """
    return hmac.new(key, b"gateway-auth-v1|" + role + b"|" + hello_frame + client_nonce, hashlib.sha256).digest()


def server_info() -> dict:
    return {
        "protocol": PROTOCOL_VERSION,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "pid": os.getpid(),
        "executable": sys.executable,
    }


# ---------------------------------------------------------------------------- framing


class FrameSocket:
    """Length-prefixed frames over a socket, reading with recv_into into one reusable buffer.

    Hand-written rather than socket.makefile(): a buffered file object costs an extra copy and
    cannot refuse an oversized length prefix before reading it.
    """

    __slots__ = ("_buf", "_end", "_start", "_view", "frames_in", "frames_out", "max_frame", "sock")

    def __init__(self, sock: socket.socket, max_frame: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.sock = sock
        self.max_frame = max_frame
        self._buf = bytearray(65536)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self.frames_in = 0
        self.frames_out = 0

    def send(self, body: bytes) -> None:
        # One sendall per frame: header and body leave in the same segment (TCP_NODELAY is set).
        try:
            self.sock.sendall(_HDR.pack(len(body)) + body)
        except socket.timeout:
            raise GatewayTimeout("timed out sending a frame") from None
        except OSError as exc:
            raise ConnectionLost(f"connection lost while sending: {exc}") from None
        self.frames_out += 1

    def prime(self, data: bytes) -> None:
        """Bytes read from the socket before this FrameSocket took it over (the end of a handshake read)."""
        end = self._end + len(data)
        if end > len(self._buf):
            self._view.release()
            self._buf = self._buf[:self._end] + bytearray(max(end - self._end, len(self._buf)))
            self._view = memoryview(self._buf)
        self._buf[self._end:end] = data
        self._end = end

    def recv(self) -> memoryview:
        """The next frame's body; valid only until the next recv()."""
        start, end = self._start, self._end
        while True:
            avail = end - start
            if avail >= 4:
                (n,) = _HDR.unpack_from(self._buf, start)
                if n > self.max_frame:
                    raise ProtocolError(f"frame of {n} bytes exceeds the limit of {self.max_frame} bytes")
                if avail >= 4 + n:
                    self._start = start + 4 + n
                    self._end = end
                    self.frames_in += 1
                    return self._view[start + 4:start + 4 + n]
                need = 4 + n
            else:
                need = 4
                if avail == 0 and len(self._buf) > _SHRINK_ABOVE:
                    # Drained after a large frame: give the memory back rather than hold it for good.
                    self._view.release()
                    self._buf = bytearray(_INITIAL_BUFFER)
                    self._view = memoryview(self._buf)
                    start = end = 0
            size = len(self._buf)
            if start + need > size:
                if start:
                    # Move the partial frame to the front.
                    self._buf[:avail] = self._buf[start:end]
                    start, end = 0, avail
                if end == size:
                    # Full: double, but never past the (checked) frame length. The buffer grows with
                    # the bytes that actually arrive, not with what a header merely announces, so a
                    # peer announcing 64 MiB and sending 100 bytes costs 64 KiB, not 64 MiB.
                    self._view.release()
                    newbuf = bytearray(min(need, 2 * size))
                    newbuf[:end] = self._buf[:end]
                    self._buf = newbuf
                    self._view = memoryview(newbuf)
            try:
                k = self.sock.recv_into(self._view[end:])
            except socket.timeout:
                self._start, self._end = start, end
                raise GatewayTimeout(RECV_TIMEOUT_TEXT) from None
            except BlockingIOError:  # SO_RCVTIMEO expired on a blocking socket
                self._start, self._end = start, end
                raise GatewayTimeout(RECV_TIMEOUT_TEXT) from None
            except OSError as exc:
                raise ConnectionLost(f"connection lost: {exc}") from None
            if not k:
                raise ConnectionLost("connection closed by peer" if avail == 0 else "connection closed mid-frame")
            end += k


def frame_bytes(body: bytes) -> bytes:
    """Header and body of one frame, for senders that do not go through a FrameSocket."""
    return _HDR.pack(len(body)) + body


def tune_socket(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def set_recv_timeout(sock: socket.socket, timeout: float | None) -> None:
    """A kernel receive timeout on a blocking socket.

    socket.settimeout() would make CPython poll() before every recv, one extra system call per
    round trip on the hot path; SO_RCVTIMEO costs nothing until it fires. Falls back to
    settimeout() where the option cannot be set.
    """
    sock.settimeout(None)
    if timeout is None:
        return
    # 0 clears a timeout set earlier (the kernel reads zero as "wait for ever").
    sec = int(timeout)
    usec = int((timeout - sec) * 1_000_000)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", sec, usec))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", sec, usec))
    except (OSError, struct.error):
        sock.settimeout(timeout or None)


# ---------------------------------------------------------------------------- proxies


class ClassInfo:
    __slots__ = ("methods", "name")

    def __init__(self, name: str, methods: frozenset) -> None:
        self.name = name
        self.methods = methods


_UNKNOWN_CLASS = ClassInfo("?", frozenset())


class RemoteMethod:
    """A method of a remote object, called in one round trip without fetching it first.

    It holds the proxy it came from, not only that proxy's id: in ``gw.new("C").m()`` the proxy
    is a temporary that nothing else references once ``.m`` is looked up, and were it collected
    then, its release would travel in the very request that names it.
    """

    __slots__ = ("_ep", "_name", "_owner", "_target")

    def __init__(self, owner: _ProxyBase, name: str) -> None:
        self._owner = owner
        self._ep = owner._gw_ep
        self._target = owner._gw_target
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ep.request(OP_CALL, self._target, self._name, list(args), kwargs or None)

    def __repr__(self) -> str:
        return f"<remote method {self._name}>"


class _ProxyBase:
    """Behaviour shared by Proxy and LazyProxy; ``_gw_target`` is what goes on the wire."""

    __slots__ = ()
    _gw_ep: Endpoint
    _gw_target: Any
    _gw_cls: ClassInfo

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_gw_"):
            raise AttributeError(name)
        if name in self._gw_cls.methods:
            return RemoteMethod(self, name)
        hint = self._gw_hint_for(name)
        if hint is not None:
            return LazyProxy(self, name, hint)
        return self._gw_ep.request(OP_GETATTR, self._gw_target, name)

    def _gw_hint_for(self, name: str) -> ClassInfo | None:
        return None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_gw_"):
            object.__setattr__(self, name, value)
        else:
            self._gw_ep.request(OP_SETATTR, self._gw_target, name, value)

    def __delattr__(self, name: str) -> None:
        self._gw_ep.request(OP_DELATTR, self._gw_target, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._gw_ep.request(OP_CALL, self._gw_target, None, list(args), kwargs or None)

    def __dir__(self) -> list:
        return self._gw_ep.request(OP_DIR, self._gw_target)

    def __str__(self) -> str:
        return self._gw_ep.request(OP_STR, self._gw_target)

    def __len__(self) -> int:
        return self._gw_ep.request(OP_LEN, self._gw_target)

    def __iter__(self) -> Any:
        items, it = self._gw_ep.request(OP_ITER, self._gw_target)
        return _RemoteIterator(self._gw_ep, items, it)

    def __getitem__(self, key: Any) -> Any:
        return self._gw_ep.request(OP_GETITEM, self._gw_target, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._gw_ep.request(OP_SETITEM, self._gw_target, key, value)

    def __delitem__(self, key: Any) -> None:
        self._gw_ep.request(OP_DELITEM, self._gw_target, key)

    def __contains__(self, item: Any) -> bool:
        return self._gw_ep.request(OP_OPERATOR, "contains", self, item)

    def __bool__(self) -> bool:
        return self._gw_ep.request(OP_OPERATOR, "truth", self, None)

    def __hash__(self) -> int:
        return self._gw_ep.request(OP_OPERATOR, "hash", self, None)

    def __eq__(self, other: object) -> Any:
        return self._gw_ep.request(OP_OPERATOR, "eq", self, other)

    def __ne__(self, other: object) -> Any:
        return self._gw_ep.request(OP_OPERATOR, "ne", self, other)

    def __lt__(self, other: Any) -> Any:
        return self._gw_ep.request(OP_OPERATOR, "lt", self, other)

    def __le__(self, other: Any) -> Any:
        return self._gw_ep.request(OP_OPERATOR, "le", self, other)

    def __gt__(self, other: Any) -> Any:
        return self._gw_ep.request(OP_OPERATOR, "gt", self, other)

    def __ge__(self, other: Any) -> Any:
        return self._gw_ep.request(OP_OPERATOR, "ge", self, other)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a gateway proxy cannot be pickled; it is only meaningful on its connection")


class Proxy(_ProxyBase):
    """A local stand-in for an object that lives in the peer's object table.

    The table entry is released (batched with the next message) when this proxy is collected.
    """

    __slots__ = ("__weakref__", "_gw_cls", "_gw_ep", "_gw_hint", "_gw_target")

    def __init__(self, ep: Endpoint, oid: int, cls: ClassInfo, hint: dict | None) -> None:
        object.__setattr__(self, "_gw_ep", ep)
        object.__setattr__(self, "_gw_target", oid)
        object.__setattr__(self, "_gw_cls", cls)
        object.__setattr__(self, "_gw_hint", hint)

    def _gw_hint_for(self, name: str) -> ClassInfo | None:
        hint = self._gw_hint
        return hint.get(name) if hint else None

    def __setattr__(self, name: str, value: Any) -> None:
        _ProxyBase.__setattr__(self, name, value)
        hint = self._gw_hint
        if hint and name in hint and not isinstance(value, _ProxyBase):
            # The attribute now holds something else; stop treating it as a lazy reference.
            del hint[name]

    def __repr__(self) -> str:
        try:
            text = self._gw_ep.request(OP_REPR, self._gw_target)
        except GatewayError as exc:
            text = f"<unavailable: {exc.__class__.__name__}>"
        return f"<proxy of remote {self._gw_cls.name} #{self._gw_target}: {text}>"

    def __del__(self) -> None:
        ep = self._gw_ep
        if not ep.closed:
            # list.append is atomic under the GIL and takes no lock, so collection on any thread
            # (even one inside a round trip) is safe; the id leaves with the next message.
            ep.pending_releases.append(self._gw_target)


class LazyProxy(_ProxyBase):
    """``base.attr`` where the attribute held a reference: nothing is sent until it is used.

    Calling a method on it sends the path and the call in one frame; any other use (str, repr,
    comparison, len, iteration, passing it as an argument) sends one request that the peer
    resolves along the path at that moment, so errors in the path surface there as RemoteError.
    """

    __slots__ = ("_gw_base", "_gw_cls", "_gw_ep", "_gw_target")

    def __init__(self, base: _ProxyBase, name: str, cls: ClassInfo) -> None:
        object.__setattr__(self, "_gw_ep", base._gw_ep)
        object.__setattr__(self, "_gw_base", base)  # keeps the base's table entry alive
        t = base._gw_target
        object.__setattr__(self, "_gw_target", [t, name] if type(t) is int else [*t, name])
        object.__setattr__(self, "_gw_cls", cls)

    def __repr__(self) -> str:
        try:
            text = self._gw_ep.request(OP_REPR, self._gw_target)
        except GatewayError as exc:
            text = f"<unavailable: {exc.__class__.__name__}>"
        path = ".".join(self._gw_target[1:])
        return f"<lazy proxy of remote {self._gw_cls.name} #{self._gw_target[0]}.{path}: {text}>"


def resolve(obj: Any) -> Any:
    """Materialise a LazyProxy (one round trip): the value, or a Proxy; anything else unchanged."""
    if type(obj) is LazyProxy:
        return obj._gw_ep.request(OP_RESOLVE, obj._gw_target)
    return obj


class _RemoteIterator:
    __slots__ = ("_ep", "_it", "_items", "_pos")

    def __init__(self, ep: Endpoint, items: list, it: Any) -> None:
        self._ep = ep
        self._items = items
        self._pos = 0
        self._it = it

    def __iter__(self) -> _RemoteIterator:
        return self

    def __next__(self) -> Any:
        while self._pos >= len(self._items):
            if self._it is None:
                raise StopIteration
            self._items, self._it = self._ep.request(OP_NEXT, self._it)
            self._pos = 0
        item = self._items[self._pos]
        self._pos += 1
        return item


# ---------------------------------------------------------------------------- endpoint


def _methods_of(cls: type) -> list:
    names = []
    for name in dir(cls):
        if name.startswith("__"):
            continue
        try:
            attr = inspect.getattr_static(cls, name)
        except AttributeError:
            continue
        if isinstance(attr, _METHOD_TYPES):
            names.append(name)
    return names


def _class_name(cls: type) -> str:
    mod = getattr(cls, "__module__", None)
    return cls.__qualname__ if mod in (None, "builtins") else f"{mod}.{cls.__qualname__}"


_OPERATORS: dict[str, Callable] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
    "gt": operator.gt, "ge": operator.ge, "contains": operator.contains,
    "hash": lambda a, b: hash(a), "truth": lambda a, b: bool(a),
}


class Endpoint:
    """One side of a gateway connection: object table, codec, and the request/serve loop.

    Both sides are endpoints, which is what makes calls reentrant: while a thread waits for the
    answer to its request, any request the peer sends first (a callback) is served on that same
    thread, to any depth, and the wait resumes. Responses therefore arrive strictly nested.

    Threading: one RLock is held for a whole round trip. With a single reader there is no hand-off
    between threads on the hot path (the answer is read by the thread that asked), which keeps
    single-thread latency lowest; several threads sharing a connection take turns. The lock is
    reentrant so callbacks running on the waiting thread may call the peer again.
    """

    def __init__(self, sock: socket.socket, max_frame: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.fs = FrameSocket(sock, max_frame)
        self.sock = sock
        self.objects: dict[int, Any] = {}
        self._ids = itertools.count(1)
        self._rids = itertools.count(1)
        self.pending_releases: list = []
        self.closed = False
        self.lock = threading.RLock()
        self._class_keys: dict[type, int] = {}
        self._peer_classes: dict[int, ClassInfo] = {}
        self._decode_error: str | None = None
        self._packer = msgpack.Packer(default=self._default, strict_types=True, use_bin_type=True)
        self._reset_unpacker()
        self._handlers: list = [None] * 32
        for op, fn in self.handlers().items():
            self._handlers[op] = fn

    # -- codec -----------------------------------------------------------------------------

    def _pack_nested(self, obj: Any) -> bytes:
        return msgpack.packb(obj, default=self._default, strict_types=True, use_bin_type=True)

    def _default(self, obj: Any) -> Any:
        t = type(obj)
        if t is tuple:
            return msgpack.ExtType(EXT_TUPLE, self._pack_nested(list(obj)))
        if t is Proxy or t is LazyProxy:
            if obj._gw_ep is not self:
                raise TypeError("a proxy can only be passed back over the connection it came from")
            target = obj._gw_target
            if t is Proxy:
                return msgpack.ExtType(EXT_RECEIVER_OBJ, _ID.pack(target))
            return msgpack.ExtType(EXT_RECEIVER_PATH, self._pack_nested(target))
        if t is int:  # beyond 64 bits; smaller ints never reach here
            return msgpack.ExtType(EXT_BIGINT, str(obj).encode())
        return msgpack.ExtType(EXT_SENDER_OBJ, self._pack_nested(self._export(obj)))

    def _class_entry(self, cls: type) -> list:
        key = self._class_keys.get(cls)
        if key is not None:
            return [key, None]
        key = len(self._class_keys) + 1
        self._class_keys[cls] = key
        return [key, [_class_name(cls), _methods_of(cls)]]

    def _export(self, obj: Any) -> list:
        oid = next(self._ids)
        self.objects[oid] = obj
        key, info = self._class_entry(type(obj))
        hint = None
        d = getattr(obj, "__dict__", None)
        if type(d) is dict and d and not isinstance(obj, (types.ModuleType, type)):
            # Attributes that currently hold references: the peer may chain through them lazily.
            for k, v in itertools.islice(d.items(), _HINT_SCAN_LIMIT):
                if type(v) not in VALUE_TYPES and type(k) is str and not k.startswith("__"):
                    if hint is None:
                        hint = {}
                    hint[k] = self._class_entry(type(v))
        return [oid, key, info, hint]

    def _class_info(self, key: int, info: list | None) -> ClassInfo:
        if info is not None:
            ci = ClassInfo(info[0], frozenset(info[1]))
            self._peer_classes[key] = ci
            return ci
        return self._peer_classes.get(key, _UNKNOWN_CLASS)

    def _ext_hook(self, code: int, data: bytes) -> Any:
        try:
            return self._decode_ext(code, data)
        except (struct.error, KeyError, IndexError, AttributeError, *DECODE_ERRORS) as exc:
            # Turned into ValueError so recv_message reports an undecodable frame.
            raise ValueError(f"malformed extension type {code}: {exc.__class__.__name__}") from None

    def _decode_ext(self, code: int, data: bytes) -> Any:
        if code == EXT_SENDER_OBJ:
            oid, key, info, hint = msgpack.unpackb(data, raw=False, strict_map_key=False)
            ci = self._class_info(key, info)
            if hint:
                hint = {k: self._class_info(v[0], v[1]) for k, v in hint.items()}
            return Proxy(self, oid, ci, hint)
        if code == EXT_RECEIVER_OBJ:
            (oid,) = _ID.unpack(data)
            try:
                return self.objects[oid]
            except KeyError:
                self._decode_error = f"object #{oid} was released or never existed on this connection"
                return None
        if code == EXT_TUPLE:
            return tuple(msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=self._ext_hook))
        if code == EXT_RECEIVER_PATH:
            path = msgpack.unpackb(data, raw=False)
            try:
                return self.resolve_target(path)
            except Exception as exc:
                self._decode_error = f"{exception_type_name(exc)}: {exc}"
                return None
        if code == EXT_BIGINT:
            return int(data.decode())
        self._decode_error = f"unknown extension type {code}"
        return None

    def resolve_target(self, target: Any) -> Any:
        if type(target) is int:
            try:
                return self.objects[target]
            except KeyError:
                raise ReferenceError(f"object #{target} was released or never existed on this connection") from None
        if type(target) is list and target and type(target[0]) is int:
            obj = self.resolve_target(target[0])
            for name in target[1:]:
                obj = getattr(obj, name)
            return obj
        raise ProtocolError(f"bad target {target!r}")

    # -- messages --------------------------------------------------------------------------

    def _take_releases(self) -> list | None:
        pend = self.pending_releases
        if not pend:
            return None
        n = len(pend)
        batch = pend[:n]
        del pend[:n]  # one atomic operation: ids appended meanwhile stay for the next message
        return batch

    def _release(self, ids: Any) -> None:
        # Only reached when a message carries releases, so checking them costs the plain path nothing.
        if type(ids) is not list or not all(type(oid) is int for oid in ids):
            raise ProtocolError("releases must be null or a list of object ids")
        objs = self.objects
        for oid in ids:
            objs.pop(oid, None)

    def send_message(self, msg: list) -> None:
        try:
            body = self._packer.pack(msg)
        except Exception:
            self._packer.reset()
            raise
        self.fs.send(body)

    def recv_message(self) -> Any:
        body = self.fs.recv()
        self._decode_error = None
        unpacker = self._unpacker
        try:
            unpacker.feed(body)
            msg = unpacker.unpack()
        except (msgpack.ExtraData, msgpack.OutOfData, *DECODE_ERRORS) as exc:
            self._reset_unpacker()
            raise ProtocolError(f"undecodable frame: {exc.__class__.__name__}: {exc}") from None
        # Exactly one value per frame: tell() counts every byte consumed since the unpacker was made.
        self._consumed += len(body)
        if unpacker.tell() != self._consumed:
            self._reset_unpacker()
            raise ProtocolError("frame holds more than one value")
        if type(msg) is not list or len(msg) < 3 or type(msg[1]) is not int:
            raise ProtocolError("frame is not a gateway message")
        return msg

    def _reset_unpacker(self) -> None:
        self._consumed = 0
        self._unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=self._ext_hook,
                                          max_buffer_size=max(self.fs.max_frame, 1024))

    def request(self, op: int, *args: Any) -> Any:
        """Send one request and wait for its answer, serving the peer's nested requests meanwhile."""
        if self.closed:
            raise ConnectionLost("the connection is closed")
        with self.lock:
            rid = next(self._rids)
            pend = self.pending_releases
            self.send_message([KIND_REQUEST, rid, self._take_releases() if pend else None, op, *args])
            while True:
                try:
                    msg = self.recv_message()
                except ProtocolError:
                    self.close()
                    raise
                except ConnectionLost:
                    self.close()
                    raise
                kind = msg[0]
                if kind == KIND_REQUEST:
                    # Releases riding on a request take effect once it is served (see server._loop).
                    self.serve_one(msg)
                    if msg[2]:
                        self._release(msg[2])
                    continue
                if msg[2]:
                    try:
                        self._release(msg[2])
                    except ProtocolError:
                        self.close()
                        raise
                if msg[1] == rid:
                    if kind == KIND_RESPONSE:
                        if self._decode_error is not None:
                            raise make_remote_error("ReferenceError", self._decode_error, "")
                        return msg[3]
                    if kind == KIND_ERROR:
                        raise make_remote_error(str(msg[3]), str(msg[4]), str(msg[5]) if len(msg) > 5 else "")
                if kind not in (KIND_RESPONSE, KIND_ERROR):
                    self.close()
                    raise ProtocolError(f"unexpected message kind {kind!r}")
                # else: a late answer to a request that timed out earlier; dropped.

    def serve_one(self, msg: list) -> None:
        """Run one request from the peer and send the answer (or the error)."""
        rid = msg[1]
        try:
            if self._decode_error is not None:
                raise ReferenceError(self._decode_error)
            op = msg[3]
            handler = self._handlers[op] if type(op) is int and 0 <= op < 32 else None
            if handler is None:
                raise ProtocolError(f"unknown operation {op!r}")
            result = handler(self, msg)
        except (ConnectionLost, GatewayTimeout):
            raise
        except Exception as exc:
            self.on_request_error(msg, exc)
            self.send_error(rid, exc)
            return
        pend = self.pending_releases
        try:
            self.send_message([KIND_RESPONSE, rid, self._take_releases() if pend else None, result])
        except (ConnectionLost, GatewayTimeout):
            raise
        except Exception as exc:
            self.on_request_error(msg, exc)
            self.send_error(rid, exc)

    def send_error(self, rid: int, exc: BaseException) -> None:
        if isinstance(exc, RemoteError):
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            tb += "\n--- raised on the other side ---\n" + exc.remote_traceback
            message = exc.remote_message
        else:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            message = str(exc)
        self.send_message([KIND_ERROR, rid, None, exception_type_name(exc), message, tb])

    def on_request_error(self, msg: list, exc: BaseException) -> None:
        """Hook for the server's log."""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.objects.clear()

    # -- operations both sides serve -------------------------------------------------------

    def handlers(self) -> dict[int, Callable]:
        return {
            OP_CALL: Endpoint._op_call,
            OP_GETATTR: Endpoint._op_getattr,
            OP_SETATTR: Endpoint._op_setattr,
            OP_DELATTR: Endpoint._op_delattr,
            OP_LEN: Endpoint._op_len,
            OP_ITER: Endpoint._op_iter,
            OP_NEXT: Endpoint._op_next,
            OP_GETITEM: Endpoint._op_getitem,
            OP_SETITEM: Endpoint._op_setitem,
            OP_DELITEM: Endpoint._op_delitem,
            OP_DIR: Endpoint._op_dir,
            OP_REPR: Endpoint._op_repr,
            OP_STR: Endpoint._op_str,
            OP_OPERATOR: Endpoint._op_operator,
            OP_RESOLVE: Endpoint._op_resolve,
            OP_PING: Endpoint._op_ping,
        }

    def _op_call(self, msg: list) -> Any:
        obj = self.resolve_target(msg[4])
        name = msg[5]
        fn = obj if name is None else getattr(obj, name)
        kwargs = msg[7]
        return fn(*msg[6], **kwargs) if kwargs else fn(*msg[6])

    def _op_getattr(self, msg: list) -> Any:
        return getattr(self.resolve_target(msg[4]), msg[5])

    def _op_setattr(self, msg: list) -> None:
        setattr(self.resolve_target(msg[4]), msg[5], msg[6])

    def _op_delattr(self, msg: list) -> None:
        delattr(self.resolve_target(msg[4]), msg[5])

    def _op_len(self, msg: list) -> int:
        return len(self.resolve_target(msg[4]))

    @staticmethod
    def _batch(it: Any) -> list:
        items = list(itertools.islice(it, ITER_BATCH))
        return [items, it if len(items) == ITER_BATCH else None]

    def _op_iter(self, msg: list) -> list:
        return self._batch(iter(self.resolve_target(msg[4])))

    def _op_next(self, msg: list) -> list:
        return self._batch(msg[4])  # the iterator proxy arrives decoded as the object itself

    def _op_getitem(self, msg: list) -> Any:
        return self.resolve_target(msg[4])[msg[5]]

    def _op_setitem(self, msg: list) -> None:
        self.resolve_target(msg[4])[msg[5]] = msg[6]

    def _op_delitem(self, msg: list) -> None:
        del self.resolve_target(msg[4])[msg[5]]

    def _op_dir(self, msg: list) -> list:
        return dir(self.resolve_target(msg[4]))

    def _op_repr(self, msg: list) -> str:
        return repr(self.resolve_target(msg[4]))

    def _op_str(self, msg: list) -> str:
        return str(self.resolve_target(msg[4]))

    def _op_operator(self, msg: list) -> Any:
        try:
            fn = _OPERATORS[msg[4]]
        except (KeyError, TypeError):
            raise ValueError(f"unknown operator {msg[4]!r}") from None
        return fn(msg[5], msg[6])

    def _op_resolve(self, msg: list) -> Any:
        return self.resolve_target(msg[4])

    def _op_ping(self, msg: list) -> str:
        return "pong"
