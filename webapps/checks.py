"""The import check of a definition: the module imports and the callable is WSGI or ASGI as
declared, asked of the application's own interpreter (webapps/runtime/appcheck.py runs it in a
subprocess with a timeout); here its answer becomes a form message on the field to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def check_application(*, python: str, directory: str, module: str, callable_name: str, protocol: str,
                      env: dict[str, str], timeout: float, mount: str = "") -> AppProblem | None:
    from webapps.runtime.appcheck import check_app

    result = check_app(python, directory, module, callable_name, protocol,
                       env=check_environment(mount, env), timeout=timeout)
    if result.ok:
        return None
    message = result.message.rstrip(".") + "."
    message = message[:1].upper() + message[1:]  # a sentence on the form ("There is no module ...")
    if result.traceback and result.code in SHOW_TRACEBACK:
        # The last lines of the traceback: the error and where it was raised.
        message += " The end of the traceback: " + " | ".join(
            line.strip() for line in result.traceback[-TRACEBACK_LINES:] if line.strip())
    return AppProblem(FIELD_OF_CODE.get(result.code, "module"), message)
