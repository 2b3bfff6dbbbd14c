"""The WSGI application granian serves for the portal: ``WEBAPP_TARGET``, its small answers in one piece.

granian loads it by path with the application's own interpreter (never imports the portal)::

    python -m granian --interface wsgi ... /path/to/serve_granian/portal_granian.py:app

The application is ``WEBAPP_TARGET`` (``module:callable``) from the environment, imported when
granian asks for ``app`` in its worker (so a reload's new worker imports the new code). granian
puts this file's folder first on sys.path to import it; the folder is taken off again at once, so
the application's own folder (granian's ``--working-dir``) is first, as when granian loads it
directly.

Why, written by hand: granian sends a WSGI answer in one piece only when the application returns
a list. Any other iterable - what Flask (werkzeug's ``ClosingIterator``), Django (``HttpResponse``)
and most frameworks return - is streamed: the head leaves at once, then each chunk, handed one by
one from the Python thread to granian's Rust runtime. A 3 KB JSON answer then often leaves in two
writes, and behind the front each write wakes the front and then the client once more: through
nginx at one connection, 10.8 context switches a request instead of 8.1 (docs/benchmarks.md, (2)).
So an answer that says its length (Content-Length) and is at most :data:`SMALL` bytes is read here
and returned as a one-item list, which granian writes with its head in one piece; an answer
without a length (a stream, server-sent events) or a larger one streams as before, unbuffered.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

TARGET_ENV = "WEBAPP_TARGET"
SMALL = 256 * 1024  # bytes read whole at most: per request in progress, so bounded by granian's threads

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


class _Rest:
    """The chunks already read, then the rest of an answer longer than it said; closes the original."""

    def __init__(self, read: list[bytes], rest: Iterator[bytes], result: Any) -> None:
        self.read = read
        self.rest = rest
        self.result = result

    def __iter__(self) -> Iterator[bytes]:
        yield from self.read
        yield from self.rest

    def close(self) -> None:
        _close(self.result)


class Whole:
    """WSGI middleware: an answer of known length up to ``small`` bytes is returned as ``[body]``."""

    def __init__(self, app: Callable[..., Iterable[bytes]], small: int = SMALL) -> None:
        self.app = app
        self.small = small

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        head: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            head[:] = [headers]
            return start_response(status, headers, exc_info)

        result = self.app(environ, start)
        if isinstance(result, list) or not head:
            return result  # a list is already one piece; no head yet: a generator, it streams
        length = next((value.strip() for name, value in head[0] if name.lower() == "content-length"), "")
        if not length.isdigit() or int(length) > self.small:
            return result
        read: list[bytes] = []
        size = 0
        try:
            chunks = iter(result)
            for chunk in chunks:
                read.append(chunk)
                size += len(chunk)
                if size > self.small:  # longer than it said: the rest streams
                    return _Rest(read, chunks, result)
        except BaseException:
            _close(result)
            raise
        _close(result)
        return [b"".join(read)]


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def load_target(target: str) -> Any:
    module_name, _, attrs = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for attr in (attrs or "app").split("."):
        obj = getattr(obj, attr)
    return obj


def __getattr__(name: str) -> Any:
    """``portal_granian:app`` is the application of WEBAPP_TARGET, wrapped in :class:`Whole`."""
    if name != "app":
        raise AttributeError(name)
    return Whole(load_target(os.environ[TARGET_ENV]))
