"""Process states and the transitions allowed between them (supervisor's model).

States are plain lower-case strings on the wire (status.json, events.jsonl) so that
readers need not import this module; ``State`` is a ``str`` enum to keep both worlds
interchangeable (``State.RUNNING == "running"``).

This module is the one place where the names and the sets of states are spelled:
the keeper, the models and their choices, the tasks, the control service, the CLI,
the API, the watcher, the pages and the front import them from here
(``portal/tests/test_layers.py`` fails when a set of state names is spelled elsewhere).
The module-level names (``RUNNING``, ``ACTIVE``...) are plain ``str`` values, so that
what Django stores, compares and serializes is exactly the string on the wire.
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

# Each state by name, as the plain string on the wire.
STOPPED: str = State.STOPPED.value
STARTING: str = State.STARTING.value
RUNNING: str = State.RUNNING.value
BACKOFF: str = State.BACKOFF.value
STOPPING: str = State.STOPPING.value
EXITED: str = State.EXITED.value
FATAL: str = State.FATAL.value
UNKNOWN: str = State.UNKNOWN.value

# Every state, in the state machine's order (the order pages list them in).
ALL: tuple[str, ...] = tuple(s.value for s in State)
# (value, label) pairs: the choices of a model's state field.
CHOICES: list[tuple[str, str]] = [(s.value, LABELS[s]) for s in State]

# A process is, or is about to be, alive under a keeper.
ACTIVE: frozenset[str] = frozenset({STARTING, RUNNING, BACKOFF, STOPPING})
# States that stay until something happens: a transition ends in one, and a row stops polling.
SETTLED: frozenset[str] = frozenset({STOPPED, RUNNING, EXITED, FATAL})
# The process ended by itself (and is not being restarted).
ENDED: frozenset[str] = frozenset({EXITED, FATAL})
# Settled with no process: where a stop settles.
DOWN: frozenset[str] = frozenset({STOPPED}) | ENDED
# Where a start settles: running, or ended by itself.
START_SETTLED: frozenset[str] = frozenset({RUNNING}) | ENDED
# A start may be claimed from these (nothing is alive, or nobody knows and the start finds out).
STARTABLE: frozenset[str] = DOWN | {UNKNOWN}
# An error on their own, whatever the event says.
ERROR: frozenset[str] = frozenset({BACKOFF, FATAL})
# On the way to running or to stopped.
MOVING: frozenset[str] = frozenset({STARTING, STOPPING})
# Something is under way that the watcher follows closely (a restart wait counts).
IN_FLIGHT: frozenset[str] = MOVING | {BACKOFF}
# What a user may ask of a process: the one spelling of each (code, URLs, the API, templates).
START, STOP, RESTART = "start", "stop", "restart"
ACTIONS = (START, STOP, RESTART)

# A request handed over by its task has its outcome: a start once the keeper has left
# "starting" (running, or failed: backoff, exited, fatal; or gone), a stop once nothing runs.
OUTCOME: dict[str, frozenset[str]] = {
    START: frozenset({RUNNING, BACKOFF, UNKNOWN}) | DOWN,
    STOP: DOWN | {UNKNOWN},
}

# By action (start, restart, stop): where the state settles once the request is acted on ...
SETTLED_AFTER: dict[str, frozenset[str]] = {START: SETTLED, RESTART: SETTLED, STOP: DOWN}
# ... and where it should settle; any other settled state is a failure (a stop that ends exited is not).
GOAL: dict[str, frozenset[str]] = {
    START: frozenset({RUNNING}),
    RESTART: frozenset({RUNNING}),
    STOP: frozenset({STOPPED, EXITED}),
}


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
