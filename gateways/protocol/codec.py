"""The codec: msgpack with extension types for tuples, big ints and objects passed by reference.

An object that is not a plain value travels as a reference into the sender's object
table (the receiver gets a Proxy); a proxy sent back travels as the id (or attribute
path) it stands for, and the receiver finds its own object again.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from gateways.protocol.errors import ProtocolError, exception_type_name
from gateways.protocol.framing import FrameSocket
from gateways.protocol.objects import ObjectTable
from gateways.protocol.proxies import LazyProxy, Proxy
from gateways.protocol.wire import EXT_BIGINT, EXT_RECEIVER_OBJ, EXT_RECEIVER_PATH, EXT_SENDER_OBJ, EXT_TUPLE

_ID = struct.Struct("!Q")
# What a malformed msgpack body can raise while being decoded.
DECODE_ERRORS = (ValueError, TypeError, msgpack.UnpackException, RecursionError, UnicodeDecodeError)
_unpackb = msgpack.unpackb


class Codec(ObjectTable):
    """Packs and unpacks the messages of one connection, frame by frame."""

    def __init__(self, fs: FrameSocket) -> None:
        super().__init__()
        self.fs = fs
        self._decode_error: str | None = None
        self._packer = msgpack.Packer(default=self._default, strict_types=True, use_bin_type=True)

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
        # One unpackb per frame rather than a long-lived Unpacker fed frame by frame: a single C call
        # that decodes and also refuses trailing bytes (ExtraData), where feed(), unpack() and tell()
        # are three calls and a byte count, measured slower on every message of a call. The frame
        # length was checked against max_frame before its body was read, so the body bounds every
        # length inside it; nesting stays bounded by msgpack's own stack.
        try:
            msg = _unpackb(body, raw=False, strict_map_key=False, ext_hook=self._ext_hook)
        except msgpack.ExtraData:
            raise ProtocolError("frame holds more than one value") from None
        except (msgpack.OutOfData, *DECODE_ERRORS) as exc:
            raise ProtocolError(f"undecodable frame: {exc.__class__.__name__}: {exc}") from None
        if type(msg) is not list or len(msg) < 3 or type(msg[1]) is not int:
            raise ProtocolError("frame is not a gateway message")
        return msg
