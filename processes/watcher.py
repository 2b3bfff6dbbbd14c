"""The worker's eyes on its host's managed processes, of every kind.

A thread in each Celery worker's main process notices at once (a few times a
second) when a keeper writes a new status or event, and copies it into the
database, so that a process killed with SIGKILL shows as exited or restarting
within two seconds on every page. It follows the keepers of every registered
kind (processes/adapters.py). It also ends the start and stop requests that
tasks hand over (a start task returns once the keeper is launched): see
``sync.settle_request``. In the worker of the host's queue (not the build worker:
one sampler per host), it samples once a second the CPU, memory and threads of the
running processes into Redis for the detail pages, summed over each process's whole
tree (a gunicorn master does little; its workers do the work), from one read of the
process table (``TreeSampler``); open TCP connections only for the kinds that show
them (``counts_connections``: gateways), which cost far more to count.

``reconcile_local`` runs when the worker starts and every few seconds from beat:
it re-adopts processes whose keeper died, records the ones that died unseen, and
restarts them under their policy.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import psutil
from django.db import close_old_connections

from portal.process import identity, keeper, states
from portal.process.states import START, STOP
from processes import hosts, pipeline, sync
from processes.adapters import ProcessAdapter, adapter_for, all_adapters

log = logging.getLogger(__name__)

SCAN_INTERVAL = 0.2
# Processes with a start or stop in flight are looked at more often: a start task returns
# after the launch, and this thread copies the outcome and ends the request (sync.settle_request).
HOT_INTERVAL = 0.025
LIST_REFRESH = 1.0
METRICS_INTERVAL = 1.0
METRICS_KEEP = 120  # samples: two minutes of history for the chart
METRICS_TTL = 15  # seconds: stale figures vanish instead of lying
IN_FLIGHT = states.IN_FLIGHT


def metrics_key(kind: str, pk: int) -> str:
    return f"portal:metrics:{kind}:{pk}"


def read_metrics(kind: str, pk: int) -> list[dict[str, Any]]:
    from portal.health import redis_client

    try:
        raw = redis_client(0.5).lrange(metrics_key(kind, pk), 0, -1)
    except Exception:
        return []
    return [json.loads(item) for item in raw]


_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ProcStat(NamedTuple):
    """What one read of /proc/PID/stat says of a process."""

    ppid: int
    start: int  # clock ticks after boot: with the pid, which process this is
    cpu: float  # seconds, user + system
    threads: int
    rss: int  # bytes


def read_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat of a live process; None when gone or a zombie (which adds nothing)."""
    # os.open/os.read: three system calls, where open() adds an fstat and an ioctl.
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # The command's name, in parentheses, may hold spaces and parentheses: fields follow the last ")".
    fields = data[data.rfind(b")") + 2:].split()
    if len(fields) < 22 or fields[0] in (b"Z", b"X"):
        return None
    return ProcStat(ppid=int(fields[1]), start=int(fields[19]), cpu=(int(fields[11]) + int(fields[12])) / _TICKS,
                    threads=int(fields[17]), rss=int(fields[21]) * _PAGE)


