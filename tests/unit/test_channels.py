"""The channel configuration string and the channel tree."""

from __future__ import annotations

import pytest

from queuejob import ConfigurationError
from queuejob.core.channels import (
    ROOT,
    ChannelSpec,
    ChannelTree,
    ancestors,
    normalize_name,
    parse_channels,
)


def test_issue_example():
    assert parse_channels("root:4,root.export:1") == [
        ChannelSpec("root", capacity=4),
        ChannelSpec("root.export", capacity=1),
    ]


def test_root_prefix_is_optional():
    assert parse_channels("export:2,root.import:3,export.invoices:1") == [
        ChannelSpec("root.export", capacity=2),
        ChannelSpec("root.import", capacity=3),
        ChannelSpec("root.export.invoices", capacity=1),
    ]


def test_a_name_only_starting_with_root_is_still_a_child_of_root():
    assert [spec.name for spec in parse_channels("rooted:2,root_x:1")] == [
        "root.rooted", "root.root_x"]


def test_capacity_is_one_when_left_out():
    assert parse_channels("root.export") == [ChannelSpec("root.export", capacity=1)]
    assert parse_channels("root") == [ChannelSpec("root", capacity=1)]


def test_entries_separated_by_newlines_and_commas():
    text = "root:4\nexport:2,import:3\n  \nmail:1"
    assert [(spec.name, spec.capacity) for spec in parse_channels(text)] == [
        ("root", 4), ("root.export", 2), ("root.import", 3), ("root.mail", 1)]


def test_whitespace_is_stripped_everywhere():
    text = "  root : 4 ,\n\t root.export : 2 : throttle = 5 , seq : 1 : sequential  "
    assert parse_channels(text) == [
        ChannelSpec("root", capacity=4),
        ChannelSpec("root.export", capacity=2, throttle=5),
        ChannelSpec("root.seq", capacity=1, sequential=True),
    ]


@pytest.mark.parametrize("text", ["", " ", ",", ",,\n,", "\n\n"])
def test_a_string_of_empty_entries_configures_nothing(text):
    assert parse_channels(text) == []


def test_empty_entries_are_ignored():
    assert parse_channels(",root:2,,\n\n,export:1,") == [
        ChannelSpec("root", capacity=2), ChannelSpec("root.export", capacity=1)]


def test_sequential_key():
    (spec,) = parse_channels("root.seq:1:sequential")
    assert spec.sequential is True
    assert spec.capacity == 1
    assert spec.throttle == 0


def test_throttle_key_is_seconds_between_starts():
    (spec,) = parse_channels("root.api:3:throttle=10")
    assert spec.throttle == 10
    assert spec.capacity == 3
    assert spec.sequential is False


def test_both_keys_together():
    (spec,) = parse_channels("slow:1:sequential:throttle=2")
    assert (spec.name, spec.capacity, spec.sequential, spec.throttle) == (
        "root.slow", 1, True, 2)


def test_unconfigured_keys_default_to_off():
    (spec,) = parse_channels("root.plain:2")
    assert spec.sequential is False
    assert spec.throttle == 0


@pytest.mark.parametrize("entry", ["root.seq:2:sequential", "seq:4:sequential"])
def test_sequential_with_a_capacity_other_than_one_is_refused(entry):
    with pytest.raises(ValueError, match="sequential") as caught:
        parse_channels(f"root:4,{entry}")
    assert entry in str(caught.value)


def test_sequential_spec_with_capacity_other_than_one_is_refused_directly():
    with pytest.raises(ValueError, match="sequential"):
        ChannelSpec("root.seq", capacity=3, sequential=True)
    assert ChannelSpec("root.seq", capacity=1, sequential=True).sequential


def test_configuration_error_is_a_value_error():
    assert issubclass(ConfigurationError, ValueError)


