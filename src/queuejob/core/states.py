"""Job states and the state machine of manual actions."""

from __future__ import annotations

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

#: States in which an identity key is unique: a second job with the same key
#: is not stored while one of these exists (enforced by a partial unique index).
IDENTITY_STATES: frozenset[State] = frozenset({PENDING, ENQUEUED, WAIT_DEPENDENCIES})

#: States a job never leaves by itself.
FINAL_STATES: frozenset[State] = frozenset({DONE, CANCELLED})

#: Manual action -> (states it applies to, state it leads to). The CLI, the
#: library functions and the dashboard all go through this table.
MANUAL_ACTIONS: dict[str, tuple[frozenset[State], State]] = {
    # a failed or unfinished job goes back to pending, retry reset to 0
    "requeue": (frozenset({PENDING, ENQUEUED, STARTED, FAILED}), PENDING),
    "done": (frozenset({PENDING, ENQUEUED, FAILED, WAIT_DEPENDENCIES}), DONE),
    "cancel": (frozenset({PENDING, ENQUEUED, FAILED, WAIT_DEPENDENCIES}), CANCELLED),
}

ACTION_VERBS = {"requeue": "requeue", "done": "set done", "cancel": "cancel"}


def refusal(action: str, state: str) -> str | None:
    """Why ``action`` cannot apply to a job in ``state``; None when it can."""
    allowed, _ = MANUAL_ACTIONS[action]
    if state in allowed:
        return None
    return f"it is {state}"
