"""The layout of a job graph's drawing (queuejob.web.graphs): pure, no database."""

from __future__ import annotations

import itertools
import re

import pytest

from queuejob.web import graphs


def rows(count: int, state: str = "pending", prefix: str = "j") -> list[dict]:
    return [{"uuid": f"{prefix}{index}", "state": state, "func_name": f"mod.fn{index}",
             "description": f"job {index}"} for index in range(count)]


def nodes_by_uuid(drawing: dict) -> dict[str, dict]:
    return {node["uuid"]: node for node in drawing["nodes"]}


def layer_of(drawing: dict, uuid: str) -> int:
    node = nodes_by_uuid(drawing)[uuid]
    return round((node["y"] - graphs.MARGIN) / (graphs.NODE_H + graphs.GAP_Y))


def check_geometry(drawing: dict, edges: list[tuple[str, str]]) -> None:
    """What every drawing must be: boxes inside the picture, none overlapping, each
    below the jobs it waits for, and one path per edge from parent to child."""
    nodes = nodes_by_uuid(drawing)
    for node in nodes.values():
        assert node["x"] >= 0 and node["y"] >= 0
        assert node["x"] + node["width"] <= drawing["width"]
        assert node["y"] + node["height"] <= drawing["height"]
    for first, second in itertools.combinations(nodes.values(), 2):
        apart_x = first["x"] + first["width"] <= second["x"] or \
            second["x"] + second["width"] <= first["x"]
        apart_y = first["y"] + first["height"] <= second["y"] or \
            second["y"] + second["height"] <= first["y"]
        assert apart_x or apart_y, (first["uuid"], second["uuid"])
    for parent, child in edges:
        assert nodes[child]["y"] >= nodes[parent]["y"] + nodes[parent]["height"] + graphs.GAP_Y
    drawn = {(edge["parent"], edge["child"]): edge["d"] for edge in drawing["edges"]}
    assert set(drawn) == set(edges)
    for (parent, child), path in drawn.items():
        numbers = [float(value) for value in re.findall(r"-?\d+(?:\.\d+)?", path)]
        start, end = numbers[:2], numbers[-2:]
        # from the bottom side of the parent's box to the top side of the child's
        assert start[1] == nodes[parent]["y"] + nodes[parent]["height"]
        assert nodes[parent]["x"] <= start[0] <= nodes[parent]["x"] + nodes[parent]["width"]
        assert end[1] == nodes[child]["y"]
        assert nodes[child]["x"] <= end[0] <= nodes[child]["x"] + nodes[child]["width"]


def test_depths_are_the_longest_path_from_a_root():
    nodes = ["a", "b", "c", "d", "e"]
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("c", "d")]
    assert graphs.depths(nodes, edges) == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0}


def test_depths_ignore_unknown_ends_and_self_loops_and_survive_a_cycle():
    assert graphs.depths(["a", "b"], [("x", "a"), ("a", "a"), ("a", "b"), ("b", "y")]) == \
        {"a": 0, "b": 1}
    # a cycle (which the API refuses to store): its jobs go below the others
    found = graphs.depths(["r", "a", "b"], [("r", "a"), ("a", "b"), ("b", "a")])
    assert found["r"] == 0 and found["a"] == found["b"] == 1


def test_a_chain_is_a_straight_column():
    jobs = rows(4)
    edges = [("j0", "j1"), ("j1", "j2"), ("j2", "j3")]
    drawing = graphs.layout(jobs, edges, current="j2")
    check_geometry(drawing, edges)
    assert [layer_of(drawing, f"j{index}") for index in range(4)] == [0, 1, 2, 3]
    assert len({node["x"] for node in drawing["nodes"]}) == 1
    assert drawing["layers"] == 4
    assert [node["uuid"] for node in drawing["nodes"] if node["current"]] == ["j2"]
    assert drawing["width"] == graphs.NODE_W + 2 * graphs.MARGIN
    # straight lines between boxes one above the other
    assert all("C" not in edge["d"] for edge in drawing["edges"])