def process_table() -> dict[int, ProcStat]:
    """Every live process of the host, one read of /proc/PID/stat each."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                table[int(name)] = stat
    return table


class TreeSampler:
    """CPU, memory, threads (and, for the kinds that show them, connections) of a process and all
    its descendants, summed.

    One pass reads /proc/PID/stat of every process once (:meth:`snapshot`) and answers every tree
    from that table: parents, CPU time, threads and resident memory are all in that one file.
    (psutil would list the whole of /proc again for each tree's children, then read three files
    per process, and its connection count lists each process's descriptors and the host's TCP
    table: thousands of reads a second for a few idle trees.) CPU is measured between two samples
    of the same process (keyed by pid and start time: a reused pid is another process); the first
    sample of a process counts 0, as psutil's ``cpu_percent(None)`` does. Processes not seen in a
    pass are dropped by :meth:`forget_others`.
    """

    def __init__(self) -> None:
        self.last: dict[tuple[int, int], tuple[float, float]] = {}  # (pid, start) -> (cpu seconds, when)
        self.seen: set[tuple[int, int]] = set()
        self.table: dict[int, ProcStat] | None = None
        self.children: dict[int, list[int]] = {}
        self.boot_time = 0.0

    def snapshot(self) -> None:
        """Read the process table once for the samples of this pass (until :meth:`forget_others`)."""
        self.boot_time = psutil.boot_time()
        self.table = process_table()
        self.children = {}
        for pid, stat in self.table.items():
            self.children.setdefault(stat.ppid, []).append(pid)

    def sample(self, pid: int, create_time: float | None, connections: bool = True) -> dict[str, Any] | None:
        """The tree's figures; ``connections``: count its established TCP connections too (costly)."""
        if not create_time:
            return None
        alone = self.table is None
        if alone:
            self.snapshot()  # a sample outside a pass reads the table for itself
        try:
            return self._sample(pid, create_time, connections)
        finally:
            if alone:
                self.table, self.children = None, {}

    def _sample(self, pid: int, create_time: float, connections: bool) -> dict[str, Any] | None:
        assert self.table is not None
        root = self.table.get(pid)
        if root is None:
            return None
        started = self.boot_time + root.start / _TICKS  # as psutil's create_time()
        if abs(started - create_time) > identity.CREATE_TIME_TOLERANCE:
            return None  # the pid was reused by another process
        now = time.monotonic()
        tree, todo = [], [pid]
        while todo:
            current = todo.pop()
            tree.append(current)
            todo.extend(self.children.get(current, ()))
        cpu = 0.0
        rss = threads = 0
        for member in tree:
            stat = self.table[member]
            key = (member, stat.start)
            self.seen.add(key)
            before = self.last.get(key)
            self.last[key] = (stat.cpu, now)
            if before is not None and now > before[1]:
                cpu += 100 * (stat.cpu - before[0]) / (now - before[1])
            rss += stat.rss
            threads += stat.threads
        return {
            "t": time.time(),
            "cpu": cpu,
            "rss": rss,
            "threads": threads,
            "connections": self.connections(tree) if connections else None,
            "processes": len(tree),
            "uptime": time.time() - started,
        }

    @staticmethod
    def connections(tree: list[int]) -> int:
        # A connection inherited over fork is one connection, seen from several processes.
        seen: set[tuple[Any, Any]] = set()
        for member in tree:
            try:
                seen |= {(c.laddr, c.raddr) for c in psutil.Process(member).net_connections(kind="tcp")
                         if c.status == psutil.CONN_ESTABLISHED}
            except psutil.Error:
                continue  # a worker that ended meanwhile adds nothing
        return len(seen)

    def forget_others(self) -> None:
        """Drop the processes not sampled since the last call, and the pass's table."""
        self.last = {key: value for key, value in self.last.items() if key in self.seen}
        self.seen = set()
        self.table = None
        self.children = {}


def sample(pid: int, create_time: float | None, connections: bool = True) -> dict[str, Any] | None:
    """One sample of a process tree (CPU of a first sample is 0: see TreeSampler)."""
    return TreeSampler().sample(pid, create_time, connections=connections)


class Followed(NamedTuple):
    kind: str
    pk: int
    run_dir: Path
    state: str
    pid: int | None
    create_time: float | None


