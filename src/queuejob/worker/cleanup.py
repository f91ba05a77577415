"""Removal of old done and cancelled jobs, a small batch at a time.

Each channel keeps its done and cancelled jobs for its removal interval (days,
``removal_interval``, default 30); failed jobs are kept until someone acts.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("queuejob.worker")

BATCH = 500


def remove_old_jobs(worker: Any, conn: Any) -> int:
    manager = worker.db.manager
    tree = manager.shared_tree(conn).with_specs(
        spec for name, spec in worker.tree.specs.items() if spec.removal_interval is not None)
    removed, worker._cleanup_cursor = manager.remove_old_jobs(
        conn, tree, limit=BATCH, after=worker._cleanup_cursor)
    if removed:
        log.info("removed %d old done or cancelled job(s)", removed)
    # a full batch read: go on soon from where it stopped
    return BATCH if worker._cleanup_cursor is not None else removed
