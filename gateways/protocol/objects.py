"""The object table: what this side lends the peer by reference, and what it knows of the
peer's classes.

An object sent by reference gets an id in ``objects`` and stays there until the peer
releases it (the ids ride on the peer's next message); a class is described once per
connection (its name and methods) and then named by a small key.
"""

from __future__ import annotations

import inspect
import itertools
import types
from typing import Any

from gateways.protocol.errors import ProtocolError
from gateways.protocol.proxies import _UNKNOWN_CLASS, ClassInfo

VALUE_TYPES = frozenset((type(None), bool, int, float, str, bytes, list, tuple, dict))
_HINT_SCAN_LIMIT = 32
_METHOD_TYPES = (
    types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
    types.ClassMethodDescriptorType, types.WrapperDescriptorType, staticmethod, classmethod,
)



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


class ObjectTable:
    """This side's objects lent to the peer, and the peer's classes seen so far."""

    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}
        self._ids = itertools.count(1)
        self.pending_releases: list = []
        self._class_keys: dict[type, int] = {}
        self._peer_classes: dict[int, ClassInfo] = {}

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

    def _take_releases(self) -> list | None:
        pend = self.pending_releases
        if not pend:
            return None
        n = len(pend)
        batch = pend[:n]
        del pend[:n]  # one atomic operation: ids appended meanwhile stay for the next message
        return batch

    @staticmethod
    def _check_releases(ids: Any) -> None:
        # Only reached when a message carries releases, so checking them costs the plain path nothing.
        if type(ids) is not list or not all(type(oid) is int for oid in ids):
            raise ProtocolError("releases must be null or a list of object ids")

    def _release(self, ids: Any) -> None:
        self._check_releases(ids)
        objs = self.objects
        for oid in ids:
            objs.pop(oid, None)

