"""The dashboard's batches pages (``queuejob.batch``): the batches, newest first, their
jobs counted per state; one batch, its callbacks and its jobs. Reads go through
queuejob.operations, as the command line's.

A stored batch may hold anything (a row written by hand): each value is shown as text
(``display``), a uuid that is not one is listed, not linked, and a callback that does not
make sense shows why. It costs that value, never the page.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import operations
from ..core import limits
from ..core.batches import BATCH_STATES
from ..core.errors import ConfigurationError
from . import display

#: the badge (a job state's colours) of each batch state
BADGES = {"open": "pending", "done": "done", "failed": "failed"}
#: the job states a listing counts as waiting to run
WAITING = ("pending", "enqueued", "wait_dependencies")
#: the most batches the page lists, the most jobs one batch's page lists
LISTED_BATCHES = 200
LISTED_JOBS = 1000


def _dashboard(request: Request) -> Any:
    return request.app.state.dashboard


def _counts(counts: Any) -> dict[str, Any]:
    counts = counts if isinstance(counts, dict) else {}

    def count(*states: str) -> int:
        return sum(value for state in states
                   if isinstance(value := counts.get(state, 0), int))
    total = count("total")
    return {"done": count("done"), "failed": count("failed"),
            "cancelled": count("cancelled"), "started": count("started"),
            "waiting": count(*WAITING), "total": total,
            "percent": int(100 * count("done") / total) if total else 100}


def _batch_view(entry: dict[str, Any]) -> dict[str, Any]:
    state = entry.get("state")
    return {
        "uuid": display.text(entry.get("uuid"), limits.LISTED, one_line=True),
        "link": display.job_uuid(entry.get("uuid")),
        "name": display.text(entry.get("name"), limits.LISTED, one_line=True),
        "state": display.text(state, 40, one_line=True),
        "badge": BADGES.get(state, "") if isinstance(state, str) else "",
        "date_created": display.time(entry.get("date_created")),
        "date_concluded": display.time(entry.get("date_concluded")),
        "callback_link": display.job_uuid(entry.get("callback_uuid")),
        "callback_uuid": display.text(entry.get("callback_uuid"), limits.LISTED,
                                      one_line=True) if entry.get("callback_uuid") else None,
        "callback_error": display.text(entry.get("callback_error"), 500, one_line=True)
        if entry.get("callback_error") else None,
        "counts": _counts(entry.get("counts"))}


def _callback_view(callback: Any) -> dict[str, Any] | None:
    if not isinstance(callback, dict):
        return None
    if callback.get("problem"):
        return {"problem": display.text(callback["problem"], 500, one_line=True)}
    return {"problem": None,
            "function": display.text(callback.get("func_name"), limits.FUNC_NAME,
                                     one_line=True),
            "args": display.text(callback.get("args"), limits.LISTED, one_line=True),
            "kwargs": display.text(callback.get("kwargs"), limits.LISTED, one_line=True)}


def batches(request: Request) -> Response:
    """The batches, newest first (``?state=open|done|failed``: only those)."""
    dashboard = _dashboard(request)
    state = request.query_params.get("state") or None
    if state is not None and state not in BATCH_STATES:
        raise HTTPException(400, f"a batch state is one of {', '.join(BATCH_STATES)}")
    rows = operations.batches(dashboard.db, state=state, limit=LISTED_BATCHES)
    return dashboard.render(request, "batches.html", {
        "nav": "batches", "batches": [_batch_view(row) for row in rows],
        "state": state, "states": BATCH_STATES, "refresh": dashboard.refresh})


def batch(request: Request) -> Response:
    """One batch: its counts, its callbacks and its jobs."""
    dashboard = _dashboard(request)
    try:
        entry = operations.batch(dashboard.db, str(request.path_params["uuid"]),
                                 limit=LISTED_JOBS)
    except ConfigurationError:
        raise HTTPException(404, "no such batch") from None
    view = _batch_view(entry)
    view.update(on_done=_callback_view(entry.get("on_done")),
                on_failure=_callback_view(entry.get("on_failure")),
                jobs=[display.job_row(job, listed=True, whole=False)
                      for job in entry.get("jobs") or []])
    return dashboard.render(request, "batch.html", {
        "nav": "batches", "batch": view, "listed_jobs": LISTED_JOBS,
        "refresh": dashboard.refresh})
