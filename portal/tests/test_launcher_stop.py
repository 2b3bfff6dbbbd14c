"""How `make run` ends: its parts stop together (Redis last), and the closing message names only
what keeps running. Real child processes; the whole launcher is in test_launcher.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from portal import launcher
from portal.process.identity import identity_of

# A part that takes 1.5 s to stop after SIGTERM, as gunicorn or a Celery worker does, and writes
# when it stopped into the file named by its argument.
SLOW_TO_STOP = (
    "import signal, sys, time\n"
    "def bye(*_):\n"
    "    time.sleep(1.5)\n"
    "    open(sys.argv[1], 'w').write(repr(time.time()))\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "print('ready', flush=True)\n"
    "while True: time.sleep(0.1)\n"
)


def slow_part(name: str, tmp_path: Path) -> launcher.Part:
    def start() -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", SLOW_TO_STOP, str(tmp_path / name)],
                                   stdout=subprocess.PIPE, start_new_session=True)
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        return process

    part = launcher.Part(name, start, "")
    part.process = start()
    return part


def test_the_parts_stop_together_and_redis_after_them(tmp_path):
    runner = launcher.Launcher()
    runner.parts = [slow_part(name, tmp_path) for name in ("redis", "celery worker", "web server", "front")]
    started = time.monotonic()
    runner.stop_all()
    took = time.monotonic() - started
    # One after the other, four parts of 1.5 s take 6 s; the three beside Redis together 1.5 s.
    assert took < 4.5, f"stopping took {took:.1f} s"
    stopped = {name: float((tmp_path / name).read_text()) for name in ("redis", "celery worker", "web server", "front")}
    assert stopped["redis"] > max(v for k, v in stopped.items() if k != "redis")
    assert all(part.process is None for part in runner.parts)


def keeper_dir(root: Path, folder: str, pid: int) -> None:
    run_dir = root / folder / str(uuid.uuid4())
    run_dir.mkdir(parents=True)
    ident = identity_of(pid)
    data = ident.to_dict() if ident else {"pid": pid, "create_time": 1.0}
    (run_dir / "keeper.pid").write_text(json.dumps(data))


def test_only_keepers_alive_now_are_counted(tmp_path):
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        keeper_dir(tmp_path, "gateways", alive.pid)
        keeper_dir(tmp_path, "gateways", gone.pid)
        keeper_dir(tmp_path, "webapps", gone.pid)
        keeper_dir(tmp_path, "programs", alive.pid)
        assert launcher.still_kept(tmp_path) == {"gateways": 1, "webapps": 0, "programs": 1}
        assert launcher.still_kept(tmp_path / "nothing-here") == {"gateways": 0, "webapps": 0, "programs": 0}
    finally:
        alive.kill()
        alive.wait()


def test_the_closing_message_names_only_what_keeps_running():
    assert launcher.closing_message({"gateways": 0, "webapps": 0}) == "stopped"
    assert launcher.closing_message({"gateways": 1, "webapps": 0}) == (
        "stopped; 1 gateway started from the portal keeps running: stop it in the portal")
    assert launcher.closing_message({"gateways": 2, "webapps": 1}) == (
        "stopped; 2 gateways and 1 web application started from the portal keep running: stop them in the "
        "portal; the web applications answer again when the portal and its front are back")
    assert launcher.closing_message({"gateways": 1, "webapps": 0, "programs": 2}) == (
        "stopped; 1 gateway and 2 programs started from the portal keep running: stop them in the portal")
    assert launcher.closing_message({"gateways": 1, "webapps": 1, "programs": 1}).startswith(
        "stopped; 1 gateway, 1 web application and 1 program started from the portal keep running")


def test_the_start_message_names_what_an_earlier_run_left_running():
    assert launcher.found_message({"gateways": 1, "webapps": 0}) == (
        "1 gateway started from the portal before is still running: the portal takes it back as it is")
    assert launcher.found_message({"gateways": 2, "webapps": 1}) == (
        "2 gateways and 1 web application started from the portal before are still running: the portal takes "
        "them back as they are; the web applications answer again once the front is up")
