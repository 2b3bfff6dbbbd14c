"""Check an application before it is saved or started: it imports, and it is WSGI or ASGI as declared.

The check runs in the application's own interpreter, in a subprocess of its own session with a
timeout, with the application's environment: an import that hangs or crashes the interpreter cannot
hurt the portal, and what the check sees is what the engine will see. So the interpreter starts as
the engine's does, without ``-I``: its ``site`` runs, with the application's ``PYTHONPATH`` already on
``sys.path``, so a ``sitecustomize`` there (and the ``.pth`` files it adds, or the user's site of the
user it runs as) registers what it registers for the engine. The portal's own environment stays out
all the same: the environment is built whole (:func:`webapps.checks.check_environment`: the
allowlist and the application's variables), never inherited. ``check_app.py`` is run through
:data:`BOOTSTRAP` rather than by path, so that its folder (the portal's code) is not put first on
``sys.path`` where a module of the application's could be shadowed by one of the portal's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webapps.runtime.check_app import MARKER

CHECK_SCRIPT = Path(__file__).resolve().parent / "check_app.py"
DEFAULT_TIMEOUT = 20.0
# Runs check_app.py (argv[1]) as __main__ from ``-c``: the interpreter puts only "" (the working
# directory, the application's) on sys.path for it, where a script's run by path would put its folder.
BOOTSTRAP = ("import sys; path = sys.argv[1]; del sys.argv[1]; "
             "exec(compile(open(path, 'rb').read(), path, 'exec'), {'__name__': '__main__', '__file__': path})")


@dataclass(frozen=True)
class AppCheck:
    """``ok``; ``code`` ("ok", "module-missing", "package-missing", "import-failed", "callable-missing",
    "not-callable", "not-an-app", "protocol-mismatch", "timeout", "python-failed"); ``message`` for
    the form; ``kind``: "wsgi" / "asgi" when it could be told; ``traceback``: the last lines of the
    error, through the application's frames only; ``package`` and ``importer`` (package-missing):
    the package the interpreter lacks and the file that imports it."""

    ok: bool
    code: str
    message: str
    kind: str | None = None
    traceback: list[str] = field(default_factory=list)
    package: str | None = None
    importer: str | None = None

    def __str__(self) -> str:
        return self.message


def check_app(python: str, directory: str, module: str, callable_name: str = "app", protocol: str = "wsgi",
              env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
              sandbox: dict[str, Any] | None = None, account: Any = None) -> AppCheck:
    """Import ``module`` from ``directory`` with ``python`` and look at ``callable_name``.

    ``env``: the whole environment of the check (the application's, as the keeper gives it);
    None: PATH, HOME and LANG of this process only. ``sandbox``: the Landlock policy to import
    it in (portal.process.sandbox): importing runs the application's code, as the engine will.
    ``account`` (portal.process.accounts.Account): the user it runs as, the engine's.
    """
    if env is None:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    argv = [python, "-c", BOOTSTRAP, str(CHECK_SCRIPT), directory, module, callable_name, protocol]
    if sandbox is not None:
        from portal.process import sandbox as landlock

        confined, _, refused = landlock.decide(sandbox)
        if refused:
            return AppCheck(False, "sandbox", refused)
        if confined:
            argv = landlock.wrap(argv, sandbox)
    try:
        proc = subprocess.Popen(argv, cwd=directory, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                **(account.popen_kwargs() if account is not None else {}))
    except OSError as exc:
        return AppCheck(False, "python-failed", f"{python} cannot be run: {exc.strerror or exc}; "
                                                "check the Python executable")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return AppCheck(False, "timeout", f"importing {module} did not finish within {timeout:g} s; does it wait "
                                          "for a network service, a lock or input while it is imported? Move that "
                                          "work out of import time, or fix what it waits for")
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith(MARKER):
            try:
                data = json.loads(line[len(MARKER):])
            except ValueError:
                break
            code, message, package = str(data["code"]), str(data["message"]), data.get("package")
            if code == "package-missing":  # the interpreter as the definition names it, not as it resolved
                message = f"{python} lacks the package {package!r} that {data.get('importer')} imports"
            return AppCheck(bool(data["ok"]), code, message, data.get("kind"),
                            without_check_frames(list(data.get("traceback") or [])), package, data.get("importer"))
    last = without_check_frames(err.decode(errors="replace").strip().splitlines())[-12:]
    return AppCheck(False, "python-failed", f"{python} ended without an answer (exit code {proc.returncode}) while "
                                            f"checking {module}: {last[-1] if last else 'no output'}",
                    traceback=last)


def without_check_frames(lines: list[str]) -> list[str]:
    """A traceback's lines without the frames of check_app.py (a frame: its ``File`` line and the
    more indented lines under it): a Python that failed before check_app.py could answer prints
    them on stderr, and they tell the application's author nothing."""
    kept: list[str] = []
    skipping_indent: int | None = None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if skipping_indent is not None and indent > skipping_indent and line.strip():
            continue
        skipping_indent = None
        if line.strip().startswith((f'File "{CHECK_SCRIPT}"', 'File "<string>", line 1, in <module>')):
            skipping_indent = indent
            continue
        kept.append(line)
    return kept


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: threads and children it started go too
    except ProcessLookupError:
        pass
    try:
        proc.communicate(timeout=2)
    except subprocess.TimeoutExpired:  # a grandchild in a session of its own still holds the pipes
        proc.kill()
