"""A plain script: delay jobs, run a worker in this process until nothing is left,
print each job's outcome.

    python examples/recipes/plain_script.py [DATABASE_URL]

Without a URL (or QUEUEJOB_DATABASE_URL) it uses a fresh SQLite file in a temporary
folder. In production the worker is a process of its own
(``queuejob worker --db URL --module mymodule``) and the script only delays.
"""

from __future__ import annotations

import os
import sys
import tempfile

import queuejob
from queuejob import job


@job(default_channel="root.images")
def resize(session, model_name, path, width):
    """Resize an image."""
    return f"{path} resized to {width}px"


def main(url: str) -> None:
    db = queuejob.open(url)
    try:
        with db.session() as session:  # one transaction: all three jobs, or none
            uuids = [resize.delay(session, "image", f"photo-{n}.jpg", 800) for n in range(3)]
        # the jobs of this module only (__main__ when run as a script)
        queuejob.Worker(db, channels="root:2", modules=[__name__]).run(burst=True)
        for uuid in uuids:
            outcome = db.wait(uuid, timeout=30)
            print(f"{outcome.state}: {outcome.result}")
    finally:
        db.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    elif os.environ.get("QUEUEJOB_DATABASE_URL"):
        main(os.environ["QUEUEJOB_DATABASE_URL"])
    else:
        with tempfile.TemporaryDirectory() as folder:
            main(f"sqlite:///{folder}/jobs.db")
