"""The endpoint: one side of a gateway connection, and the operations both sides serve."""

from __future__ import annotations

import itertools
import operator
import socket
import threading
import traceback
from collections.abc import Callable
from typing import Any

from gateways.protocol.codec import Codec
from gateways.protocol.errors import (
    ConnectionLost,
    GatewayTimeout,
    ProtocolError,
    RemoteError,
    exception_type_name,
    make_remote_error,
)
from gateways.protocol.framing import DEFAULT_MAX_FRAME_BYTES, FrameSocket
from gateways.protocol.wire import (
    KIND_ERROR,
    KIND_REQUEST,
    KIND_RESPONSE,
    OP_CALL,
    OP_DELATTR,
    OP_DELITEM,
    OP_DIR,
    OP_GETATTR,
    OP_GETITEM,
    OP_ITER,
    OP_LEN,
    OP_NEXT,
    OP_OPERATOR,
    OP_PING,
    OP_REPR,
    OP_RESOLVE,
    OP_SETATTR,
    OP_SETITEM,
    OP_STR,
)

ITER_BATCH = 64

_OPERATORS: dict[str, Callable] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
    "gt": operator.gt, "ge": operator.ge, "contains": operator.contains,
    "hash": lambda a, b: hash(a), "truth": lambda a, b: bool(a),
}


class Endpoint(Codec):
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
        super().__init__(FrameSocket(sock, max_frame))
        self.sock = sock
        self._rids = itertools.count(1)
        self.closed = False
        self.lock = threading.RLock()
        self._handlers: list = [None] * 32
        for op, fn in self.handlers().items():
            self._handlers[op] = fn

    # -- requests --------------------------------------------------------------------------

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

