"""Which worker a notification wakes: one new job wakes a bounded number of claims.

Every listening worker receives every notification (PostgreSQL sends each one to every
LISTEN). If every worker claimed on each, one new job would cost a transaction per
worker. Instead a notification's payload names a target: ``"<token>"`` or
``"<token>:<hops>"``; of the live workers that take jobs, ordered by id, the one whose
rank is ``(token + hops) % workers`` claims. Each worker learns its rank and the number
of workers with its heartbeat; a notification without a target (``""``, or a payload
that is not one) wakes every worker, as does any notification before a worker knows its
rank.

Two rules keep jobs from waiting for the poll when the target cannot take them:

* the target has no free slot (or is stopping): it passes the notification on to the
  next rank (``hops + 1``), until every worker had its turn (``hops == workers``);
* the target claimed as many jobs as it had room for (a burst: more may be waiting):
  with its claim it wakes the next rank, which does the same, so a bulk insert wakes
  the workers one after the other, each claiming a full batch.

Ranks change when workers come and go: for at most a heartbeat a notification may wake
two workers or none, and then the poll finds the job. Pure rules, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the payload of a probe: a worker checking that its LISTEN holds
PROBE_PREFIX = "probe:"


@dataclass(frozen=True)
class Target:
    token: int
    hops: int = 0


def parse(payload: str) -> Target | None:
    """The target a payload names; None for one that names none (it wakes everyone)."""
    head, _, tail = payload.partition(":")
    if not _number(head, 20) or (tail and not _number(tail, 6)):
        return None
    return Target(int(head), int(tail) if tail else 0)


def _number(text: str, digits: int) -> bool:
    """Plain ASCII digits, at most ``digits`` of them (no sign, no '²')."""
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


def payload_of(target: Target) -> str:
    return f"{target.token}:{target.hops}" if target.hops else str(target.token)


@dataclass(frozen=True)
class Rank:
    """Where a worker stands among the live workers that take jobs."""

    rank: int
    workers: int

    def targets(self, target: Target | None) -> bool:
        """This worker is the one the notification names (or it names no one)."""
        if target is None or self.workers <= 0 or not 0 <= self.rank < self.workers:
            return True
        return (target.token + target.hops) % self.workers == self.rank

    def passed_on(self, target: Target | None) -> Target | None:
        """The notification to send when this worker cannot take the jobs it was woken
        for; None when every worker had its turn (or it was meant for all)."""
        if target is None or target.hops + 1 >= self.workers:
            return None
        return Target(target.token, target.hops + 1)

    def next_after_burst(self) -> Target | None:
        """The notification that wakes the next worker after a full claim."""
        if self.workers <= 1:
            return None
        return Target(self.rank, 1)


def wakes(rank: Rank | None, payload: str) -> bool:
    """Whether a worker of ``rank`` (None: not known yet) acts on ``payload``."""
    if payload.startswith(PROBE_PREFIX):
        return False
    return rank is None or rank.targets(parse(payload))
