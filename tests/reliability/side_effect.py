"""A module whose import has a visible side effect: it creates the file named by
``QUEUEJOB_TEST_SIDE_EFFECT``. Stored data naming it must never make a worker import it."""

from __future__ import annotations

import os

_PATH = os.environ.get("QUEUEJOB_TEST_SIDE_EFFECT")
if _PATH:
    with open(_PATH, "a") as _marker:
        _marker.write(f"imported by pid {os.getpid()}\n")


def boom(session, model_name, *args, **kwargs):
    if _PATH:
        with open(_PATH, "a") as marker:
            marker.write("called\n")
