"""Wire protocol of the External Python Server, shared by the server and the client.

Everything here runs on any CPython 3.9+ with only msgpack installed; nothing imports Django or
the portal. The full description (frames, handshake, object table, pipelining, limits) lives in
docs/gateway-protocol.md; the comments in each part say why the code is shaped the way it is.

The parts, each a module of this package:

* ``wire`` - protocol version, message kinds, operation codes, extension types;
* ``errors`` - GatewayError and its kinds, remote exceptions;
* ``handshake`` - the passphrase verifier, the proofs, the limits before authentication;
* ``framing`` - length-prefixed frames over a socket;
* ``proxies`` - local stand-ins for the peer's objects;
* ``objects`` - the object table: what this side lends the peer by reference;
* ``codec`` - msgpack with extension types for tuples, big ints and references;
* ``endpoint`` - one side of a connection: the request/serve loop and the operations.

Every name is re-exported here: ``from gateways.protocol import X`` is the way to use them.
"""

from __future__ import annotations

import msgpack  # re-exported: the server packs its handshake frames with the same module

from gateways.protocol.codec import (
    DECODE_ERRORS,
    Codec,
)
from gateways.protocol.endpoint import (
    ITER_BATCH,
    Endpoint,
)
from gateways.protocol.errors import (
    AuthenticationError,
    ConnectionLost,
    GatewayError,
    GatewayTimeout,
    ProtocolError,
    RemoteError,
    exception_type_name,
    make_remote_error,
)
from gateways.protocol.framing import (
    DEFAULT_MAX_FRAME_BYTES,
    RECV_TIMEOUT_TEXT,
    FrameSocket,
    frame_bytes,
    set_recv_timeout,
    set_wait_timeout,
    tune_socket,
)
from gateways.protocol.handshake import (
    DEFAULT_ITERATIONS,
    HANDSHAKE_MAX_FRAME_BYTES,
    HANDSHAKE_TIMEOUT,
    MAX_ITERATIONS,
    VERIFIER_PREFIX,
    auth_mac,
    derive_key,
    is_verifier,
    make_verifier,
    parse_verifier,
    server_info,
)
from gateways.protocol.objects import (
    VALUE_TYPES,
    ObjectTable,
)
from gateways.protocol.proxies import (
    ClassInfo,
    LazyProxy,
    Proxy,
    RemoteMethod,
    _ProxyBase,
    resolve,
)
from gateways.protocol.wire import (
    EXT_BIGINT,
    EXT_RECEIVER_OBJ,
    EXT_RECEIVER_PATH,
    EXT_SENDER_OBJ,
    EXT_TUPLE,
    KIND_AUTH,
    KIND_ERROR,
    KIND_HELLO,
    KIND_REFUSED,
    KIND_REQUEST,
    KIND_RESPONSE,
    KIND_WELCOME,
    OP_ADD_CLASS_PATH,
    OP_CALL,
    OP_DELATTR,
    OP_DELITEM,
    OP_DIR,
    OP_GET_STATIC,
    OP_GETATTR,
    OP_GETITEM,
    OP_INVOKE,
    OP_ITER,
    OP_LEN,
    OP_NAMES,
    OP_NEW,
    OP_NEXT,
    OP_OPERATOR,
    OP_PING,
    OP_REPR,
    OP_RESOLVE,
    OP_SET_STATIC,
    OP_SETATTR,
    OP_SETITEM,
    OP_SHUTDOWN,
    OP_STATS,
    OP_STR,
    OP_VERSION,
    PROTOCOL_VERSION,
)

__all__ = [
    "DECODE_ERRORS",
    "DEFAULT_ITERATIONS",
    "DEFAULT_MAX_FRAME_BYTES",
    "EXT_BIGINT",
    "EXT_RECEIVER_OBJ",
    "EXT_RECEIVER_PATH",
    "EXT_SENDER_OBJ",
    "EXT_TUPLE",
    "HANDSHAKE_MAX_FRAME_BYTES",
    "HANDSHAKE_TIMEOUT",
    "ITER_BATCH",
    "KIND_AUTH",
    "KIND_ERROR",
    "KIND_HELLO",
    "KIND_REFUSED",
    "KIND_REQUEST",
    "KIND_RESPONSE",
    "KIND_WELCOME",
    "MAX_ITERATIONS",
    "OP_ADD_CLASS_PATH",
    "OP_CALL",
    "OP_DELATTR",
    "OP_DELITEM",
    "OP_DIR",
    "OP_GETATTR",
    "OP_GETITEM",
    "OP_GET_STATIC",
    "OP_INVOKE",
    "OP_ITER",
    "OP_LEN",
    "OP_NAMES",
    "OP_NEW",
    "OP_NEXT",
    "OP_OPERATOR",
    "OP_PING",
    "OP_REPR",
    "OP_RESOLVE",
    "OP_SETATTR",
    "OP_SETITEM",
    "OP_SET_STATIC",
    "OP_SHUTDOWN",
    "OP_STATS",
    "OP_STR",
    "OP_VERSION",
    "PROTOCOL_VERSION",
    "RECV_TIMEOUT_TEXT",
    "VALUE_TYPES",
    "VERIFIER_PREFIX",
    "AuthenticationError",
    "ClassInfo",
    "Codec",
    "ConnectionLost",
    "Endpoint",
    "FrameSocket",
    "GatewayError",
    "GatewayTimeout",
    "LazyProxy",
    "ObjectTable",
    "ProtocolError",
    "Proxy",
    "RemoteError",
    "RemoteMethod",
    "_ProxyBase",
    "auth_mac",
    "derive_key",
    "exception_type_name",
    "frame_bytes",
    "is_verifier",
    "make_remote_error",
    "make_verifier",
    "msgpack",
    "parse_verifier",
    "resolve",
    "server_info",
    "set_recv_timeout",
    "set_wait_timeout",
    "tune_socket",
]
