"""Process states and the transitions allowed between them (supervisor's model).

States are plain lower-case strings on the wire (status.json, events.jsonl) so that
readers need not import this module; ``State`` is a ``str`` enum to keep both worlds
interchangeable (``State.RUNNING == "running"``).
"""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"
    FATAL = "fatal"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        return LABELS[self]


LABELS: dict[State, str] = {
    State.STOPPED: "Stopped",
    State.STARTING: "Starting",
    State.RUNNING: "Running",
    State.BACKOFF: "Backoff",
    State.STOPPING: "Stopping",
    State.EXITED: "Exited",
    State.FATAL: "Fatal",
    State.UNKNOWN: "Unknown",
}

# supervisor's state diagram (supervisord.org, "Process States").
TRANSITIONS: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset({State.STARTING}),
    State.STARTING: frozenset({State.RUNNING, State.BACKOFF, State.STOPPING, State.EXITED}),
    State.RUNNING: frozenset({State.STOPPING, State.EXITED}),
    State.BACKOFF: frozenset({State.STARTING, State.FATAL, State.STOPPED}),
    State.STOPPING: frozenset({State.STOPPED}),
    # EXITED -> FATAL is ours: the keeper gives up after quick exits from running.
    # supervisor reaches FATAL only through BACKOFF because its "running" needs
    # startsecs of life; ours needs the probe to answer, so a server that answers and
    # then dies at once (three times in a row) exits from running, and then gives up.
    State.EXITED: frozenset({State.STARTING, State.STOPPED, State.FATAL}),
    State.FATAL: frozenset({State.STARTING, State.STOPPED}),
    # UNKNOWN is where we land when the truth is lost (a keeper died and nobody saw
    # what happened), so any state may fall into it; and once the truth is found
    # again (by a reconcile or an adopting keeper) it may be whatever it is.
    State.UNKNOWN: frozenset(State),
}

ACTIVE: frozenset[State] = frozenset({State.STARTING, State.RUNNING, State.BACKOFF, State.STOPPING})
SETTLED: frozenset[State] = frozenset({State.STOPPED, State.RUNNING, State.EXITED, State.FATAL})


class InvalidTransition(ValueError):
    """A state change that supervisor's diagram does not allow."""

    def __init__(self, current: State | str, target: State | str) -> None:
        self.current = State(current)
        self.target = State(target)
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[self.current])) or "nothing"
        super().__init__(
            f"cannot go from {self.current.value} to {self.target.value}; "
            f"from {self.current.value} the next state may be: {allowed}"
        )


def can_transition(current: State | str, target: State | str) -> bool:
    current, target = State(current), State(target)
    return target is State.UNKNOWN or target in TRANSITIONS[current]


def check_transition(current: State | str, target: State | str) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is allowed."""
    if not can_transition(current, target):
        raise InvalidTransition(current, target)


def is_active(state: State | str) -> bool:
    """True while a process is, or is about to be, alive under a keeper."""
    return State(state) in ACTIVE


def is_settled(state: State | str) -> bool:
    """True for states that stay until something happens (nothing is in progress)."""
    return State(state) in SETTLED


def label(state: State | str | None) -> str:
    """Display label; ``None`` (never started) reads as Stopped."""
    return LABELS[State(state)] if state else LABELS[State.STOPPED]
