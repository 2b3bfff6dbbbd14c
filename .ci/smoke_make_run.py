#!/usr/bin/env python3
"""Smoke test of `make run` as a new user runs it: a fresh clone, a virtualenv built from
requirements.txt alone, the login page, a login, a gateway created, started and stopped
through the CLI, then Ctrl-C, after which no process of the portal may remain.

    python3 .ci/smoke_make_run.py [--secret-key] [--timeout SECONDS] [--keep]

--secret-key sets PORTAL_SECRET_KEY and PORTAL_ADMIN_PASSWORD (the production way);
without it both are generated, as on a first `make run`. Runs with the standard
library only: it must not need the virtualenv it checks. Exits 1 with a message
that says which step failed, and the tail of `make run`'s output.

The clone is made from the committed HEAD of this checkout (or --rev): uncommitted changes
are not in it (a note says so).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = "SmokeGate"


class SmokeFailure(Exception):
    pass


def say(text: str) -> None:
    print(f"[smoke] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# Processes, read from /proc: psutil is not in the system Python ---------------


def processes() -> dict[int, dict]:
    """pid -> ppid, session, start time, zombie flag, command line and cwd."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            cwd = ""
        table[int(entry)] = {
            "state": fields[0], "ppid": int(fields[1]), "sid": int(fields[3]), "start": fields[19],
            "cmdline": cmdline.strip(), "cwd": cwd,
        }
    return table


def descendants(root: int, table: dict[int, dict]) -> set[int]:
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        for child, info in table.items():
            if info["ppid"] == pid and child not in found:
                found.add(child)
                todo.append(child)
    return found


def portal_processes(make_pid: int, clone: Path) -> dict[tuple[int, str], str]:
    """(pid, start time) -> command line of everything that belongs to this `make run`:
    its process tree, every process in the sessions of that tree, and anything whose
    command line or working directory is in the clone (keepers, gateways)."""
    table = processes()
    tree = descendants(make_pid, table) | ({make_pid} if make_pid in table else set())
    sessions = {table[p]["sid"] for p in tree if p in table}
    mine = {}
    for pid, info in table.items():
        if pid == os.getpid() or info["state"] == "Z":
            continue
        in_clone = str(clone) in info["cmdline"] or info["cwd"].startswith(str(clone))
        if pid in tree or info["sid"] in sessions or in_clone:
            mine[(pid, info["start"])] = info["cmdline"][:150]
    return mine


def still_alive(recorded: dict[tuple[int, str], str], make_pid: int, clone: Path) -> list[str]:
    table = processes()
    left = [
        f"pid {pid}: {cmd}" for (pid, start), cmd in recorded.items()
        if pid in table and table[pid]["start"] == start and table[pid]["state"] != "Z"
    ]
    for (pid, _), cmd in portal_processes(make_pid, clone).items():
        entry = f"pid {pid}: {cmd}"
        if entry not in left:
            left.append(entry)
    return left


# The smoke test -------------------------------------------------------------


