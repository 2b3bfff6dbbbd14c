"""Proxies: local stand-ins for objects that live in the peer's object table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateways.protocol.errors import GatewayError
from gateways.protocol.wire import (
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
    OP_REPR,
    OP_RESOLVE,
    OP_SETATTR,
    OP_SETITEM,
    OP_STR,
)

if TYPE_CHECKING:
    from gateways.protocol.endpoint import Endpoint


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