@pytest.mark.parametrize("entry", [
    "root:four",          # capacity not a number
    "root:4.5",           # capacity not a whole number
    "root:-1",            # negative capacity
    "root.export:1:speed=3",    # unknown key
    "root.export:1:throttle=soon",  # throttle not a number
    "root.export:1:throttle",       # throttle without a value
    "root.export:1:throttle=-5",    # negative throttle
    ":4",                 # no name
    "root..export:1",     # empty name part
    "export.:1",          # empty last part
])
def test_a_malformed_entry_is_a_value_error_naming_it(entry):
    with pytest.raises(ValueError) as caught:
        parse_channels(f"root:4,{entry},other:1")
    assert isinstance(caught.value, ConfigurationError)
    message = str(caught.value)
    assert entry in message
    assert "\n" not in message


@pytest.mark.parametrize("name", [
    "root.a'b",
    'root.a"b',
    "root.a;b",
    "root.a b",
    "root.a)b",
    "root.a%b",
    "root.a*b",
    "root.a/b",
    "export'; DROP TABLE queue_job; --",
    "root.é",
])
def test_names_with_sql_or_other_metacharacters_are_refused(name):
    with pytest.raises(ValueError) as caught:
        parse_channels(f"{name}:1")
    assert name in str(caught.value)
    with pytest.raises(ValueError):
        normalize_name(name)


@pytest.mark.parametrize(("name", "full"), [
    ("root", "root"),
    ("export", "root.export"),
    ("root.export", "root.export"),
    (" export.sub ", "root.export.sub"),
    ("Export_2-b", "root.Export_2-b"),
])
def test_normalize_name(name, full):
    assert normalize_name(name) == full


def test_parse_refuses_what_is_not_a_string():
    with pytest.raises(ValueError):
        parse_channels(None)


def test_ancestors_go_up_to_root():
    assert ancestors("root.a.b") == ["root.a.b", "root.a", "root"]
    assert ancestors("root") == ["root"]


@pytest.fixture
def tree():
    return ChannelTree.from_string("root:4,root.A:2,root.A.B:1,root.C.D:1")


@pytest.mark.parametrize(("channel", "runs_in"), [
    ("root", "root"),
    ("root.A", "root.A"),
    ("root.A.B", "root.A.B"),
    ("root.A.B.x.y", "root.A.B"),
    ("root.A.other", "root.A"),
    ("root.C", "root"),          # only its child is configured
    ("root.C.D", "root.C.D"),
    ("root.C.E", "root"),
    ("root.AB", "root"),         # not a child of root.A despite the common prefix
    ("root.unknown", "root"),
])
def test_resolve_gives_the_nearest_configured_ancestor(tree, channel, runs_in):
    assert tree.resolve(channel) == runs_in


def test_root_is_always_present_and_unlimited_unless_configured():
    tree = ChannelTree.from_string("root.export:1")
    assert tree.resolve("root.import") == ROOT
    assert tree.specs[ROOT].capacity is None
    assert ChannelTree.from_string("root:3").specs[ROOT].capacity == 3


def test_path_lists_the_configured_channels_up_to_root(tree):
    assert tree.path("root.A.B.x") == ["root.A.B", "root.A", "root"]
    assert tree.path("root.A.other") == ["root.A", "root"]
    assert tree.path("root.C.D") == ["root.C.D", "root"]  # root.C is not configured
    assert tree.path("root.zzz") == ["root"]


def test_aggregate_counts_running_jobs_against_every_configured_ancestor(tree):
    totals = tree.aggregate({"root.A.B.x": 1, "root.A": 2, "root.C.D": 1,
                             "root.C.E": 3, "root": 1})
    assert totals == {"root": 8, "root.A": 3, "root.A.B": 1, "root.C.D": 1}


def test_aggregate_of_nothing_running_is_zero_everywhere(tree):
    assert tree.aggregate({}) == {"root": 0, "root.A": 0, "root.A.B": 0, "root.C.D": 0}
