"""The import check of a definition: the module imports and the callable is WSGI or ASGI as
declared, asked of the application's own interpreter (webapps/runtime/appcheck.py runs it in a
subprocess with a timeout); here its answer becomes a form message on the field to fix.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portal.process.spec import inherited_env

if TYPE_CHECKING:
    from webapps.runtime.appcheck import AppCheck

# Which field an answer of the check is about.
FIELD_OF_CODE = {
    "module-missing": "module",
    "package-missing": "python_executable",
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


@dataclass(frozen=True)
class FixKeys:
    """How a message names what to add where the fix is not a form's field: a merge file's keys
    ("RequirementsFile=") or a command's options ("--requirements ")."""

    requirements_file: str
    python_executable: str


def missing_package(result: AppCheck, *, directory: str, requirements_file: str = "",
                    keys: FixKeys | None = None) -> AppProblem:
    """The interpreter lacks a package the application imports: say which, and the two ways to
    give it one (a requirements file, named when the directory has one, or another interpreter)."""
    package = result.package or "?"
    if requirements_file:
        return AppProblem("requirements_file", f"{result.message}: the virtualenv is built from {requirements_file}; "
                                               f"add the package that provides {package} to it.")
    found = Path(directory) / "requirements.txt"
    has_file = os.path.isfile(found)  # False on any OSError, as Path.is_file is not on 3.11
    # With the folder's requirements.txt there, an interpreter was named (else that file is used,
    # WebApp.found_requirements): the fix that uses the file names the interpreter to take away.
    if keys is None:
        given = f"(this directory has requirements.txt: {found}; with no Python executable it is used)" \
            if has_file else "that lists it"
        fix = f"give a requirements file {given} or a Python executable that has {package}"
    else:
        requirements = (f"{keys.requirements_file}{found} (this directory's requirements.txt) instead of "
                        f"{keys.python_executable.strip()}" if has_file
                        else f"{keys.requirements_file}/path/to/requirements.txt (one that lists {package})")
        fix = f"add {requirements}{',' if has_file else ''} or {keys.python_executable}/path/to/python (an " \
              f"interpreter that has {package})"
    return AppProblem("requirements_file" if has_file else "python_executable", f"{result.message}: {fix}.")


def describe(result: AppCheck, *, directory: str, requirements_file: str = "",
             keys: FixKeys | None = None, module: str = "") -> AppProblem:
    """The check's answer (not ok) as a sentence on the field to fix. ``module``: the module as the
    definition names it; an answer that starts with it (``app:json is a module``) keeps it as written."""
    if result.code == "package-missing":
        return missing_package(result, directory=directory, requirements_file=requirements_file, keys=keys)
    message = result.message.rstrip(".") + "."
    if not module or not message.startswith(module):
        message = message[:1].upper() + message[1:]  # a sentence on the form ("There is no module ...")
    if result.traceback and result.code in SHOW_TRACEBACK:
        # The last lines of the traceback (the application's frames only): the error and where it was raised.
        message += " The end of the traceback: " + " | ".join(
            line.strip() for line in result.traceback[-TRACEBACK_LINES:] if line.strip())
    return AppProblem(FIELD_OF_CODE.get(result.code, "module"), message)


def check_environment(mount: str, env: dict[str, str]) -> dict[str, str]:
    """What the application's process gets, as the keeper gives it: the allowlisted part of the
    portal's environment, the definition's variables and the mount."""
    return {**inherited_env(), **env, "SCRIPT_NAME": mount}


def check_sandbox(python: str, directory: str, scratch: str, home: str = "") -> dict[str, Any]:
    """The sandbox of an application's check (its code runs when it is imported): its engine's,
    with ``scratch`` (a folder of its own for the check) as its run directory, the interpreter's
    virtualenv readable when it is one the portal built (in its folder under PORTAL_HOSTED_DIR), and
    at a start its ``home`` writable, as its engine has it (an application may keep files there
    from its import on, as the examples keep their database where their folder is not theirs)."""
    from portal import paths
    from processes.adapters import hosted_sandbox

    venv = os.path.realpath(os.path.dirname(os.path.dirname(python)))
    read_only = [venv] if venv.startswith(str(paths.HOSTED_DIR) + os.sep) else []
    return hosted_sandbox(scratch, writable=[directory, *([home] if home else [])], read_only=read_only)


def check_application(*, python: str, directory: str, module: str, callable_name: str, protocol: str,
                      env: dict[str, str], timeout: float, mount: str = "", requirements_file: str = "",
                      keys: FixKeys | None = None, run_as: str = "", instance: Any = None) -> AppProblem | None:
    """The import check of a definition being saved, run as the user its engine will run as
    (processes.accounts.check_account), in its sandbox."""
    from portal.process.accounts import own_folder
    from processes.accounts import check_account
    from webapps.runtime.appcheck import check_app

    with tempfile.TemporaryDirectory(prefix="appcheck-") as scratch:
        account = check_account("webapp", instance, run_as, scratch)
        own_folder(scratch, account)
        result = check_app(python, directory, module, callable_name, protocol,
                           env={**check_environment(mount, env), **(account.env() if account else {})},
                           timeout=timeout, sandbox=check_sandbox(python, directory, scratch), account=account)
    if result.ok:
        return None
    return describe(result, directory=directory, requirements_file=requirements_file, keys=keys, module=module)
