"""Job graphs: jobs that wait for other jobs (the successor's dependencies).

``fn.delayable(session, model_name, *args, **options)`` builds a job without
storing it. ``chain(a, b, c)`` runs them in sequence, ``group(a, b)`` side by
side, ``a.on_done(b, c)`` makes b and c wait for a; they compose:
``group(chain(j1, j2), chain(j3, j4)).on_done(chain(j5, j6))``. ``delay()`` on
any part stores the whole graph in one transaction, the jobs sharing one
``graph_uuid``. This module is the pure part: the shape of a graph, its edges,
the cycle check.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Iterable
from typing import Any


class GraphError(ValueError):
    """A graph that cannot be stored: a cycle, or a job depending on itself."""


class Node:
    """Something that can be part of a graph: a Delayable, a chain or a group."""

    def __init__(self) -> None:
        self._linked: list[Node] = []

    def heads(self) -> list[Delayable]:
        """The jobs that start this part (what waits on this part waits for its tails)."""
        raise NotImplementedError

    def tails(self) -> list[Delayable]:
        """The jobs that end this part."""
        raise NotImplementedError

    def delayables(self) -> list[Delayable]:
        raise NotImplementedError

    def on_done(self, *nodes: Node) -> Node:
        """Make every part of ``nodes`` wait for this one to be done; returns self."""
        for node in nodes:
            for head in node.heads():
                for tail in self.tails():
                    if head is tail:
                        raise GraphError("a job cannot depend on itself")
                    if tail not in head._parents:
                        head._parents.append(tail)
                        tail._children.append(head)
        self._linked.extend(nodes)
        return self

    def graph(self) -> list[Delayable]:
        """Every job connected to this part, by composition or dependency, in the
        order they were built."""
        seen: dict[int, Delayable] = {}
        stack: list[Node] = [self]
        visited: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.extend(node._linked)
            for delayable in node.delayables():
                seen.setdefault(id(delayable), delayable)
                stack.extend(delayable._parents)
                stack.extend(delayable._children)
        return sorted(seen.values(), key=lambda delayable: delayable._order)

    def delay(self) -> Any:
        """Store every job of the graph in one transaction; returns this part, whose
        Delayables now carry their ``uuid``."""
        ordered = topological_order(self.graph())
        if len({id(delayable.session) for delayable in ordered}) != 1:
            raise GraphError("the jobs of a graph must be built with the same session")
        ordered[0]._store(ordered)
        return self


_counter = iter(range(1 << 62))


class Delayable(Node):
    """A job built but not stored yet (``fn.delayable(...)``)."""

    def __init__(self, session: Any, job: Any, store: Any) -> None:
        super().__init__()
        self.session = session
        self.job = job
        self.uuid: str | None = None
        self._store = store
        self._parents: list[Delayable] = []
        self._children: list[Delayable] = []
        self._order = next(_counter)

    def heads(self) -> list[Delayable]:
        return [self]

    def tails(self) -> list[Delayable]:
        return [self]

    def delayables(self) -> list[Delayable]:
        return [self]

    def __repr__(self) -> str:
        return f"<Delayable {self.job.func_name} {self.uuid or '(not stored)'}>"


class Chain(Node):
    def __init__(self, *nodes: Node) -> None:
        super().__init__()
        if not nodes:
            raise GraphError("chain() needs at least one job")
        self.nodes = list(nodes)
        self._linked.extend(self.nodes)
        for earlier, later in zip(self.nodes, self.nodes[1:], strict=False):
            earlier.on_done(later)

    def heads(self) -> list[Delayable]:
        return self.nodes[0].heads()

    def tails(self) -> list[Delayable]:
        return self.nodes[-1].tails()

    def delayables(self) -> list[Delayable]:
        return [delayable for node in self.nodes for delayable in node.delayables()]


class Group(Node):
    def __init__(self, *nodes: Node) -> None:
        super().__init__()
        if not nodes:
            raise GraphError("group() needs at least one job")
        self.nodes = list(nodes)
        self._linked.extend(self.nodes)

    def heads(self) -> list[Delayable]:
        return [head for node in self.nodes for head in node.heads()]

    def tails(self) -> list[Delayable]:
        return [tail for node in self.nodes for tail in node.tails()]

    def delayables(self) -> list[Delayable]:
        return [delayable for node in self.nodes for delayable in node.delayables()]


def chain(*nodes: Node) -> Chain:
    """Run ``nodes`` one after the other: each waits for the previous one's jobs."""
    return Chain(*nodes)


def group(*nodes: Node) -> Group:
    """Run ``nodes`` side by side; what waits on the group waits for all of them."""
    return Group(*nodes)


def topological_order(jobs: Iterable[Delayable]) -> list[Delayable]:
    """Parents before children (Kahn's algorithm); GraphError on a cycle."""
    jobs = list(jobs)
    waiting = {id(job): len(job._parents) for job in jobs}
    ready = [job for job in jobs if not job._parents]
    ordered: list[Delayable] = []
    while ready:
        job = ready.pop(0)
        ordered.append(job)
        for child in job._children:
            waiting[id(child)] -= 1
            if waiting[id(child)] == 0:
                ready.append(child)
    if len(ordered) != len(jobs):
        raise GraphError("a job graph cannot have a cycle")
    return ordered


def edges(jobs: Iterable[Delayable]) -> list[tuple[Delayable, Delayable]]:
    """(parent, child) pairs."""
    return [(parent, job) for job in jobs for parent in job._parents]


def new_graph_uuid() -> str:
    return str(uuid_module.uuid4())
