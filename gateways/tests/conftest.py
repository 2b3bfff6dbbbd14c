"""Real External Python Servers for the gateway tests: subprocesses of ``python -m gateways.server``."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateways.client import Gateway, connect
from gateways.protocol import make_verifier

ROOT = Path(__file__).resolve().parents[2]
# Low iteration count keeps each connect fast; the derivation itself is the same code path.
TEST_PASSPHRASE = "correct horse battery staple"
TEST_VERIFIER = make_verifier(TEST_PASSPHRASE, iterations=1000, salt=b"fixed test salt!")

SAMPLE_MODULE = '''
import threading
import time


def for_each(items, callback):
    return [callback(item) for item in items]


def bounce(n, callback):
    """Calls back into the client, which calls bounce again: reentrancy n levels deep."""
    if n <= 0:
        return "bottom"
    return callback(n - 1)


def call_twice(callback, value):
    return callback(callback(value))


def call_method(obj, name, *args):
    return getattr(obj, name)(*args)


def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


def echo(value):
    return value


def type_name(value):
    return type(value).__name__


def call_from_other_thread(callback):
    result = {}

    def run():
        try:
            callback()
        except Exception as exc:
            result["error"] = type(exc).__name__
    t = threading.Thread(target=run)
    t.start()
    t.join()
    return result.get("error")


class Engine:
    def __init__(self, power=100):
        self.power = power

    def describe(self):
        return "engine of " + str(self.power)


class Car:
    wheels = 4

    def __init__(self, make="Volvo", *, colour="red"):
        self.make = make
        self.colour = colour
        self.engine = Engine()
        self.owner = None
        self._speed = 0
        self.parts = {"doors": 5}

    @property
    def speed(self):
        return self._speed

    @speed.setter
    def speed(self, value):
        if value < 0:
            raise ValueError("speed must not be negative")
        self._speed = value

    def honk(self, times=1):
        return "honk " * times

    def pair(self):
        return (self.make, self.colour)

    def swap_engine(self):
        self.engine = Engine(self.engine.power + 1)

    @staticmethod
    def describe_class():
        return "a car class"

    @classmethod
    def build(cls, make):
        return cls(make)

    def __repr__(self):
        return "Car(" + repr(self.make) + ")"

    def __eq__(self, other):
        return isinstance(other, Car) and other.make == self.make

    __hash__ = object.__hash__


class Bag:
    """A container with items that are objects, for len/iter/getitem/setitem."""

    def __init__(self, n=3):
        self.items = [Engine(i) for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, i):
        return self.items[i]

    def __setitem__(self, i, value):
        self.items[i] = value


class Boom:
    def __init__(self):
        raise RuntimeError("constructor exploded")
'''

BROKEN_MODULE = "import module_that_does_not_exist_anywhere\n"
PKG_MODULE = "def hello():\n    return 'hello from pkgdemo.inner'\n\nclass Thing:\n    kind = 'thing'\n"


class GatewayProcess:
    def __init__(self, proc: subprocess.Popen, host: str, port: int, log_path: Path) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.log_path = log_path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""

    def wait_for_log(self, needle: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if needle in text:
                return text
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} never appeared in the server log:\n{self.log_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        return self.proc.returncode


def start_gateway_server(tmp: Path, *args: str, env_passphrase: str | None = None,
                         python: str = sys.executable, timeout: float = 15.0) -> GatewayProcess:
    """Start the server on a free port (--port 0) and wait for its readiness line."""
    log_path = tmp / f"gateway-{time.monotonic_ns()}.log"
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_PASSPHRASE"}
    if env_passphrase is not None:
        env["GATEWAY_PASSPHRASE"] = env_passphrase
    cmd = [python, "-m", "gateways.server", "--host", "127.0.0.1", "--port", "0", "--log-file", str(log_path), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    try:
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or proc.poll() is not None:
                proc.kill()
                err = proc.stderr.read().decode(errors="replace")
                raise RuntimeError(f"gateway server did not become ready: {line!r} {err}")
            if sel.select(remaining):
                chunk = os.read(proc.stdout.fileno(), 1)
                if not chunk:
                    continue
                line += chunk
    finally:
        sel.close()
    text = line.decode().strip()
    assert text.startswith("listening on "), text
    host, port = text[len("listening on "):].rsplit(":", 1)
    return GatewayProcess(proc, host, int(port), log_path)


@pytest.fixture(scope="session")
def gateway_sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("gateway_classes")
    (d / "gwsample.py").write_text(textwrap.dedent(SAMPLE_MODULE))
    (d / "gwbroken.py").write_text(BROKEN_MODULE)
    (d / "pkgdemo").mkdir()
    (d / "pkgdemo" / "__init__.py").write_text("")
    (d / "pkgdemo" / "inner.py").write_text(PKG_MODULE)
    return d


@pytest.fixture(scope="session")
def gateway_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One shared server without a passphrase."""
    server = start_gateway_server(tmp_path_factory.mktemp("gateway_server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway_server_with_passphrase(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One shared server given TEST_VERIFIER through GATEWAY_PASSPHRASE."""
    server = start_gateway_server(tmp_path_factory.mktemp("gateway_server_auth"), env_passphrase=TEST_VERIFIER)
    yield server
    server.stop()


@pytest.fixture
def gateway_connection(gateway_server: GatewayProcess, gateway_sample_dir: Path) -> Iterator[Gateway]:
    """A client connection to the shared server with the sample classes on the class path."""
    gw = connect(gateway_server.host, gateway_server.port, timeout=10.0)
    gw.add_to_class_path(str(gateway_sample_dir))
    yield gw
    gw.close()


@pytest.fixture
def pygate(gateway_processes, operator):  # type: ignore[no-untyped-def]
    """PyGate on a free local port, run by the real worker; stopped through the control service at the end."""
    from gateways.tests.factories import make_gateway
    from gateways.tests.process_helpers import free_port
    from processes import control

    gateway = make_gateway(port=free_port())
    yield gateway
    gateway.refresh_from_db()
    if gateway.state not in {"stopped", "exited", "fatal"} or gateway.intent:
        control.request(gateway, "stop", operator)
        control.wait_settled(gateway, "stop", gateway.stop_timeout + 10)
