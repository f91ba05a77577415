"""Job states and the state machine of manual actions."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"
    ENQUEUED = "enqueued"
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: a job of a graph waiting for its parents to be done
    WAIT_DEPENDENCIES = "wait_dependencies"


PENDING = State.PENDING
ENQUEUED = State.ENQUEUED
STARTED = State.STARTED
DONE = State.DONE
FAILED = State.FAILED
CANCELLED = State.CANCELLED
WAIT_DEPENDENCIES = State.WAIT_DEPENDENCIES

STATES: tuple[State, ...] = tuple(State)

#: States a job never leaves by itself: kept for the removal interval, then removed;
#: hidden by default in listings (as in the original's views).
FINISHED: frozenset[State] = frozenset({DONE, CANCELLED})

#: States that end a job's attempts until someone acts: what ``db.wait`` waits for.
ENDED: frozenset[State] = FINISHED | {FAILED}


@dataclass(frozen=True)
class Action:
    """A manual action: the states it applies to, the state it leads to, and its words
    (for the command line, the dashboard and the messages)."""

    name: str
    applies_to: frozenset[State]
    target: State
    verb: str
    past: str


#: Manual actions by name. The Python API, the CLI and the dashboard all go through it.
ACTIONS: dict[str, Action] = {action.name: action for action in (
    # any job but one waiting for its parents goes back to pending, retry reset to 0 (as
    # the successor's requeue: a done or cancelled job runs again)
    Action("requeue", frozenset({PENDING, ENQUEUED, STARTED, FAILED, DONE, CANCELLED}),
           PENDING, "requeue", "requeued"),
    Action("done", frozenset({PENDING, ENQUEUED, FAILED, WAIT_DEPENDENCIES}), DONE,
           "set done", "set done"),
    Action("cancel", frozenset({PENDING, ENQUEUED, FAILED, WAIT_DEPENDENCIES}), CANCELLED,
           "cancel", "cancelled"),
)}


#: the states whose jobs people may edit (priority, eta, channel): not started yet
EDITABLE: frozenset[State] = frozenset({PENDING, ENQUEUED, WAIT_DEPENDENCIES})


def applies_to(action: str) -> frozenset[State]:
    """The states of the jobs an action (a manual one, or ``edit``) applies to."""
    return EDITABLE if action == "edit" else ACTIONS[action].applies_to


def refusal(action: str, state: str) -> str | None:
    """Why ``action`` cannot apply to a job in ``state``; None when it can."""
    if state in ACTIONS[action].applies_to:
        return None
    return f"it is {state}"
