"""The journal of a run directory: status.json (the current truth) and events.jsonl
(one line per state transition, ``seq`` growing across keepers).

Only one writer exists at a time: the keeper, or whoever holds keeper.lock while no
keeper runs (:func:`reconcile`, ``keeper.request_stop``). Secret values are masked in
both files.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portal.process import identity
from portal.process.rundir import (
    EVENTS_FILE,
    STATUS_FILE,
    child_identity,
    lock_unless_keeper,
    log_file_of,
    read_json,
    read_spec,
    unlock,
    write_atomic,
)
from portal.process.spec import Spec
from portal.process.states import STOPPED, State, check_transition, is_active

log = logging.getLogger("portal.process.keeper")


def read_status(run_dir: Path | str) -> dict[str, Any] | None:
    """The current status.json, or None when the process was never started."""
    return read_json(Path(run_dir, STATUS_FILE))


def read_events(run_dir: Path | str, after_seq: int = 0) -> list[dict[str, Any]]:
    """Transitions with ``seq > after_seq``, oldest first."""
    events: list[dict[str, Any]] = []
    try:
        with open(Path(run_dir, EVENTS_FILE), encoding="utf-8") as f:
            for line in f:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line being written right now
                if isinstance(event, dict) and event.get("seq", 0) > after_seq:
                    events.append(event)
    except FileNotFoundError:
        pass
    return events


def _last_seq(run_dir: Path) -> int:
    events = read_events(run_dir)
    return max((e.get("seq", 0) for e in events), default=0)


def _redact_obj(obj: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: _redact_obj(v, redact) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact_obj(v, redact) for v in obj]
    return obj


_EMPTY_STATUS: dict[str, Any] = {
    "name": None,
    "state": State.STOPPED.value,
    "pid": None,
    "create_time": None,
    "keeper_pid": None,
    "keeper_create_time": None,
    "run_started_at": None,
    "ready_at": None,
    "time_to_ready": None,
    "exit_code": None,
    "signal": None,
    "restarts": 0,
    "first_lines": [],
    "command": None,
    "log_file": None,
    "adopted": False,
    "error": None,
    "updated_at": None,
}

_UNSET: Any = object()


class Journal:
    """Writes status.json and events.jsonl; every state change goes through here.

    Only one writer exists at a time: the keeper, or whoever holds keeper.lock while no
    keeper runs (request_stop, reconcile).
    """

    def __init__(self, run_dir: Path, spec: Spec) -> None:
        self.run_dir = run_dir
        self.spec = spec
        self.status: dict[str, Any] = {**_EMPTY_STATUS, **(read_status(run_dir) or {})}
        self.status["name"] = spec.name
        self.status["command"] = spec.display_command()
        self.status["log_file"] = str(log_file_of(spec, run_dir))
        self.state = State(self.status.get("state") or State.STOPPED)
        self.seq = _last_seq(run_dir)
        self.host = socket.gethostname()

    def redact(self, text: str) -> str:
        return self.spec.redact(text)

    def transition(
        self,
        to: State,
        *,
        trigger: str,
        message: str = "",
        exit_code: int | None = None,
        sig: str | None = None,
        expected: bool | None = None,
        error: Any = _UNSET,
        **fields: Any,
    ) -> dict[str, Any]:
        """Check, record (events.jsonl) and publish (status.json) one state change."""
        check_transition(self.state, to)
        self.seq += 1
        event = {
            "seq": self.seq,
            "time": time.time(),
            "from": self.state.value,
            "to": to.value,
            "pid": fields.get("pid", self.status.get("pid")),
            "exit_code": exit_code,
            "signal": sig,
            "expected": expected,
            "trigger": trigger,
            "message": message,
            "host": self.host,
        }
        self._append(event)
        log.info("%s -> %s (%s) %s", self.state.value, to.value, trigger, message)
        self.state = to
        self.status.update(fields)
        self.status.update(state=to.value, exit_code=exit_code, signal=sig)
        if error is not _UNSET:
            self.status["error"] = error
        self.write_status()
        return event

    def note(self, event: str, *, trigger: str, message: str = "", **extra: Any) -> dict[str, Any]:
        """Record something that happened without a change of state (``event``: "reload").

        The line has the keys of a transition (``from`` and ``to`` both the current state)
        plus ``event`` and ``extra``, so that a reader of events.jsonl needs no second format.
        """
        self.seq += 1
        record = {
            "seq": self.seq, "time": time.time(), "from": self.state.value, "to": self.state.value,
            "pid": self.status.get("pid"), "exit_code": None, "signal": None, "expected": True,
            "trigger": trigger, "message": message, "host": self.host, "event": event, **extra,
        }
        self._append(record)
        log.info("%s (%s) %s", event, trigger, message)
        return record

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(_redact_obj(record, self.redact)) + "\n"
        fd = os.open(self.run_dir / EVENTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())  # one write on O_APPEND: lines never interleave
        finally:
            os.close(fd)

    def update(self, **fields: Any) -> None:
        self.status.update(fields)
        self.write_status()

    def write_status(self) -> None:
        self.status["updated_at"] = time.time()
        data = _redact_obj(self.status, self.redact)
        write_atomic(self.run_dir / STATUS_FILE, json.dumps(data, indent=1), 0o600)


def reconcile_locked(journal: Journal, trigger: str = "reconcile") -> None:
    """With the lock held and no keeper: make an active state that nobody keeps true.

    Called only when the process is known to be gone (a live one is adopted or stopped).
    """
    state = journal.state
    gone = "its keeper died and the process is gone; exit status unknown"
    if state in (State.STARTING, State.RUNNING):
        journal.transition(State.EXITED, trigger=trigger, message=gone, error=gone)
    elif state is State.STOPPING:
        journal.transition(State.STOPPED, trigger=trigger, message=gone)
    elif state is State.BACKOFF:
        msg = "its keeper died during backoff; no retry will come"
        journal.transition(State.FATAL, trigger=trigger, message=msg, error=msg)


def reconcile(run_dir: Path | str) -> dict[str, Any] | None:
    """Bring status.json in line with reality when no keeper runs; returns the status.

    A process that is still alive without its keeper keeps its state, with an error
    saying so (``adopt`` or ``request_stop`` it). Does nothing while a keeper runs.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status is None or not is_active(status.get("state") or STOPPED):
        return status
    fd = lock_unless_keeper(run_dir)
    if fd is None:
        return status  # a keeper runs: it owns the truth
    try:
        journal = Journal(run_dir, read_spec(run_dir))
        if identity.is_alive(child_identity(journal.status)):
            journal.update(error="the keeper died; the process runs unsupervised: adopt or stop it")
        else:
            reconcile_locked(journal)
        return journal.status
    finally:
        unlock(fd)