def test_the_composition_of_the_issue():
    """group(chain(1, 2), chain(3, 4)).on_done(chain(5, 6))."""
    jobs = rows(7)[1:]
    edges = [("j1", "j2"), ("j3", "j4"), ("j2", "j5"), ("j4", "j5"), ("j5", "j6")]
    drawing = graphs.layout(jobs, edges)
    check_geometry(drawing, edges)
    assert {uuid: layer_of(drawing, uuid) for uuid in ("j1", "j2", "j3", "j4", "j5", "j6")} \
        == {"j1": 0, "j3": 0, "j2": 1, "j4": 1, "j5": 2, "j6": 3}
    nodes = nodes_by_uuid(drawing)
    # no crossing: each chain keeps its side, and both chains meet under their middle
    assert (nodes["j1"]["x"] < nodes["j3"]["x"]) == (nodes["j2"]["x"] < nodes["j4"]["x"])
    assert min(nodes["j2"]["cx"], nodes["j4"]["cx"]) < nodes["j5"]["cx"] \
        < max(nodes["j2"]["cx"], nodes["j4"]["cx"])
    assert nodes["j5"]["cx"] == nodes["j6"]["cx"]
    # the two arrows reaching j5 end at two points of its top side
    ends = {edge["d"].split()[-1] for edge in drawing["edges"] if edge["child"] == "j5"}
    assert len(ends) == 2


def test_a_long_edge_goes_around_the_layers_between():
    # a -> b -> c -> d, and a -> d directly: the direct edge passes layers 1 and 2
    jobs = [{"uuid": name, "state": "done" if name == "a" else "wait_dependencies",
             "func_name": name} for name in "abcd"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")]
    drawing = graphs.layout(jobs, edges)
    check_geometry(drawing, edges)
    direct = next(edge for edge in drawing["edges"] if edge["child"] == "d"
                  and edge["parent"] == "a")
    # it goes straight through each layer it crosses, beside the boxes there
    nodes = nodes_by_uuid(drawing)
    points = [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)",
                                                         direct["d"])]
    for name in "bc":
        box = nodes[name]
        # the two ends of its straight part in the layer of b, and in that of c
        beside = [x for x, y in points if y in (box["y"], box["y"] + box["height"])]
        assert len(beside) >= 2 and len(set(beside)) == 1
        assert not box["x"] <= beside[0] <= box["x"] + box["width"]
        assert f"L{beside[0]:.1f},{box['y'] + box['height']:.1f}" in direct["d"]
    # lines from a done job are marked (drawn green)
    assert {(edge["parent"], edge["done"]) for edge in drawing["edges"]} == \
        {("a", True), ("b", False), ("c", False)}


def test_order_keeps_a_wide_fan_without_crossings():
    # two roots, each with its own three children, declared interleaved
    jobs = [{"uuid": uuid, "state": "pending", "func_name": uuid}
            for uuid in ["r1", "r2", "a1", "b1", "a2", "b2", "a3", "b3"]]
    edges = [("r1", "a1"), ("r1", "a2"), ("r1", "a3"), ("r2", "b1"), ("r2", "b2"),
             ("r2", "b3")]
    drawing = graphs.layout(jobs, edges)
    check_geometry(drawing, edges)
    nodes = nodes_by_uuid(drawing)
    children = sorted(["a1", "a2", "a3", "b1", "b2", "b3"], key=lambda uuid: nodes[uuid]["x"])
    # the children of each root side by side: no crossing lines
    assert {uuid[0] for uuid in children[:3]} == {children[0][0]}
    assert {uuid[0] for uuid in children[3:]} == {children[3][0]}


