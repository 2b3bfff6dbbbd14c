"""An application's own virtualenv, built from its requirements file plus its engine.

Layout under the root the portal gives (``var-hosted/webapps/<id>/venvs/``, its user's)::

    env-<hash>/             one virtualenv per content of the requirements file + engine + Python
    env-<hash>/portal-venv.json   the stamp, written last: a virtualenv without it is unfinished
    current -> env-<hash>   the one the application runs with
    .lock                   one build at a time

A change of the file (or of the engine, or of the base interpreter) gives a new hash, so the new
virtualenv is built beside the old one while the application keeps running from the old, and
``current`` is switched (atomically: a new link renamed over the old) only once it is complete.
The previous virtualenv is kept (a running process may still import from it); older ones go.

The virtualenv is created without pip (``python -m venv --without-pip`` takes a tenth of a
second; ensurepip takes seconds) and filled by the portal's own pip through ``pip --python``,
which installs into another interpreter's environment (pip 22.3 and newer).
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from portal.process.spec import inherited_env
from webapps.runtime.engines import ENGINE_REQUIREMENTS

STAMP_FILE = "portal-venv.json"
CURRENT = "current"
BUILD_TIMEOUT = 1800.0
ERROR_LINES = 15
# pip's output kept for the detail page after a failed build: all of it, up to this many lines (the
# last ones: pip's errors come at the end).
OUTPUT_LINES = 2000
# What pip needs from the portal's environment besides the allowlist: its own settings (index,
# find-links, certificates) and the proxies. Nothing else: pip runs third-party build code, and
# the portal's secrets stay out of it.
PIP_ENV_PREFIXES = ("PIP_", "XDG_CONFIG", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                    "no_proxy", "ALL_PROXY", "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

Progress = Callable[[str], None]


class VenvError(Exception):
    """The virtualenv could not be built; the message says why (pip's ``ERROR:`` lines) and what to
    do; ``lines``: the whole output (up to OUTPUT_LINES), for the detail page."""

    def __init__(self, message: str, lines: list[str] | None = None) -> None:
        super().__init__(message)
        self.lines = lines or []


def pip_errors(lines: list[str]) -> list[str]:
    """pip's own ``ERROR:`` lines, each once, in order: the cause ("No matching distribution found
    for ..."), without the warnings and the progress around it."""
    found: list[str] = []
    for line in lines:
        line = line.strip()
        if line.startswith("ERROR:") and line not in found:
            found.append(line)
    return found


@dataclass(frozen=True)
class Venv:
    path: Path  # the virtualenv (root/env-<hash>)
    python: Path  # its interpreter: what the application's engine runs with
    stamp: dict  # what it was built from
    built: bool  # False: it was already up to date


def python_identity(base_python: str) -> str:
    """The base interpreter's version and real path (a new Python means a new virtualenv)."""
    try:
        out = subprocess.run([base_python, "-c", "import sys; print(sys.version); print(sys.base_prefix)"],
                             capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenvError(f"{base_python} cannot be run ({exc}); choose a Python 3.9 or newer") from None
    if out.returncode:
        raise VenvError(f"{base_python} failed (exit {out.returncode}): {out.stderr.strip()[-300:]}")
    return f"{os.path.realpath(base_python)}\n{out.stdout.strip()}"


def engine_requirement(engine: str | None) -> str | None:
    if engine is None:
        return None
    try:
        return ENGINE_REQUIREMENTS[engine]
    except KeyError:
        raise VenvError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINE_REQUIREMENTS)}") from None


