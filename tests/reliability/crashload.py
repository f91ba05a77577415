"""A process of the SQLite crash trials (item 15): enqueues and claims as fast as it
can until it is killed. Each uuid that ``delay`` returned is appended to a file once
its session has committed. Started with multiprocessing's forkserver method."""

from __future__ import annotations

import os
import random
import threading

import queuejob
from tests import jobs


def load(url: str, uuid_log: str, seed: int) -> None:
    rng = random.Random(seed)
    db = queuejob.open(url)
    worker = queuejob.Worker(db, channels="root:4", modules=["tests.jobs"],
                             heartbeat_interval=0.05, dead_after=0.5, rescue_interval=0.05,
                             poll_interval=0.01)
    threading.Thread(target=worker.run, daemon=True).start()
    fd = os.open(uuid_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    while True:
        with db.session() as session:
            if rng.random() < 0.1:
                uuids = jobs.noop.delay_many(session, [("m", n) for n in range(rng.randint(2, 10))])
            else:
                uuids = [jobs.noop.delay(session, "m", n) for n in range(rng.randint(1, 3))]
        os.write(fd, "".join(f"{job_uuid}\n" for job_uuid in uuids).encode())
