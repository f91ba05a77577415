"""The drawing of a job graph on a job's page, as inline SVG computed on the server (no
script): this module lays the graph out, the template draws it. Pure: rows in, geometry out.

The graph is drawn in layers from top to bottom: a job's layer is its depth, the longest
path from a root (a job that waits for nothing), so that every job is below the jobs it
waits for. An edge that spans several layers goes through a point on each layer between
(as in Sugiyama's method), and the order of each layer comes from a few sweeps that place
each job at the mean position of its neighbours, keeping the order with the fewest
crossings. Each layer is centred, then its jobs are pulled towards their neighbours.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: the largest graph drawn; a bigger one is listed in the table only
MAX_DRAWN = 50
#: the most points of long edges (an edge has one on each layer it crosses) in a drawing:
#: beyond, the graph is too tangled to draw readably (and to lay out quickly)
MAX_POINTS = 600
NODE_W, NODE_H = 184, 40
#: horizontal room of a point through which a long edge passes
POINT_W = 12
GAP_X, GAP_Y, MARGIN = 18, 44, 12
#: characters of a label that fit in a box (12px bold text in 184px), of its second line
#: (11px)
LABEL_CHARS, SUBLABEL_CHARS = 24, 30
SWEEPS = 6
#: the most room between the ends of two edges on a box's side, and the margin of the side
PORT_STEP, PORT_EDGE = 16, 24
#: passes (down, then up) pulling jobs towards their neighbours
PULLS = 8


def depths(nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the length of the longest path to it from a root. Edges whose
    ends are not both among ``nodes``, and self-loops, are ignored; nodes on a cycle
    (which the API refuses to store) go one layer below the others."""
    known = set(nodes)
    children: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(nodes, 0)
    for parent, child in set(edges):
        if parent in known and child in known and parent != child:
            children[parent].append(child)
            indegree[child] += 1
    depth = dict.fromkeys(nodes, 0)
    ready = [node for node in nodes if indegree[node] == 0]
    done: set[str] = set()
    while ready:
        node = ready.pop()
        done.add(node)
        for child in children[node]:
            depth[child] = max(depth[child], depth[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(done) < len(known):
        bottom = max((depth[node] for node in done), default=-1) + 1
        for node in nodes:
            if node not in done:
                depth[node] = bottom
    return depth


@dataclass
class _Item:
    """A box of a job, or a point of a long edge on a layer it crosses."""

    key: Any
    layer: int
    width: float
    up: list[int] = field(default_factory=list)
    down: list[int] = field(default_factory=list)
    x: float = 0.0  # the centre


def _crossings(upper: list[int], lower: list[int], items: list[_Item]) -> int:
    """Crossings of the segments between two layers: pairs of segments whose ends are in
    opposite orders (counted with a Fenwick tree, in O(s log s))."""
    position = {index: rank for rank, index in enumerate(lower)}
    segments = sorted((rank, position[below]) for rank, index in enumerate(upper)
                      for below in items[index].down if below in position)
    tree = [0] * (len(lower) + 1)
    count = 0
    for seen, (_, end) in enumerate(segments):
        # segments seen before (from the left, or from the same item and further left
        # below) that end strictly to the right of this one cross it
        rank, not_right = end + 1, 0
        while rank > 0:
            not_right += tree[rank]
            rank -= rank & -rank
        count += seen - not_right
        rank = end + 1
        while rank <= len(lower):
            tree[rank] += 1
            rank += rank & -rank
    return count


def _total_crossings(layers: list[list[int]], items: list[_Item]) -> int:
    return sum(_crossings(layers[index], layers[index + 1], items)
               for index in range(len(layers) - 1))


def _sweep(layers: list[list[int]], items: list[_Item], downwards: bool) -> None:
    """Order each layer by the mean rank of its neighbours in the layer before it."""
    order = range(1, len(layers)) if downwards else range(len(layers) - 2, -1, -1)
    for index in order:
        fixed = layers[index - 1] if downwards else layers[index + 1]
        rank = {item: position for position, item in enumerate(fixed)}

        current = {item: position for position, item in enumerate(layers[index])}

        def key(item: int, rank: dict[int, int] = rank,
                current: dict[int, int] = current) -> tuple[float, int]:
            neighbours = [rank[other] for other in
                          (items[item].up if downwards else items[item].down) if other in rank]
            mean = sum(neighbours) / len(neighbours) if neighbours else current[item]
            return mean, current[item]

        layers[index].sort(key=key)


def _place(layers: list[list[int]], items: list[_Item]) -> None:
    def span(layer: list[int]) -> float:
        return sum(items[index].width for index in layer) + GAP_X * max(len(layer) - 1, 0)

    widest = max(span(layer) for layer in layers)
    for layer in layers:
        x = (widest - span(layer)) / 2
        for index in layer:
            items[index].x = x + items[index].width / 2
            x += items[index].width + GAP_X
    # pull items towards the mean of their neighbours, down then up, keeping the order
    for downwards in (True, False) * PULLS:
        order = layers[1:] if downwards else layers[-2::-1]
        for layer in order:
            desired = {}
            for index in layer:
                neighbours = items[index].up if downwards else items[index].down
                desired[index] = (sum(items[other].x for other in neighbours) / len(neighbours)
                                  if neighbours else items[index].x)
            _settle(layer, items, desired)


def _settle(layer: list[int], items: list[_Item], desired: dict[int, float]) -> None:
    """Move a layer's items to their desired centres, in order and without overlaps: each
    block of items that would overlap sits where its members are, on average, closest to
    their desires (blocks merge in O(1): a block keeps its members' count, its width and
    the sum of their desires less their offsets in it)."""
    # each block: [first member's position in layer, count, width, sum of desire - offset]
    blocks: list[list[float]] = []
    for position, index in enumerate(layer):
        width = items[index].width
        blocks.append([position, 1, width, desired[index] - width / 2])
        while len(blocks) > 1:
            left, right = blocks[-2], blocks[-1]
            if left[3] / left[1] + left[2] + GAP_X <= right[3] / right[1]:
                break
            shift = left[2] + GAP_X
            blocks[-2:] = [[left[0], left[1] + right[1], shift + right[2],
                            left[3] + right[3] - right[1] * shift]]
    for first, count, _, total in blocks:
        x = total / count
        for index in layer[int(first):int(first + count)]:
            items[index].x = x + items[index].width / 2
            x += items[index].width + GAP_X


def _clip(text: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _edge_path(points: list[tuple[float, float]]) -> str:
    """A smooth path through ``points``: straight down through a layer, a vertical
    S-curve between layers."""
    (x0, y0), rest = points[0], points[1:]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for x1, y1 in rest:
        if x1 == x0:
            parts.append(f"L{x1:.1f},{y1:.1f}")
        else:
            middle = (y0 + y1) / 2
            parts.append(f"C{x0:.1f},{middle:.1f} {x1:.1f},{middle:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(parts)


def layout(  # noqa: C901, PLR0912, PLR0915 - the layered layout of a graph, one algorithm read top to bottom
        jobs: Sequence[dict[str, Any]], edges: Iterable[tuple[str, str]],
           current: str | None = None) -> dict[str, Any]:
    """The drawing of a graph: ``jobs`` are rows (uuid, state, func_name, description),
    in creation order; ``edges`` (parent uuid, child uuid) pairs. Returns the SVG's size,
    its nodes (box, labels, tooltip, state, whether it is ``current``) and its edges
    (a path from the bottom of the parent to the top of the child)."""
    uuids = [str(job["uuid"]) for job in jobs]
    rows = {str(job["uuid"]): job for job in jobs}
    pairs = sorted({(str(parent), str(child)) for parent, child in edges
                    if str(parent) in rows and str(child) in rows and parent != child})
    depth = depths(uuids, pairs)
    items: list[_Item] = []
    index_of: dict[str, int] = {}
    for uuid in uuids:
        index_of[uuid] = len(items)
        items.append(_Item(uuid, depth[uuid], NODE_W))
    routes: list[tuple[str, str, list[int]]] = []
    for parent, child in pairs:
        route = [index_of[parent]]
        for layer in range(depth[parent] + 1, depth[child]):
            route.append(len(items))
            items.append(_Item((parent, child, layer), layer, POINT_W))
        route.append(index_of[child])
        if depth[child] > depth[parent]:
            for upper, lower in itertools.pairwise(route):
                items[upper].down.append(lower)
                items[lower].up.append(upper)
        routes.append((parent, child, route))
    layers: list[list[int]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for index, item in enumerate(items):
        layers[item.layer].append(index)
    if layers:
        best = [list(layer) for layer in layers]
        fewest = _total_crossings(best, items)
        for sweep in range(SWEEPS):
            _sweep(layers, items, downwards=sweep % 2 == 0)
            crossings = _total_crossings(layers, items)
            if crossings < fewest:
                best, fewest = [list(layer) for layer in layers], crossings
        layers = best
        _place(layers, items)
        left = min(item.x - item.width / 2 for item in items)
        for item in items:
            item.x += MARGIN - left
    width = max((item.x + item.width / 2 for item in items), default=0) + MARGIN
    height = MARGIN * 2 + len(layers) * NODE_H + max(len(layers) - 1, 0) * GAP_Y

    def top(layer: int) -> float:
        return MARGIN + layer * (NODE_H + GAP_Y)

    nodes = []
    for uuid in uuids:
        job, item = rows[uuid], items[index_of[uuid]]
        function = str(job.get("func_name") or "")
        state = str(job.get("state") or "")
        description = str(job.get("description") or "")
        nodes.append({
            "uuid": uuid, "state": state, "current": uuid == current,
            "external": bool(job.get("external")),
            "x": round(item.x - NODE_W / 2, 1), "y": round(top(item.layer), 1),
            "width": NODE_W, "height": NODE_H, "cx": round(item.x, 1),
            "label": _clip(function.rsplit(".", 1)[-1] or function),
            "sublabel": _clip(f"{state} · {uuid[:8]}", SUBLABEL_CHARS),
            "title": "\n".join(part for part in (function, description, f"{state} · {uuid}")
                               if part)})
    # where edges leave a box (its bottom) and reach one (its top): spread along it in
    # the order of the other ends, so that the arrows of a job with several parents do
    # not meet in one point
    leave: dict[int, list[tuple[float, int]]] = defaultdict(list)
    reach: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for number, (_, _, route) in enumerate(routes):
        if len(route) > 1:
            leave[route[0]].append((items[route[1]].x, number))
            reach[route[-1]].append((items[route[-2]].x, number))
    departs: dict[int, float] = {}
    arrives: dict[int, float] = {}
    for ends, ports in ((leave, departs), (reach, arrives)):
        for index, others in ends.items():
            others.sort()
            step = min(PORT_STEP, (NODE_W - 2 * PORT_EDGE) / max(len(others) - 1, 1))
            for rank, (_, number) in enumerate(others):
                ports[number] = items[index].x + (rank - (len(others) - 1) / 2) * step
    drawn = []
    for number, (parent, child, route) in enumerate(routes):
        points: list[tuple[float, float]] = []
        for position, index in enumerate(route):
            item = items[index]
            y = top(item.layer)
            if position == 0:
                points.append((departs.get(number, item.x), y + NODE_H))
            elif position == len(route) - 1:
                points.append((arrives.get(number, item.x), y))
            else:  # through the layer it crosses
                points += [(item.x, y), (item.x, y + NODE_H)]
        if items[route[-1]].layer <= items[route[0]].layer:
            # an edge of a cycle (not stored by the API): from the parent's side up
            start, end = items[route[0]], items[route[-1]]
            points = [(start.x + NODE_W / 2, top(start.layer) + NODE_H / 2),
                      (end.x + NODE_W / 2, top(end.layer) + NODE_H / 2)]
        drawn.append({"parent": parent, "child": child, "d": _edge_path(points),
                      "done": rows[parent].get("state") == "done"})
    return {"width": round(width, 1), "height": round(height, 1), "nodes": nodes,
            "edges": drawn, "layers": len(layers)}


#: the most jobs listed in a graph's table
TABLE_LIMIT = 300


def graph_view(jobs: Sequence[dict[str, Any]], edges: Iterable[tuple[str, str]],
               current: str | None = None, *, max_drawn: int = MAX_DRAWN,
               table_limit: int = TABLE_LIMIT) -> dict[str, Any]:
    """What a job's page shows of its graph: the drawing (None beyond ``max_drawn``
    jobs, or when its edges cross more than MAX_POINTS layers in all), the jobs by
    state, and the table's rows in layer order (then creation order), each with the
    uuids of the jobs it waits for."""
    pairs = [(str(parent), str(child)) for parent, child in edges]
    uuids = [str(job["uuid"]) for job in jobs]
    depth = depths(uuids, pairs)
    parents: dict[str, list[str]] = defaultdict(list)
    for parent, child in sorted(set(pairs)):
        parents[child].append(parent)
    by_state: dict[str, int] = defaultdict(int)
    for job in jobs:
        by_state[str(job["state"])] += 1
    order = sorted(range(len(jobs)), key=lambda index: (depth[uuids[index]], index))
    rows = [{"job": jobs[index], "uuid": uuids[index], "depth": depth[uuids[index]],
             "parents": parents.get(uuids[index], [])} for index in order[:table_limit]]
    known = set(uuids)
    points = sum(max(depth[child] - depth[parent] - 1, 0) for parent, child in set(pairs)
                 if parent in known and child in known)
    drawable = len(jobs) <= max_drawn and points <= MAX_POINTS
    return {"count": len(jobs), "by_state": dict(sorted(by_state.items())),
            "drawing": layout(jobs, pairs, current) if drawable else None,
            "tangled": len(jobs) <= max_drawn and not drawable,
            "max_drawn": max_drawn, "rows": rows, "hidden": max(len(jobs) - table_limit, 0)}
