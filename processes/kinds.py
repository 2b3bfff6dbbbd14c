"""The registry of kinds: which adapter (processes/adapters.py) serves which kind of managed process.

Apart from the adapters themselves, and importing nothing of the project, so that the models
(an Activity row's link, a run's rows of one process) find a kind's adapter without reaching
up into the layers above them; each kind registers its adapter from its ``AppConfig.ready()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from processes.adapters import ProcessAdapter

_BY_KIND: dict[str, ProcessAdapter] = {}


def register(adapter: ProcessAdapter) -> ProcessAdapter:
    """Make ``adapter`` the one of its kind (registering it again replaces it: ready() may run twice)."""
    for name in ("kind", "label", "label_plural", "model", "run_folder"):
        if not getattr(adapter, name, None):
            raise TypeError(f"{type(adapter).__name__} has no {name}: see processes/adapters.py")
    _BY_KIND[adapter.kind] = adapter
    return adapter


def adapter_for(kind: str) -> ProcessAdapter:
    try:
        return _BY_KIND[kind]
    except KeyError:
        known = ", ".join(sorted(_BY_KIND)) or "none"
        raise LookupError(f"No adapter for the kind {kind!r} (registered: {known}).") from None


def adapter_of(obj: Any) -> ProcessAdapter:
    """The adapter of a definition row (or of its model class)."""
    model = obj if isinstance(obj, type) else type(obj)
    model = model._meta.concrete_model
    for adapter in _BY_KIND.values():
        if adapter.model is model:
            return adapter
    raise LookupError(f"No adapter for {model.__name__}: register one in its app's ready().")


def all_adapters() -> list[ProcessAdapter]:
    return list(_BY_KIND.values())


def kinds_text(conjunction: str = "and", plural: bool = False) -> str:
    """The registered kinds in words, for headings: "gateway", "gateway or web application"."""
    labels = [k.label_plural if plural else k.label for k in _BY_KIND.values()]
    return f" {conjunction} ".join(labels) or "process"
