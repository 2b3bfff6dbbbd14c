import pytest

from portal.process.states import (
    LABELS,
    TRANSITIONS,
    InvalidTransition,
    State,
    can_transition,
    check_transition,
    is_active,
    is_settled,
    label,
)


def test_states_are_lower_case_strings_on_the_wire():
    assert State.RUNNING == "running"
    assert {s.value for s in State} == {
        "stopped", "starting", "running", "backoff", "stopping", "exited", "fatal", "unknown"}
    assert str(State.BACKOFF) == "backoff"


@pytest.mark.parametrize(("a", "b"), [
    ("stopped", "starting"),
    ("starting", "running"), ("starting", "backoff"), ("starting", "stopping"), ("starting", "exited"),
    ("running", "stopping"), ("running", "exited"),
    ("backoff", "starting"), ("backoff", "fatal"), ("backoff", "stopped"),
    ("stopping", "stopped"),
    ("exited", "starting"), ("exited", "stopped"),
    ("fatal", "starting"), ("fatal", "stopped"),
])
def test_supervisor_transitions_are_allowed(a, b):
    assert can_transition(a, b)
    check_transition(a, b)


@pytest.mark.parametrize(("a", "b"), [
    ("stopped", "running"), ("running", "starting"), ("running", "stopped"), ("stopping", "running"),
    ("exited", "running"), ("fatal", "running"), ("stopped", "stopped"), ("backoff", "running"),
])
def test_other_transitions_are_refused_with_a_readable_message(a, b):
    assert not can_transition(a, b)
    with pytest.raises(InvalidTransition, match=f"cannot go from {a} to {b}; from {a} the next state may be"):
        check_transition(a, b)


def test_any_state_may_become_unknown_and_unknown_may_become_any():
    for state in State:
        assert can_transition(state, State.UNKNOWN)
        assert can_transition(State.UNKNOWN, state)


def test_every_state_has_transitions_and_a_label():
    assert set(TRANSITIONS) == set(State) == set(LABELS)
    assert State.RUNNING.label == "Running"
    assert label("fatal") == "Fatal"
    assert label(None) == "Stopped"


def test_active_states_are_those_in_motion_or_alive():
    assert {s for s in State if is_active(s)} == {State.STARTING, State.RUNNING, State.BACKOFF, State.STOPPING}


def test_settled_states_stay_until_something_happens():
    assert {s for s in State if is_settled(s)} == {State.STOPPED, State.RUNNING, State.EXITED, State.FATAL}