def venv_hash(requirements_text: bytes, engine: str | None, python_id: str) -> str:
    digest = hashlib.sha256()
    for part in (requirements_text, (engine_requirement(engine) or "").encode(), python_id.encode()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def read_requirements(requirements: Path | str) -> bytes:
    path = Path(requirements)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise VenvError(f"the requirements file {path} does not exist; check its path") from None
    except IsADirectoryError:
        raise VenvError(f"{path} is a folder; give the requirements file itself (requirements.txt)") from None
    except OSError as exc:
        raise VenvError(f"the requirements file {path} cannot be read ({exc.strerror}); check its permissions") \
            from None


def current_venv(root: Path | str) -> Venv | None:
    """The virtualenv ``current`` points to, when it is complete."""
    link = Path(root) / CURRENT
    try:
        target = link.parent / os.readlink(link)
        stamp = json.loads((target / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return None
    return Venv(target, target / "bin" / "python", stamp, built=False)


def venv_state(root: Path | str, requirements: Path | str, engine: str | None,
               base_python: str = sys.executable) -> str:
    """"missing" (never built), "stale" (the file, engine or Python changed) or "current"."""
    venv = current_venv(root)
    if venv is None:
        return "missing"
    wanted = venv_hash(read_requirements(requirements), engine, python_identity(base_python))
    return "current" if venv.stamp.get("hash") == wanted else "stale"


def ensure_venv(root: Path | str, requirements: Path | str, engine: str | None,
                base_python: str = sys.executable, progress: Progress | None = None,
                timeout: float = BUILD_TIMEOUT) -> Venv:
    """The application's virtualenv, built or rebuilt if the requirements, engine or Python changed.

    ``progress`` gets each line of output as it comes (for the page and Activity). Raises
    :class:`VenvError` with the last lines when pip fails. Safe to call from two workers at
    once: the second waits for the first and finds the virtualenv built.
    """
    root = Path(root)
    say = progress or (lambda line: None)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = read_requirements(requirements)
        python_id = python_identity(base_python)
        digest = venv_hash(text, engine, python_id)
        venv = current_venv(root)
        if venv is not None and venv.stamp.get("hash") == digest:
            say(f"the virtualenv {venv.path} is up to date")
            return venv
        target = root / f"env-{digest[:16]}"
        stamp = {"hash": digest, "requirements": str(requirements), "engine": engine_requirement(engine),
                 "python": python_id.splitlines()[0], "python_version": python_id.splitlines()[1],
                 "built_at": None}
        if not (target / STAMP_FILE).exists():
            _build(target, Path(requirements), text, engine, base_python, say, timeout)
            stamp["built_at"] = time.time()
            (target / STAMP_FILE).write_text(json.dumps(stamp, indent=1))
        _switch(root, target)
        previous = venv.path if venv is not None else None
        _remove_old(root, keep={target.name, previous.name if previous else ""})
        say(f"the application now runs with {target}")
        return Venv(target, target / "bin" / "python", stamp, built=True)


def _build(target: Path, requirements: Path, text: bytes, engine: str | None, base_python: str,
           say: Progress, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    shutil.rmtree(target, ignore_errors=True)  # an unfinished build (no stamp) is started again
    say(f"creating the virtualenv {target} with {base_python}")
    _run([base_python, "-m", "venv", "--without-pip", str(target)], say, deadline, "creating the virtualenv",
         cwd=target.parent)
    packages = [engine_requirement(engine)] if engine else []
    has_requirements = any(line.strip() and not line.strip().startswith(b"#") for line in text.splitlines())
    if not has_requirements and not packages:
        say("nothing to install")
        return
    argv = [sys.executable, "-m", "pip", "--python", str(target / "bin" / "python"), "install",
            "--progress-bar", "off", "--disable-pip-version-check"]
    if has_requirements:
        argv += ["-r", str(requirements.resolve())]
    argv += packages
    say("installing " + " and ".join(
        ([f"the requirements of {requirements}"] if has_requirements else []) + packages))
    try:
        _run(argv, say, deadline, "pip", cwd=requirements.resolve().parent)
    except VenvError:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _run(argv: list[str], say: Progress, deadline: float, what: str, cwd: Path) -> None:
    env = inherited_env(dict(os.environ))
    env.update({k: v for k, v in os.environ.items() if k.startswith(PIP_ENV_PREFIXES)})
    last: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
                                start_new_session=True)
    except OSError as exc:
        raise VenvError(f"{what} could not start: {exc.strerror or exc}") from None
    assert proc.stdout is not None
    # A pip that hangs without a word (a dead index) is killed at the deadline all the same.
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), proc.kill)
    watchdog.start()
    try:
        for line in proc.stdout:  # lines as pip writes them: the page shows the progress live
            line = line.rstrip()
            if line:
                last.append(line)
                say(line)
        rc = proc.wait()
    finally:
        watchdog.cancel()
    if time.monotonic() >= deadline:
        raise VenvError(f"{what} did not finish in time; try again, or build the virtualenv by hand", list(last))
    if rc:
        errors = pip_errors(list(last))
        # Its ERROR: lines say the cause; without any (a crash), its last line is the best clue.
        said = " ".join(errors) or (f"its last line: {last[-1]}" if last else "no output")
        raise VenvError(f"{what} failed (exit code {rc}): {said.rstrip('.')}. Fix the requirements file and save "
                        "it again", list(last))


def _switch(root: Path, target: Path) -> None:
    """Point ``current`` at ``target`` in one rename: a reader sees the old or the new, never none."""
    tmp = root / f".{CURRENT}.{os.getpid()}"
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target.name, tmp)  # relative: the root may be moved as a whole
    os.replace(tmp, root / CURRENT)