class Smoke:
    def __init__(self, work: Path, secret_key: bool, timeout: float, rev: str = "HEAD") -> None:
        self.work = work
        self.rev = rev
        self.clone = work / "portal"
        self.log_path = work / "make-run.log"
        self.secret_key = secret_key
        self.deadline = time.monotonic() + timeout
        self.port = free_port()
        self.apps_port = free_port()
        self.make: subprocess.Popen | None = None
        self.env = self.clean_env()

    def clean_env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("PORTAL_", "DJANGO_", "CELERY_", "MAKE"))
            and k not in {"REDIS_URL", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MFLAGS"}
        }
        venv = os.environ.get("VIRTUAL_ENV")
        if venv:  # an active virtualenv must not lend its packages to the clone's
            env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                          if not p.startswith(venv))
        env["PORTAL_PORT"] = str(self.port)
        env["PORTAL_APPS_PORT"] = str(self.apps_port)
        if self.secret_key:
            env["PORTAL_SECRET_KEY"] = "smoke-" + os.urandom(24).hex()
            env["PORTAL_ADMIN_PASSWORD"] = "smoke-" + os.urandom(8).hex()
        return env

    def left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise SmokeFailure("the smoke test ran out of time")
        return remaining

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no output)"
        return "\n".join(text[-lines:])

    def run(self) -> None:
        self.fresh_clone()
        say(f"make run in {self.clone} on port {self.port}"
            + (" with PORTAL_SECRET_KEY and PORTAL_ADMIN_PASSWORD set" if self.secret_key else ""))
        started = time.monotonic()
        self.make = subprocess.Popen(
            ["make", "run"], cwd=self.clone, env=self.env, stdin=subprocess.DEVNULL,
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
        self.wait_for_login_page()
        say(f"the login page answers after {time.monotonic() - started:.0f} s")
        self.check_runtime_only_venv()
        opener = self.log_in()
        self.gateway_through_the_cli(opener)
        recorded = portal_processes(self.make.pid, self.clone)
        names = " ".join(recorded.values())
        self.front_answers()
        for part in ("redis-server", "celery", "gunicorn", "webapps.front"):
            if part not in names:
                raise SmokeFailure(f"no {part} process runs under make run:\n" + "\n".join(recorded.values()))
        self.ctrl_c(recorded)

    def fresh_clone(self) -> None:
        head = git("rev-parse", "--verify", f"{self.rev}^{{commit}}")
        if git("status", "--porcelain", "--untracked-files=no"):
            say("note: this checkout has uncommitted changes; the smoke tests the committed HEAD only")
        subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(self.clone)], check=True)
        subprocess.run(["git", "-C", str(self.clone), "checkout", "--quiet", head], check=True)

    def front_answers(self) -> None:
        """The applications' front answers on its port: 404 (as JSON when asked) for a path no
        application is mounted at."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.apps_port}/no-such-app/",
                                         headers={"Accept": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"{}")
            if e.code == 404 and body.get("error") == "no application is mounted at this path":
                say(f"the applications' front answers 404 on port {self.apps_port}")
                return
            raise SmokeFailure(f"the front on port {self.apps_port} answered {e.code}: {body}") from None
        except OSError as e:
            raise SmokeFailure(f"the front on port {self.apps_port} does not answer: {e}") from None
        raise SmokeFailure(f"the front on port {self.apps_port} answered 200 for a path no application has")

    def wait_for_login_page(self) -> None:
        url = f"http://127.0.0.1:{self.port}/login/"
        while True:
            if self.make.poll() is not None:
                raise SmokeFailure(f"make run exited with code {self.make.returncode} before the login page answered")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200 and b'name="password"' in response.read():
                        return
            except (urllib.error.URLError, OSError):
                pass
            if self.left() < 1:
                raise SmokeFailure(f"the login page at {url} did not answer in time")
            time.sleep(0.5)

    def check_runtime_only_venv(self) -> None:
        python = self.clone / ".venv" / "bin" / "python"
        probe = subprocess.run([str(python), "-c", "import pytest"], capture_output=True, check=False)
        if probe.returncode == 0:
            raise SmokeFailure(f"{python} can import pytest: the virtualenv was not built from requirements.txt alone")

    def log_in(self) -> urllib.request.OpenerDirector:
        if self.secret_key:
            password = self.env["PORTAL_ADMIN_PASSWORD"]
        else:
            password_file = self.clone / "var" / "admin-password.txt"
            if not password_file.is_file():
                raise SmokeFailure(f"{password_file} was not written by the first make run")
            password = password_file.read_text().strip()
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{self.port}"
        page = opener.open(f"{base}/login/", timeout=10).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if not token:
            raise SmokeFailure("the login page has no CSRF token")
        form = urllib.parse.urlencode({
            "csrfmiddlewaretoken": token.group(1), "username": "admin", "password": password, "next": "/",
        }).encode()
        request = urllib.request.Request(f"{base}/login/", data=form, headers={"Referer": f"{base}/login/"})
        with opener.open(request, timeout=20) as response:
            body = response.read().decode()
            if "Log out" not in body or urllib.parse.urlparse(response.url).path != "/":
                raise SmokeFailure(f"logging in as admin failed: ended on {response.url}")
        say("logged in as admin")
        return opener

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.clone / ".venv" / "bin" / "python"), "manage.py", *args],
            cwd=self.clone, env=self.env, capture_output=True, text=True,
            timeout=min(timeout, self.left()), check=False,
        )

    def gateway_through_the_cli(self, opener: urllib.request.OpenerDirector) -> None:
        gateway_port = free_port()
        # With a passphrase, as the README's first example: without one any local user could use it.
        passphrase = self.clone.parent / "gateway-passphrase"
        passphrase.write_text(f"{secrets.token_urlsafe(16)}\n")
        passphrase.chmod(0o600)
        steps = [
            ("create", GATEWAY, "--port", str(gateway_port), "--passphrase-file", str(passphrase)),
            ("start", GATEWAY, "--wait", "--timeout", "60"),
        ]
        for step in steps:
            out = self.manage("gateway", *step, timeout=90)
            if out.returncode != 0:
                raise SmokeFailure(
                    f"manage.py gateway {' '.join(step)} failed ({out.returncode}):\n{out.stdout}{out.stderr}"
                )
        status = json.loads(self.manage("gateway", "status", GATEWAY, "--json").stdout or "{}")
        if status.get("state") != "running" or not port_answers(gateway_port):
            raise SmokeFailure(f"{GATEWAY} was started but is not running on port {gateway_port}: {status}")
        page = opener.open(f"http://127.0.0.1:{self.port}/gateways/", timeout=20).read().decode()
        if GATEWAY not in page:
            raise SmokeFailure(f"the Gateways page does not list {GATEWAY}")
        say(f"{GATEWAY} created and started through the CLI; it answers on port {gateway_port}")
        out = self.manage("gateway", "stop", GATEWAY, "--wait", "--timeout", "60", timeout=90)
        if out.returncode != 0:
            raise SmokeFailure(
                f"manage.py gateway stop {GATEWAY} --wait failed ({out.returncode}):\n{out.stdout}{out.stderr}"
            )
        deadline = time.monotonic() + 10
        while port_answers(gateway_port):
            if time.monotonic() > deadline:
                raise SmokeFailure(f"{GATEWAY} was stopped but port {gateway_port} still answers")
            time.sleep(0.2)
        say(f"{GATEWAY} stopped")

    def ctrl_c(self, recorded: dict[tuple[int, str], str]) -> None:
        say("Ctrl-C (SIGINT to make run's process group)")
        os.killpg(self.make.pid, signal.SIGINT)
        try:
            self.make.wait(min(60, self.left()))
        except subprocess.TimeoutExpired:
            raise SmokeFailure("make run did not exit within 60 s of Ctrl-C") from None
        deadline = time.monotonic() + 5  # a killed process may take a moment to be reaped
        while (left := still_alive(recorded, self.make.pid, self.clone)) and time.monotonic() < deadline:
            time.sleep(0.2)
        if left:
            raise SmokeFailure("processes of make run are left after Ctrl-C:\n" + "\n".join(left))
        if "[portal] stopped" not in self.log_path.read_text(errors="replace"):
            raise SmokeFailure("the launcher did not say it stopped")
        say("after Ctrl-C no process of make run is left")

    def clean_up(self) -> None:
        """Whatever a failure left running goes, so that CI never leaks processes."""
        if self.make is None:
            return
        for entry in still_alive({}, self.make.pid, self.clone):
            try:
                os.kill(int(entry.split()[1].rstrip(":")), signal.SIGKILL)
            except OSError:
                pass
        if self.make.poll() is None:
            self.make.kill()
            self.make.wait()


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secret-key", action="store_true", help="set PORTAL_SECRET_KEY and PORTAL_ADMIN_PASSWORD")
    parser.add_argument("--timeout", type=float, default=420, help="seconds for the whole smoke test")
    parser.add_argument("--rev", default="HEAD", help="the commit to clone (default: HEAD)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its log")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="portal-smoke-"))
    smoke = Smoke(work, args.secret_key, args.timeout, args.rev)
    started = time.monotonic()
    try:
        smoke.run()
    except (SmokeFailure, subprocess.SubprocessError, OSError) as exc:
        print(f"[smoke] FAILED: {exc}\n[smoke] the last lines of make run's output ({smoke.log_path}):\n"
              f"{smoke.tail()}", file=sys.stderr, flush=True)
        smoke.clean_up()
        print(f"[smoke] the clone is kept in {work} for a look", file=sys.stderr)
        return 1
    smoke.clean_up()
    say(f"passed in {time.monotonic() - started:.0f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
