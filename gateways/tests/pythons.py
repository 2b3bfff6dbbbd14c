"""Python interpreters found on this machine, for tests that run code under other versions.

Searched: every ``python*`` on PATH, ``$PYENV_ROOT/versions/*`` (default ``~/.pyenv``),
``~/.local/share/uv/python/*``, ``/usr/bin``, ``/usr/local/bin``, ``/opt/*`` and
``/opt/python*/bin``. Each candidate is run once to ask what it is (a pyenv shim that is not
active for this directory fails and is skipped; the real interpreter behind it is found in the
versions directory anyway), so the answer is what the interpreter says, not what its path says.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Runs on Python 2.7 too, so that old interpreters are found and can be refused by the portal.
_PROBE = (
    "import sys, platform\n"
    "try:\n    import msgpack\n    m = 1\nexcept Exception:\n    m = 0\n"
    "print(sys.executable)\n"
    "print(sys.prefix)\n"
    "print('%d.%d.%d' % tuple(sys.version_info[:3]))\n"
    "print(platform.python_implementation())\n"
    "print(m)\n"
)
_NAME = re.compile(r"^python(\d+(\.\d+)?)?$")
HOW_TO_INSTALL = "install it (`pyenv install {v}`, or `apt-get install python{v}` where Debian has it) and run again"


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: tuple[int, int, int]
    implementation: str
    has_msgpack: bool

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))


def _candidates() -> list[str]:
    found: list[str] = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        # pyenv's and asdf's shims are slow shell wrappers; what they stand for is in versions/.
        if d and os.path.isdir(d) and os.path.basename(d) != "shims":
            found += [os.path.join(d, n) for n in sorted(os.listdir(d)) if _NAME.match(n)]
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for pattern in (f"{pyenv}/versions/*/bin/python", "~/.local/share/uv/python/*/bin/python3",
                    "/usr/bin/python*", "/usr/local/bin/python*", "/opt/*/bin/python3", "/opt/python*/bin/python3"):
        found += [p for p in sorted(glob.glob(os.path.expanduser(pattern))) if _NAME.match(os.path.basename(p))]
    unique: dict[str, str] = {}
    for path in found:
        venv = Path(path).parent.parent / "pyvenv.cfg"
        key = path if venv.exists() else os.path.realpath(path)  # a venv's python is its own interpreter
        if key not in unique and os.access(path, os.X_OK):
            unique[key] = path
    return list(unique.values())


@functools.lru_cache(maxsize=1)
def interpreters() -> tuple[Interpreter, ...]:
    """Every distinct interpreter found, oldest first."""
    seen: dict[str, Interpreter] = {}
    # All probes run at once: one at a time they take seconds on a loaded machine.
    running = []
    for path in _candidates():
        try:
            running.append(subprocess.Popen([path, "-E", "-s", "-c", _PROBE], stdout=subprocess.PIPE,
                                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, cwd="/"))
        except OSError:
            continue
    for proc in running:
        try:
            stdout, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            continue
        lines = stdout.split()
        if proc.returncode != 0 or len(lines) != 5:
            continue
        executable, prefix, version, implementation, msgpack = lines
        key = f"{os.path.realpath(executable)} {prefix}"  # python, python3 and python3.9 are one; a venv is its own
        if key in seen:
            continue
        major, minor, micro = (int(x) for x in version.split("."))
        seen[key] = Interpreter(executable, (major, minor, micro), implementation, msgpack == "1")
    return tuple(sorted(seen.values(), key=lambda i: (i.version, i.path)))


def find(minor: str, *, implementation: str = "CPython") -> Interpreter | None:
    """The first interpreter of version ``minor`` ("3.9", "2.7"), or None."""
    want = tuple(int(x) for x in minor.split("."))
    for interp in interpreters():
        if interp.version[:2] == want and interp.implementation == implementation:
            return interp
    return None


def require(minor: str, why: str) -> Interpreter:
    """The interpreter of that version, or a skip that says how to make the test run."""
    interp = find(minor)
    if interp is None:
        pyenv = os.environ.get("PYENV_ROOT") or "~/.pyenv"
        pytest.skip(f"needs CPython {minor} ({why}), and none was found on PATH, in {pyenv}/versions, "
                    "~/.local/share/uv/python, /usr/bin, /usr/local/bin or /opt; " + HOW_TO_INSTALL.format(v=minor))
    return interp


def without_msgpack(tmp_path: Path) -> str:
    """A CPython 3.9+ that cannot import msgpack: a fresh bare venv in ``tmp_path``.

    The venv (``python -m venv --without-pip``, under a tenth of a second) always lacks msgpack,
    so tests that need such an interpreter run on every machine; and the portal's own users (the
    gateway's own user, when the suite runs as root) can run it, which they cannot do with an
    interpreter under root's private home.
    """
    venv = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    return str(venv / "bin" / "python")
