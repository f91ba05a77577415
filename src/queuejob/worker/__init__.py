"""The worker: claim, run, heartbeat, rescue, shutdown, each in its own module."""

from .worker import Worker

__all__ = ["Worker"]
