"""The import check of a definition: the module imports and the callable is WSGI or ASGI as
declared, asked of the application's own interpreter (webapps/runtime/appcheck.py runs it in a
subprocess with a timeout); here its answer becomes a form message on the field to fix.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

from portal.process.spec import inherited_env

# Which field an answer of the check is about.
FIELD_OF_CODE = {
    "module-missing": "module",
    "import-failed": "module",
    "timeout": "module",
    "callable-missing": "callable",
    "not-callable": "callable",
    "not-an-app": "callable",
    "protocol-mismatch": "protocol",
    "python-failed": "python_executable",
}
TRACEBACK_LINES = 6
# The answers where the application's own code failed: where it failed helps.
SHOW_TRACEBACK = {"import-failed", "python-failed"}


@dataclass(frozen=True)
class AppProblem:
    field: str
    message: str


def check_environment(mount: str, env: dict[str, str]) -> dict[str, str]:
    """What the application's process gets, as the keeper gives it: the allowlisted part of the
    portal's environment, the definition's variables and the mount."""
    return {**inherited_env(), **env, "SCRIPT_NAME": mount}


def check_sandbox(python: str, directory: str, scratch: str) -> dict[str, Any]:
    """The sandbox of an application's check (its code runs when it is imported): its engine's,
    with ``scratch`` (a folder of its own for the check) as its run directory, and the interpreter's
    virtualenv readable when it is one the portal built in var/venvs/."""
    from django.conf import settings

    from portal import paths
    from portal.process.sandbox import portal_policy

    venv = os.path.realpath(os.path.dirname(os.path.dirname(python)))
    read_only = [venv] if venv.startswith(str(paths.VAR_DIR) + os.sep) else []
    return portal_policy(var_dir=str(paths.VAR_DIR), base_dir=str(settings.BASE_DIR), run_dir=scratch,
                         writable=[directory], read_only=read_only, mode=settings.PORTAL_SANDBOX,
                         extra_writable=settings.PORTAL_SANDBOX_WRITABLE)


def check_application(*, python: str, directory: str, module: str, callable_name: str, protocol: str,
                      env: dict[str, str], timeout: float, mount: str = "") -> AppProblem | None:
    from webapps.runtime.appcheck import check_app

    with tempfile.TemporaryDirectory(prefix="appcheck-") as scratch:
        result = check_app(python, directory, module, callable_name, protocol,
                           env=check_environment(mount, env), timeout=timeout,
                           sandbox=check_sandbox(python, directory, scratch))
    if result.ok:
        return None
    message = result.message.rstrip(".") + "."
    message = message[:1].upper() + message[1:]  # a sentence on the form ("There is no module ...")
    if result.traceback and result.code in SHOW_TRACEBACK:
        # The last lines of the traceback: the error and where it was raised.
        message += " The end of the traceback: " + " | ".join(
            line.strip() for line in result.traceback[-TRACEBACK_LINES:] if line.strip())
    return AppProblem(FIELD_OF_CODE.get(result.code, "module"), message)
