"""The words on the wire: protocol version, message kinds, operation codes and extension types.

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

PROTOCOL_VERSION = 1

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
