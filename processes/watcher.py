"""The worker's eyes on its host's gateways.

A thread in each Celery worker's main process notices at once (a few times a
second) when a keeper writes a new status or event, and copies it into the
database, so that a gateway killed with SIGKILL shows as exited or restarting
within two seconds on every page. It also ends the start and stop requests that
tasks hand over (a start task returns once the keeper is launched): see
``sync.settle_request``. Once a second it samples CPU, memory,
threads and connections of the running servers into Redis for the detail page.

``reconcile_local`` runs when the worker starts and every few seconds from beat:
it re-adopts servers whose keeper died, records the ones that died unseen, and
restarts them under their policy.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from django.db import close_old_connections

from gateways import runtime, sync
from gateways.models import Gateway
from portal.process import identity, keeper, states

log = logging.getLogger(__name__)

SCAN_INTERVAL = 0.2
# Gateways with a start or stop in flight are looked at more often: a start task returns
# after the launch, and this thread copies the outcome and ends the request (sync.settle_request).
HOT_INTERVAL = 0.025
LIST_REFRESH = 1.0
METRICS_INTERVAL = 1.0
METRICS_KEEP = 120  # samples: two minutes of history for the chart
METRICS_TTL = 15  # seconds: stale figures vanish instead of lying
IN_FLIGHT = states.IN_FLIGHT


def metrics_key(gateway_pk: int) -> str:
    return f"portal:metrics:gateway:{gateway_pk}"


def read_metrics(gateway_pk: int) -> list[dict[str, Any]]:
    from portal.health import redis_client

    try:
        raw = redis_client(0.5).lrange(metrics_key(gateway_pk), 0, -1)
    except Exception:
        return []
    return [json.loads(item) for item in raw]


def sample(pid: int, create_time: float | None) -> dict[str, Any] | None:
    proc = identity.process_if_ours(identity.ProcessIdentity(pid, create_time or 0.0)) if create_time else None
    if proc is None:
        return None
    try:
        with proc.oneshot():
            connections = [c for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_ESTABLISHED]
            return {
                "t": time.time(),
                "cpu": proc.cpu_percent(None),
                "rss": proc.memory_info().rss,
                "threads": proc.num_threads(),
                "connections": len(connections),
                "uptime": time.time() - proc.create_time(),
            }
    except psutil.Error:
        return None


class Watcher(threading.Thread):
    def __init__(self, host: str) -> None:
        super().__init__(name="gateway-watcher", daemon=True)
        self.host = host
        self.stopping = threading.Event()
        self.seen: dict[int, tuple[float, float]] = {}
        self.gateways: list[tuple[int, Path, str, int | None, float | None]] = []
        self.procs: dict[int, psutil.Process] = {}
        # Gateways in flight (a request not yet settled, or an active transition): scanned
        # every HOT_INTERVAL, and synced once a second even without a change (a keeper that
        # died mid-start writes nothing; sync finds that out).
        self.hot: set[int] = set()
        self.run_dirs: set[str] = set()

    def run(self) -> None:
        try:
            reconcile_local(self.host)
        except Exception:
            log.exception("reconcile at worker start failed")
        next_list = next_metrics = next_scan = 0.0
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
                if now >= next_metrics:
                    self.collect_metrics()
                    next_metrics = now + METRICS_INTERVAL
            except Exception:
                log.exception("gateway watcher pass failed")
            finally:
                close_old_connections()

    def new_run_dir(self) -> bool:
        """A run directory appeared (a definition's first launch on this host): list it now,
        not at the next refresh. One directory listing, no query."""
        try:
            names = {entry.name for entry in os.scandir(runtime.paths.RUN_DIR / "gateways")}
        except OSError:
            return False
        fresh = bool(names - self.run_dirs)
        self.run_dirs = names
        return fresh

    def refresh_list(self) -> None:
        rows = list(Gateway.objects.filter(run_host=self.host).values_list(
            "pk", "run_key", "state", "pid", "pid_create_time", "intent"
        ))
        self.gateways = [
            (pk, runtime.paths.RUN_DIR / "gateways" / str(key), state, pid, ct) for pk, key, state, pid, ct, _ in rows
        ]
        self.hot = {pk for pk, _, state, _, _, intent in rows if intent or state in IN_FLIGHT}

    def scan(self, everything: bool = True, resync_hot: bool = False) -> None:
        for pk, rd, *_ in self.gateways:
            if not everything and pk not in self.hot:
                continue
            stamp = (_mtime(rd / "status.json"), _mtime(rd / "events.jsonl"))
            if stamp != self.seen.get(pk) or (resync_hot and pk in self.hot):
                self.seen[pk] = stamp
                gateway = sync.sync(pk, self.host)
                if gateway is not None and (gateway.intent or gateway.state in IN_FLIGHT):
                    self.hot.add(pk)
                else:
                    self.hot.discard(pk)

    def collect_metrics(self) -> None:
        from portal.health import redis_client

        running = [(pk, pid, ct) for pk, _, state, pid, ct in self.gateways if state == states.RUNNING and pid]
        if not running:
            return
        client = redis_client(0.5)
        pipe = client.pipeline()
        for pk, pid, ct in running:
            figures = sample(pid, ct)
            if figures is None:
                continue
            key = metrics_key(pk)
            pipe.rpush(key, json.dumps(figures))
            pipe.ltrim(key, -METRICS_KEEP, -1)
            pipe.expire(key, METRICS_TTL)
        pipe.execute()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0.0


_watcher: Watcher | None = None


def start_watcher(host: str) -> Watcher:
    global _watcher
    if _watcher is None or not _watcher.is_alive():
        _watcher = Watcher(host)
        _watcher.start()
    return _watcher


def stop_watcher() -> None:
    if _watcher is not None:
        _watcher.stopping.set()


def reconcile_local(host: str) -> dict[str, int]:
    """The truth about this host's gateways, from the operating system, into the database."""
    from gateways.tasks import start_gateway

    counts = {"checked": 0, "adopted": 0, "died": 0, "restarted": 0}
    for gateway in Gateway.objects.filter(run_host=host):
        counts["checked"] += 1
        rd = runtime.run_dir(gateway)
        status = keeper.read_status(rd)
        if status is None:
            continue
        active = status.get("state") in states.ACTIVE
        if active and not keeper.keeper_alive(rd):
            child = keeper.child_identity(status)
            if identity.is_alive(child):
                try:
                    keeper.adopt(rd)
                except keeper.KeeperError as e:
                    log.warning("could not adopt %s: %s", gateway.name, e)
                    continue
                counts["adopted"] += 1
                sync.record(
                    gateway, message=f"Re-adopted pid {child.pid}: its keeper had died", trigger="reconcile",
                    level="warning", host=host,
                )
            else:
                keeper.reconcile(rd)
                counts["died"] += 1
                gateway = sync.sync(gateway.pk, host)
                if (gateway and gateway.restart_policy != Gateway.RestartPolicy.NEVER
                        and gateway.intent != "stop" and gateway.requested != "stop"):
                    counts["restarted"] += 1
                    # Tied to the latest request: a Stop recorded meanwhile makes it do nothing.
                    start_gateway(gateway.pk, "reconcile", gateway.request_seq)
                continue
        sync.sync(gateway.pk, host)
    return counts
