"""A process of the identity-key race (item 10): at each round, every racer delays a
job with the same identity key at the same instant (a shared barrier) and writes the
uuid it got. Started with multiprocessing's spawn method."""

from __future__ import annotations

import queuejob
from tests import jobs


def race(url: str, barrier, rounds: int, out_path: str, number: int) -> None:
    db = queuejob.open(url)
    lines = []
    try:
        for round_number in range(rounds):
            barrier.wait(60)
            with db.session() as session:
                job_uuid = jobs.noop.delay(session, "m", round_number, number,
                                           identity_key=f"key-{round_number}")
            lines.append(f"{round_number} {number} {job_uuid}\n")
    finally:
        db.close()
        with open(out_path, "w") as out:
            out.writelines(lines)
