"""The ``queuejob`` command: a thin face over ``queuejob.operations``."""

from .app import main

__all__ = ["main"]
