"""Chains in one expression: every link may act on a temporary proxy that nothing else holds.

``gw.new("C").make().word()`` looks up ``word`` on a proxy whose last reference goes away as
soon as the look-up returns; the release of that proxy must not reach the server before the
request that names it has been served. Each chain here is evaluated with ``gc.collect()`` run
at the start of every link, and the frames it cost are counted, so pipelining stays as cheap
as it was.
"""

from __future__ import annotations

import gc
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateways.protocol import (
    EXT_SENDER_OBJ,
    KIND_REQUEST,
    KIND_RESPONSE,
    OP_ADD_CLASS_PATH,
    OP_CALL,
    OP_NEW,
    OP_PING,
    OP_STATS,
    LazyProxy,
    Proxy,
    RemoteMethod,
    _ProxyBase,
)
from gateways.tests.test_server_bad_input import raw_session, read_frame, send_frame

CHAIN_MODULE = '''
def _args(args, kwargs):
    parts = [repr(a) for a in args] + [k + "=" + repr(v) for k, v in sorted(kwargs.items())]
    return "(" + ", ".join(parts) + ")"


class Node:
    """Every link of a chain returns a new Node whose path spells the chain that made it."""

    def __init__(self, path="root", depth=6):
        self.path = path
        if depth:
            self.child = Node(path + ".child", depth - 1)  # an instance attribute: a lazy link

    @property
    def sibling(self):  # not in __dict__: an eager link returning a fresh object
        return Node(self.path + ".sibling")

    def make(self, *args, **kwargs):
        return Node(self.path + ".make" + _args(args, kwargs))

    def __call__(self, *args, **kwargs):
        return Node(self.path + _args(args, kwargs))

    def __getitem__(self, key):
        return Node(self.path + "[" + repr(key) + "]")

    def word(self, suffix=""):
        return self.path + suffix

    def __str__(self):
        return self.path
'''

# (source text, path text on the server); each link is one of the mixes the issue names.
LINKS = {
    "attribute": (".child", ".child"),
    "eager attribute": (".sibling", ".sibling"),
    "call with args": (".make(3, 'a')", ".make(3, 'a')"),
    "call with kwargs": (".make(tag='k', n=2)", ".make(n=2, tag='k')"),
    "call with args and kwargs": (".make(1, tag='x')", ".make(1, tag='x')"),
    "indexing": ("[2]", "[2]"),
    "indexing by key": ("['key']", "['key']"),
    "further call": ("(7)", "(7)"),
    "further call with kwargs": ("(z=None)", "(z=None)"),
}
TERMINAL = (".word(suffix='!')", "!")

# The code objects every link goes through on the client: gc runs when any of them is entered.
_LINK_CODES = {
    _ProxyBase.__getattr__.__code__,
    _ProxyBase.__call__.__code__,
    _ProxyBase.__getitem__.__code__,
    RemoteMethod.__call__.__code__,
}


@contextmanager
def collecting_between_links() -> Iterator[list]:
    """Run gc.collect() each time a link starts; yields the list of collections that ran.

    The objects that exist before the chain are frozen (gc.freeze) meanwhile, so each full
    collection only walks what the chain allocated: about a microsecond instead of a tenth of a
    second in a process that has loaded Django.
    """
    ran: list = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "stop":
            ran.append(info["generation"])

    def profile(frame, event, arg):  # type: ignore[no-untyped-def]
        if event == "call" and frame.f_code in _LINK_CODES:
            gc.collect()

    gc.freeze()
    gc.callbacks.append(on_gc)
    sys.setprofile(profile)
    try:
        yield ran
    finally:
        sys.setprofile(None)
        gc.callbacks.remove(on_gc)
        gc.unfreeze()


def expected_frames(names: list[str], temporary_root: bool, terminal: bool) -> int:
    """Requests the chain costs: a lazy attribute of a plain proxy is free, every other link one."""
    frames = 1 if temporary_root else 0
    lazy = False
    for name in names:
        if name == "attribute" and not lazy:
            lazy = True
            continue
        frames += 1
        lazy = False
    return frames + 1  # the terminal word() or the final str()


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("chain_classes")
    (d / "chainsample.py").write_text(textwrap.dedent(CHAIN_MODULE))
    return d


@pytest.fixture
def gw(gateway_connection, chain_dir):  # type: ignore[no-untyped-def]
    gateway_connection.add_to_class_path(str(chain_dir))
    return gateway_connection


