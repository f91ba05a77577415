"""Job graphs: jobs that wait for other jobs (the successor's dependencies).

``fn.delayable(session, model_name, *args, **options)`` builds a job without
storing it. ``chain(a, b, c)`` runs them in sequence, ``group(a, b)`` side by
side, ``a.on_done(b, c)`` makes b and c wait for a; they compose:
``group(chain(j1, j2), chain(j3, j4)).on_done(chain(j5, j6))``. ``delay()`` on
any part stores the whole graph in one transaction, the jobs sharing one
``graph_uuid``. Before that, ``set()`` changes a job's properties and ``split()``
cuts the records of a job into a group or a chain of smaller ones (the successor's
builder). This module is the pure part: the shape of a graph, its edges, the cycle
check.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Iterable, Mapping
from typing import Any

from . import limits
from .job import Job

#: what ``Delayable.set`` may change: the job's properties, as ``delay()`` takes them
PROPERTIES = ("priority", "eta", "max_retries", "description", "channel", "identity_key",
              "timeout", "concurrency_key")
#: the attributes of a Job that hold each property once checked
_ATTRIBUTES = {"priority": ("priority",), "eta": ("_eta", "_eta_delay"),
               "max_retries": ("max_retries",), "description": ("description",),
               "channel": ("channel", "channel_given"),
               "identity_key": ("_identity_key", "_identity_key_func"),
               "timeout": ("timeout",), "concurrency_key": ("concurrency_key",)}


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
        _mark_linked(self, *nodes)
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
        ordered = self._to_store()
        if getattr(ordered[0].session, "is_async", False):
            raise TypeError("delay() of a graph built in a session of db.session_async(): "
                            "await graph.delay_async() instead")
        ordered[0]._store(ordered)
        for delayable in ordered:
            delayable._stored = True
        return self

    async def delay_async(self) -> Any:
        """``delay()`` for a graph built in an asyncio session (``db.session_async()``):
        every job stored in the session's transaction, without blocking the event
        loop; returns this part."""
        ordered = self._to_store()
        if not getattr(ordered[0].session, "is_async", False):
            raise TypeError("delay_async() of a graph built in a session of db.session(): "
                            "call delay() instead")
        await ordered[0]._store(ordered)
        for delayable in ordered:
            delayable._stored = True
        return self

    def _to_store(self) -> list[Delayable]:
        """The graph's jobs, parents first, checked for what cannot be stored."""
        ordered = topological_order(self.graph())
        if len({id(delayable.session) for delayable in ordered}) != 1:
            raise GraphError("the jobs of a graph must be built with the same session")
        if any(delayable._split for delayable in ordered):
            raise GraphError("a job of the graph was split: delay the parts split() returned")
        return ordered


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
        #: part of a chain, a group or an on_done link
        self._linked_in = False
        #: stored (or trapped, or run at once) by a delay() of its graph
        self._stored = False
        #: replaced by the parts of split()
        self._split = False

    def heads(self) -> list[Delayable]:
        return [self]

    def tails(self) -> list[Delayable]:
        return [self]

    def delayables(self) -> list[Delayable]:
        return [self]

    def set(self, *args: Mapping[str, Any], **kwargs: Any) -> Delayable:
        """Change the job's properties before its graph is stored; returns self.

        ``set({"priority": 5})``, ``set(priority=5, eta=60)`` or both (the keywords
        win): any of priority, eta, max_retries, description, channel, identity_key,
        timeout, concurrency_key, checked as ``delay()`` checks them; None gives a
        property its default back. ValueError ``No property <key>`` for any other key
        (debounce included: not an option of a graph's jobs); nothing is changed unless
        every property is right."""
        if self._stored:
            raise GraphError("set() on a job already stored: properties are set before "
                             "the graph is delayed")
        if self._split:
            raise GraphError("set() on a job that was split: set the parts split() returned")
        properties: dict[str, Any] = {}
        for given in args:
            if not isinstance(given, Mapping):
                raise TypeError(f"set() takes dicts of properties and keywords, not "
                                f"{type(given).__name__}")
            properties.update(given)
        properties.update(kwargs)
        for key in properties:
            if key == "debounce":
                raise ValueError("No property debounce: debounce is an option of delay() and "
                                 "delay_many(), not of a job of a graph")
            if key not in PROPERTIES:
                raise ValueError(f"No property {key}")
        # the same checks as delay(): the properties build a job of their own first
        checked = Job(func=self.job.func, **properties)
        for key in properties:
            for attribute in _ATTRIBUTES[key]:
                setattr(self.job, attribute, getattr(checked, attribute))
        return self

    def split(self, size: int, chain: bool = False) -> Chain | Group:
        """Split the job into jobs of ``size`` records each: a ``group`` of them (side by
        side), or a ``chain`` with ``chain=True`` (one after the other).

        The records are the job's second positional argument (after the model name), a
        list or a tuple; each part has the same function, other arguments, keyword
        arguments and properties (identity key included), and the description
        suffixed `` (split i/n)``. Delay the returned group or chain (or compose it), not
        this job: a graph holding it is refused once it was split."""
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"split() takes a whole number of records, not {size!r}")
        if size < 1:
            raise ValueError(f"split() needs a size of at least 1, not {size}")
        if self._stored:
            raise GraphError("split() on a job already stored")
        if self._linked_in:
            raise GraphError("split() on a job already in a graph: split it before "
                             "composing it")
        if self._split:
            raise GraphError("split() on a job already split")
        args = tuple(self.job.args)
        records = args[1] if len(args) > 1 else None
        if not isinstance(records, list | tuple) or not records:
            raise ValueError(f"nothing to split: {self.job.func_name} has no list or tuple "
                             "of records as its second positional argument (after the model "
                             "name)")
        batches = [records[start:start + size] for start in range(0, len(records), size)]
        parts = []
        for index, batch in enumerate(batches, start=1):
            job = self.job.copy((*args[:1], batch, *args[2:]))
            job.kwargs = dict(self.job.kwargs)
            suffix = f" (split {index}/{len(batches)})"
            description = self.job.description[:limits.DESCRIPTION - len(suffix)] + suffix
            part = Delayable(self.session, job, self._store)
            parts.append(part.set(description=description))
        self._split = True
        return Chain(*parts) if chain else Group(*parts)

    def __repr__(self) -> str:
        return f"<Delayable {self.job.func_name} {self.uuid or '(not stored)'}>"


class Chain(Node):
    def __init__(self, *nodes: Node) -> None:
        super().__init__()
        if not nodes:
            raise GraphError("chain() needs at least one job")
        self.nodes = list(nodes)
        self._linked.extend(self.nodes)
        _mark_linked(*self.nodes)
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
        _mark_linked(*self.nodes)

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


def _mark_linked(*nodes: Node) -> None:
    """The jobs of ``nodes`` are part of a graph now (split() refuses them)."""
    for node in nodes:
        for delayable in node.delayables():
            delayable._linked_in = True


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
