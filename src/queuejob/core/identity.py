"""Identity keys: two jobs with the same key are the same work."""

from __future__ import annotations

import hashlib
from typing import Any

from .codec import dumps


def identity_exact(job_: Any) -> str:
    """Identity from the model, the function and all arguments.

    Used as ``identity_key=identity_exact``: while a job with the exact same
    model, function and arguments is pending or enqueued, ``delay`` stores no
    second one.
    """
    hasher = hashlib.sha1(usedforsecurity=False)
    hasher.update(str(job_.model_name).encode())
    hasher.update(b"\0")
    hasher.update(str(job_.func_name).encode())
    hasher.update(b"\0")
    hasher.update(dumps(list(job_.args)).encode())
    hasher.update(b"\0")
    hasher.update(dumps(job_.kwargs).encode())
    return hasher.hexdigest()