def run_chain(gw, names: list[str], temporary_root: bool, terminal: bool) -> None:  # type: ignore[no-untyped-def]
    source = "gw.new('chainsample.Node')" if temporary_root else "root"
    path = "root"
    for name in names:
        code, text = LINKS[name]
        source += code
        path += text
    if terminal:
        source += TERMINAL[0]
        path += TERMINAL[1]
    else:
        source = f"str({source})"
    root = None if temporary_root else gw.new("chainsample.Node")
    namespace = {"gw": gw, "root": root}
    frames_before = gw.stats()["frames_in"]
    with collecting_between_links() as collections:
        result = eval(source, namespace)  # the source is built above from LINKS only
    frames = gw.stats()["frames_in"] - frames_before - 1
    assert result == path, source
    assert frames == expected_frames(names, temporary_root, terminal), source
    assert len(collections) >= len(names), f"gc did not run between the links of {source}"


@pytest.mark.parametrize("first", sorted(LINKS))
@pytest.mark.parametrize("second", sorted(LINKS))
def test_every_pair_of_links_works_on_a_temporary_proxy(gw, first, second):
    run_chain(gw, [first, second], temporary_root=True, terminal=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(sorted(LINKS)), min_size=2, max_size=5),
       temporary_root=st.booleans(), terminal=st.booleans())
def test_chains_of_two_to_five_links_of_any_mix(gw, names, temporary_root, terminal):
    run_chain(gw, names, temporary_root, terminal)


def test_the_examples_from_the_issue(gw):
    obj = gw.new("chainsample.Node")
    with collecting_between_links():
        assert obj.make().word() == "root.make()"
        assert obj.child.make().word(suffix="!") == "root.child.make()!"
        assert gw.new("chainsample.Node").make(1).sibling[0](k=2).make().word() == "root.make(1).sibling[0](k=2).make()"


def test_a_method_looked_up_on_a_temporary_keeps_it_until_called(gw):
    method = gw.new("chainsample.Node").make(5).word
    gc.collect()
    gw.ping()  # any release queued by now has reached the server
    assert method("?") == "root.make(5)?"
    lazy = gw.new("chainsample.Node").make(6).child
    assert type(lazy) is LazyProxy
    gc.collect()
    gw.ping()
    assert lazy.word() == "root.make(6).child"


def test_temporaries_of_chains_are_released_afterwards(gw):
    gc.collect()
    gw.ping()
    before = gw.stats()["objects"]
    for _ in range(20):
        assert gw.new("chainsample.Node").make(1).sibling[2](3).child.word() == "root.make(1).sibling[2](3).child"
        assert str(gw.new("chainsample.Node")[0].child) == "root[0].child"
    kept = gw.new("chainsample.Node").make(9)
    gc.collect()
    gw.ping()  # carries the releases
    assert gw.stats()["objects"] == before + 1  # only the proxy still held
    assert isinstance(kept, Proxy) and kept.word() == "root.make(9)"
    del kept
    gc.collect()
    gw.ping()
    assert gw.stats()["objects"] == before


def _oid(frame: bytes) -> int:
    """The object id in a response that carries one object by reference."""

    def hook(code: int, data: bytes):  # type: ignore[no-untyped-def]
        assert code == EXT_SENDER_OBJ
        return msgpack.unpackb(data, strict_map_key=False)[0]

    kind, _rid, _releases, oid = msgpack.unpackb(frame, ext_hook=hook, strict_map_key=False)
    assert kind == KIND_RESPONSE
    return oid


def _answer(sock, rid: int, releases, op: int, *args):  # type: ignore[no-untyped-def]
    send_frame(sock, msgpack.packb([KIND_REQUEST, rid, releases, op, *args]))
    return read_frame(sock)


def test_a_release_riding_on_a_request_takes_effect_after_that_request(gateway_server, chain_dir):
    # The server's half of the rule, seen on the wire: a request that names an object and
    # carries that object's release is served first, then the object is dropped.
    with raw_session(gateway_server) as sock:
        _answer(sock, 1, None, OP_ADD_CLASS_PATH, str(chain_dir))
        oid = _oid(_answer(sock, 2, None, OP_NEW, "chainsample.Node", [], None))
        objects = msgpack.unpackb(_answer(sock, 3, None, OP_STATS))[3]["objects"]
        kind, rid, _, value = msgpack.unpackb(_answer(sock, 4, [oid], OP_CALL, oid, "word", ["."], None))
        assert (kind, rid, value) == (KIND_RESPONSE, 4, "root.")
        msgpack.unpackb(_answer(sock, 5, None, OP_PING))
        assert msgpack.unpackb(_answer(sock, 6, None, OP_STATS))[3]["objects"] == objects - 1