@pytest.mark.parametrize("count", [1, 12, graphs.MAX_DRAWN])
def test_groups_of_any_size_up_to_the_limit(count):
    jobs = rows(count + 2)
    edges = [("j0", f"j{index}") for index in range(1, count + 1)] + \
        [(f"j{index}", f"j{count + 1}") for index in range(1, count + 1)]
    drawing = graphs.layout(jobs, edges, current="j1")
    check_geometry(drawing, edges)
    assert len(drawing["nodes"]) == count + 2
    assert drawing["layers"] == 3


def test_labels_are_clipped_and_tooltips_complete():
    long_name = "mod.sub." + "export_every_partner_to_the_crm_" * 3
    jobs = [{"uuid": "0123456789abcdef", "state": "failed", "func_name": long_name,
             "description": "Export\nthe partners"}]
    (node,) = graphs.layout(jobs, [])["nodes"]
    assert node["label"].endswith("…") and len(node["label"]) == graphs.LABEL_CHARS
    assert long_name.rsplit(".", 1)[-1].startswith(node["label"][:-1])
    assert node["sublabel"] == "failed · 01234567"
    assert node["title"] == f"{long_name}\nExport\nthe partners\nfailed · 0123456789abcdef"


def test_an_empty_graph_and_edges_to_jobs_not_drawn():
    assert graphs.layout([], [])["nodes"] == []
    drawing = graphs.layout(rows(2), [("j0", "j1"), ("gone", "j1"), ("j1", "j1")])
    assert [(edge["parent"], edge["child"]) for edge in drawing["edges"]] == [("j0", "j1")]


def test_the_same_graph_gives_the_same_drawing():
    jobs = rows(9)
    edges = [("j0", "j3"), ("j1", "j3"), ("j2", "j4"), ("j3", "j5"), ("j4", "j5"),
             ("j0", "j6"), ("j6", "j7"), ("j5", "j8"), ("j7", "j8"), ("j1", "j8")]
    first = graphs.layout(jobs, edges, "j5")
    check_geometry(first, edges)
    assert graphs.layout(jobs, list(reversed(edges)), "j5") == first


def test_the_view_of_a_graph_too_big_to_draw():
    count = graphs.MAX_DRAWN + 1
    jobs = rows(count, state="done")
    edges = [(f"j{index}", f"j{index + 1}") for index in range(count - 1)]
    view = graphs.graph_view(list(reversed(jobs)), edges, "j3")
    assert view["drawing"] is None
    assert view["count"] == count and view["hidden"] == 0
    assert view["by_state"] == {"done": count}
    # the table lists parents first, each row with the jobs it waits for
    assert [row["uuid"] for row in view["rows"]] == [f"j{index}" for index in range(count)]
    assert view["rows"][0]["parents"] == [] and view["rows"][5]["parents"] == ["j4"]
    assert [row["depth"] for row in view["rows"][:3]] == [0, 1, 2]


def test_the_view_of_a_small_graph_and_a_table_limit():
    jobs = rows(3)
    jobs[1]["state"] = "failed"
    view = graphs.graph_view(jobs, [("j0", "j1"), ("j0", "j2")], "j0", table_limit=2)
    assert view["drawing"] is not None and len(view["drawing"]["nodes"]) == 3
    assert view["by_state"] == {"failed": 1, "pending": 2}
    assert [row["uuid"] for row in view["rows"]] == ["j0", "j1"]
    assert view["hidden"] == 1


def test_a_tangled_graph_is_listed_not_drawn():
    # 30 jobs, each waiting for every job before it: its edges cross thousands of layers
    jobs = rows(30)
    edges = [(f"j{first}", f"j{second}") for first in range(30)
             for second in range(first + 1, 30)]
    view = graphs.graph_view(jobs, edges)
    assert view["drawing"] is None and view["tangled"]
    assert [row["depth"] for row in view["rows"]] == list(range(30))
    # the same jobs in a chain are drawn
    chained = graphs.graph_view(jobs, [(f"j{index}", f"j{index + 1}") for index in range(29)])
    assert chained["drawing"] is not None and not chained["tangled"]