def _remove_old(root: Path, keep: set[str]) -> None:
    for entry in root.iterdir():
        if entry.name.startswith("env-") and entry.name not in keep and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


# -- the build as a process of its own ------------------------------------------------------
# The build runs third-party code (pip's build backends, a setup.py), so the portal runs it as the
# application's own user, in its sandbox: ``python -m webapps.runtime.venvs ROOT REQUIREMENTS
# ENGINE``. Everything it does under ROOT (the lock, the stamp, the ``current`` link, removing old
# virtualenvs) is done as that user, never as the portal in a folder the application can change.
# It speaks one JSON object a line on its output: {"line": ...} as pip goes, then {"ok": ...}.


def main(args: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m webapps.runtime.venvs",
                                     description="Build an application's virtualenv (see this module).")
    parser.add_argument("root")
    parser.add_argument("requirements")
    parser.add_argument("engine", nargs="?", default="")
    options = parser.parse_args(args)

    def say(line: str) -> None:
        print(json.dumps({"line": line}), flush=True)

    try:
        venv = ensure_venv(options.root, options.requirements, options.engine or None, progress=say)
    except VenvError as exc:
        print(json.dumps({"ok": False, "error": str(exc), "lines": exc.lines}), flush=True)
        return 1
    print(json.dumps({"ok": True, "path": str(venv.path), "built": venv.built}), flush=True)
    return 0


def build_as(root: Path | str, requirements: Path | str, engine: str | None, *, argv_prefix: list[str],
             env: dict[str, str], cwd: str, popen_kwargs: dict, progress: Progress | None = None,
             timeout: float = BUILD_TIMEOUT, cancel: threading.Event | None = None) -> Venv:
    """Run :func:`main` in a process of its own (``argv_prefix``: the sandbox's wrapper, or nothing;
    ``popen_kwargs``: the user to run as) and give its outcome as :func:`ensure_venv` does.
    ``cancel`` set: the build's whole session is killed at once, and VenvError says so (an
    unfinished virtualenv has no stamp, so it is never current, and the next build removes it)."""
    say = progress or (lambda line: None)
    argv = [*argv_prefix, sys.executable, "-m", "webapps.runtime.venvs", str(root), str(requirements), engine or ""]
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
                                start_new_session=True, **popen_kwargs)
    except OSError as exc:
        raise VenvError(f"the build could not start: {exc.strerror or exc}") from None
    assert proc.stdout is not None
    watchdog = threading.Timer(timeout, lambda: _kill_session(proc))
    watchdog.start()
    ended = threading.Event()

    def stop_when_cancelled() -> None:
        # Polled rather than one cancel.wait(): the thread must also end when the build does.
        while not ended.wait(0.05):
            if cancel is not None and cancel.is_set():
                _kill_session(proc)
                return

    canceller = threading.Thread(target=stop_when_cancelled, daemon=True)
    if cancel is not None:
        canceller.start()
    outcome: dict | None = None
    other: collections.deque[str] = collections.deque(maxlen=ERROR_LINES)
    try:
        for text in proc.stdout:
            try:
                message = json.loads(text)
            except ValueError:
                message = None
            if not isinstance(message, dict):  # the wrapper's own words (a sandbox that cannot be set up)
                if text.strip():
                    other.append(text.rstrip())
                    say(text.rstrip())
                continue
            if "line" in message:
                say(str(message["line"]))
            else:
                outcome = message
        rc = proc.wait()
    finally:
        watchdog.cancel()
        ended.set()
    if cancel is not None and cancel.is_set():
        raise VenvError("the build was stopped: a later request replaced its start", list(other))
    if outcome is None:
        raise VenvError(f"the build ended without an answer (exit code {rc})", list(other))
    if not outcome.get("ok"):
        raise VenvError(str(outcome.get("error")), [str(line) for line in outcome.get("lines") or []])
    venv = current_venv(root)
    if venv is None:
        raise VenvError("the build said it was done, but left no usable virtualenv; build it again")
    return Venv(venv.path, venv.python, venv.stamp, built=bool(outcome.get("built")))


def _kill_session(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