class Watcher(threading.Thread):
    def __init__(self, host: str, metrics: bool = True) -> None:
        super().__init__(name="process-watcher", daemon=True)
        self.host = host
        self.metrics = metrics  # sample the figures (one worker per host does)
        self.stopping = threading.Event()
        self.seen: dict[tuple[str, int], tuple[float, float]] = {}
        self.followed: list[Followed] = []
        self.sampler = TreeSampler()
        # Processes in flight (a request not yet settled, or an active transition): scanned
        # every HOT_INTERVAL, and synced once a second even without a change (a keeper that
        # died mid-start writes nothing; sync finds that out).
        self.hot: set[tuple[str, int]] = set()
        self.run_dirs: dict[str, set[str]] = {}

    def run(self) -> None:
        try:
            reconcile_local(self.host)
        except Exception:
            log.exception("reconcile at worker start failed")
        next_list = next_metrics = next_scan = next_beat = 0.0
        while not self.stopping.wait(HOT_INTERVAL if self.hot else SCAN_INTERVAL):
            try:
                now = time.monotonic()
                fresh = self.new_run_dir()
                listed = fresh or now >= next_list
                if listed:
                    self.refresh_list()
                    next_list = now + LIST_REFRESH
                self.scan(everything=now >= next_scan, resync_hot=listed)
                if now >= next_scan:
                    next_scan = now + SCAN_INTERVAL
                if self.metrics and now >= next_metrics:
                    self.collect_metrics()
                    next_metrics = now + METRICS_INTERVAL
                if self.metrics and now >= next_beat:
                    # The host's worker (one per host) says that the host is up: processes/hosts.py.
                    hosts.beat(self.host)
                    hosts.host_beat.send(sender=Watcher, host=self.host)
                    next_beat = now + hosts.beat_seconds()
            except Exception:
                log.exception("process watcher pass failed")
            finally:
                close_old_connections()

    def new_run_dir(self) -> bool:
        """A run directory appeared (a definition's first launch on this host): list it now,
        not at the next refresh. One directory listing per kind, no query."""
        fresh = False
        for kind in all_adapters():
            try:
                names = {entry.name for entry in os.scandir(kind.run_root())}
            except OSError:
                continue
            fresh = fresh or bool(names - self.run_dirs.get(kind.kind, set()))
            self.run_dirs[kind.kind] = names
        return fresh

    def refresh_list(self) -> None:
        followed, hot = [], set()
        for kind in all_adapters():
            rows = kind.model.groups.filter(run_host=self.host).values_list(
                "pk", "run_key", "state", "pid", "pid_create_time", "intent"
            )
            root = kind.run_root()
            for pk, key, state, pid, ct, intent in rows:
                followed.append(Followed(kind.kind, pk, root / str(key), state, pid, ct))
                if intent or state in IN_FLIGHT:
                    hot.add((kind.kind, pk))
        self.followed, self.hot = followed, hot

    def scan(self, everything: bool = True, resync_hot: bool = False) -> None:
        for row in self.followed:
            key = (row.kind, row.pk)
            if not everything and key not in self.hot:
                continue
            rd = row.run_dir
            stamp = (_mtime(rd / "status.json"), _mtime(rd / "events.jsonl"))
            if stamp != self.seen.get(key) or (resync_hot and key in self.hot):
                self.seen[key] = stamp
                obj = sync.sync(row.kind, row.pk, self.host)
                if obj is not None and (obj.intent or obj.state in IN_FLIGHT):
                    self.hot.add(key)
                else:
                    self.hot.discard(key)

    def collect_metrics(self) -> None:
        from portal.health import redis_client

        running = [row for row in self.followed if row.state == states.RUNNING and row.pid]
        if not running:
            self.sampler.forget_others()
            return
        client = redis_client(0.5)
        pipe = client.pipeline()
        self.sampler.snapshot()
        for row in running:
            counts = adapter_for(row.kind).counts_connections
            figures = self.sampler.sample(row.pid, row.create_time, connections=counts)
            if figures is None:
                continue
            key = metrics_key(row.kind, row.pk)
            pipe.rpush(key, json.dumps(figures))
            pipe.ltrim(key, -METRICS_KEEP, -1)
            pipe.expire(key, METRICS_TTL)
        self.sampler.forget_others()
        pipe.execute()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0.0


_watcher: Watcher | None = None


def start_watcher(host: str, metrics: bool = True) -> Watcher:
    global _watcher
    if _watcher is None or not _watcher.is_alive():
        _watcher = Watcher(host, metrics=metrics)
        _watcher.start()
    return _watcher


def stop_watcher() -> None:
    if _watcher is not None:
        _watcher.stopping.set()


def reconcile_local(host: str) -> dict[str, int]:
    """The truth about this host's processes, of every kind, from the operating system, into the database."""
    counts = {"checked": 0, "adopted": 0, "died": 0, "restarted": 0}
    for kind in all_adapters():
        for obj in kind.model.groups.filter(run_host=host):
            _reconcile_one(kind, obj, host, counts)
    return counts


def _reconcile_one(kind: ProcessAdapter, obj: Any, host: str, counts: dict[str, int]) -> None:
    counts["checked"] += 1
    rd = kind.run_dir(obj)
    status = keeper.read_status(rd)
    if status is None:
        return
    active = status.get("state") in states.ACTIVE
    if active and not keeper.keeper_alive(rd):
        child = keeper.child_identity(status)
        if identity.is_alive(child):
            try:
                keeper.adopt(rd)
            except keeper.KeeperError as e:
                log.warning("could not adopt %s: %s", obj.name, e)
                return
            counts["adopted"] += 1
            sync.record(
                obj, message=f"Re-adopted pid {child.pid}: its keeper had died", trigger="reconcile",
                level="warning", host=host,
            )
        else:
            keeper.reconcile(rd)
            counts["died"] += 1
            obj = sync.sync(kind, obj.pk, host)
            if (obj and kind.restart_policy(obj) != "never"
                    and obj.intent != STOP and obj.requested != STOP):
                counts["restarted"] += 1
                # Tied to the latest request: a Stop recorded meanwhile makes it do nothing. A start
                # with a virtualenv to build goes to the build worker; the others start here, now.
                if pipeline.needs_long_work(kind, obj):
                    try:
                        pipeline.send(START, obj, "reconcile", obj.request_seq)
                    except Exception as e:  # the broker: the next reconcile tries again
                        log.warning("could not send the restart of %s: %s", obj.name, e)
                else:
                    pipeline.start(kind, obj.pk, "reconcile", obj.request_seq)
            return
    sync.sync(kind, obj.pk, host)
