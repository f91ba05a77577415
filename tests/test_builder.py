"""The successor's builder on a Delayable: ``set()`` of its properties, ``split()`` of its
records into a group or a chain of jobs."""

from __future__ import annotations

import datetime as dt

import pytest

import queuejob
from queuejob import GraphError, chain, group, identity_exact
from queuejob.core import limits
from queuejob.core.graph import Chain, Group
from tests import jobs
from tests.helpers import load, run_burst, states

FAR = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=dt.UTC)


@pytest.fixture
def session(db):
    """A session of each backend, for builders that are not stored."""
    with db.session() as session:
        yield session


def graph_edges(db, delayable):
    """The stored (parent, child) uuid pairs of a delayable's graph."""
    _, edges = queuejob.operations.graph(db, load(db, delayable.uuid).graph_uuid)
    return {(edge["parent_uuid"], edge["child_uuid"]) for edge in edges}


# -- set ------------------------------------------------------------------------------------
def test_set_takes_a_dict_and_keywords_is_chainable_and_is_stored(db):
    with db.session() as session:
        built = jobs.add.delayable(session, "m", 1, 2)
        assert built.set({"priority": 3, "channel": "root.a"}, eta=FAR) is built
        built.set(max_retries=2).set(description="Set later", timeout=7,
                                     identity_key="set-key")
        built.delay()
    job = load(db, built.uuid)
    assert (job.priority, job.channel, job.eta, job.max_retries) == (3, "root.a", FAR, 2)
    assert (job.description, job.timeout, job.identity_key) == ("Set later", 7.0, "set-key")
    assert (job.args, job.kwargs) == (("m", 1, 2), {})


def test_keywords_win_over_the_dict(session):
    built = jobs.add.delayable(session, "m", 1, 2)
    built.set({"priority": 3}, priority=4)
    assert built.job.priority == 4


def test_set_overrides_what_delayable_was_given_and_none_gives_the_default_back(session):
    built = jobs.export.delayable(session, "m", "/dev/null", channel="root.other", priority=1,
                                  description="Given")
    built.set(channel=None, priority=None, description=None)
    assert (built.job.channel, built.job.priority, built.job.description) == \
        ("root.export", 10, "Export: logs its execution (channel root.export).")
    assert built.job.channel_given is False


def test_an_eta_in_seconds_is_stored_with_the_database_s_clock(db):
    before = dt.datetime.now(dt.UTC)
    with db.session() as session:
        built = jobs.add.delayable(session, "m", 1, 2).set(eta=dt.timedelta(hours=5))
        assert built.job.eta_delay == 5 * 3600
        built.delay()
    stored = load(db, built.uuid).eta
    assert before + dt.timedelta(hours=5, seconds=-5) <= stored
    assert stored <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=5, seconds=5)


def test_an_unknown_property_is_refused_and_nothing_is_changed(session):
    built = jobs.add.delayable(session, "m", 1, 2, priority=1)
    with pytest.raises(ValueError, match=r"^No property model_name$"):
        built.set(priority=5, model_name="other")
    with pytest.raises(ValueError, match=r"^No property foo$"):
        built.set({"foo": 1})
    with pytest.raises(TypeError, match="takes dicts of properties"):
        built.set([("priority", 5)])  # type: ignore[arg-type]
    assert built.job.priority == 1 and built.job.args == ("m", 1, 2)


@pytest.mark.parametrize("properties", [
    {"priority": "high"}, {"priority": 2**40}, {"max_retries": -1}, {"timeout": 0},
    {"eta": "tomorrow"}, {"eta": float("nan")}, {"description": 5},
    {"description": "x" * (limits.DESCRIPTION + 1)}, {"identity_key": 5},
    {"channel": "root..bad"},
])
def test_set_checks_each_property_as_delay_does(db, properties):
    with db.session() as session:
        with pytest.raises((TypeError, ValueError)) as from_delay:
            jobs.add.delay(session, "m", 1, 2, **properties)
        built = jobs.add.delayable(session, "m", 1, 2, priority=1)
        before = dict(vars(built.job))
        right = {"timeout": 3, "description": "right"}  # set with the wrong one: not at all
        with pytest.raises(type(from_delay.value)) as from_set:
            built.set({key: value for key, value in right.items() if key not in properties},
                      **properties)
        assert str(from_set.value) == str(from_delay.value)
        assert vars(built.job) == before
        built.delay()
    assert states(db) == {"pending": 1}


def test_set_takes_an_identity_function(db):
    with db.session() as session:
        first = jobs.add.delay(session, "m", 1, 2, identity_key=identity_exact)
        again = jobs.add.delayable(session, "m", 1, 2).set(identity_key=identity_exact)
        again.delay()
        other = jobs.add.delayable(session, "m", 1, 3).set(identity_key=identity_exact)
        other.delay()
    assert again.uuid == first and other.uuid != first
    assert states(db) == {"pending": 2}


def test_set_is_refused_once_the_graph_is_stored(db):
    with db.session() as session:
        a, b = (jobs.add.delayable(session, "m", 1, 2) for _ in range(2))
        a.on_done(b)
        a.set(priority=3)  # linked but not stored: allowed
        chain(a).delay()
        with pytest.raises(GraphError, match="already stored"):
            b.set(priority=4)
        assert isinstance(GraphError("x"), ValueError)
    assert load(db, b.uuid).priority == 10 and load(db, a.uuid).priority == 3


def test_set_is_refused_on_a_job_skipped_for_its_identity_keys(db):
    """A graph whose keyed jobs all exist stores nothing: it was delayed all the same."""
    with db.session() as session:
        jobs.add.delay(session, "m", 1, 2, identity_key="held")
        keyed = jobs.add.delayable(session, "m", 1, 2, identity_key="held")
        unkeyed = jobs.add.delayable(session, "m", 3, 4)
        keyed.on_done(unkeyed).delay()
        assert unkeyed.uuid is None
        with pytest.raises(GraphError, match="already stored"):
            unkeyed.set(priority=1)


# -- split ----------------------------------------------------------------------------------
def test_split_makes_a_group_of_parts_of_size_records(db):
    with db.session() as session:
        whole = jobs.add.delayable(session, "res.partner", [1, 2, 3, 4, 5], [0],
                                   priority=4, channel="root.split", max_retries=2,
                                   eta=FAR, timeout=9)
        parts = whole.split(2)
        assert isinstance(parts, Group)
        parts.delay()
    uuids = [part.uuid for part in parts.delayables()]
    stored = [load(db, job_uuid) for job_uuid in uuids]
    assert [job.args for job in stored] == [
        ("res.partner", [1, 2], [0]), ("res.partner", [3, 4], [0]), ("res.partner", [5], [0])]
    assert [job.description for job in stored] == [
        f"Add two numbers. (split {index}/3)" for index in (1, 2, 3)]
    for job in stored:
        assert (job.func_name, job.model_name, job.kwargs) == \
            ("tests.jobs.add", "res.partner", {})
        assert (job.priority, job.channel, job.max_retries, job.eta, job.timeout) == \
            (4, "root.split", 2, FAR, 9.0)
        assert job.state == "pending"
    assert len({job.graph_uuid for job in stored}) == 1 and whole.uuid is None
    assert graph_edges(db, parts.delayables()[0]) == set()


def test_split_with_chain_runs_the_parts_one_after_the_other(db):
    with db.session() as session:
        whole = jobs.add.delayable(session, "m", (1, 2, 3, 4), (0,))
        parts = whole.split(3, chain=True)
        assert isinstance(parts, Chain)
        parts.delay()
    first, second = parts.delayables()
    assert (load(db, first.uuid).args, load(db, second.uuid).args) == \
        (("m", (1, 2, 3), (0,)), ("m", (4,), (0,)))  # tuples stay tuples
    assert [load(db, d.uuid).state for d in (first, second)] == \
        ["pending", "wait_dependencies"]
    assert graph_edges(db, first) == {(first.uuid, second.uuid)}
    run_burst(db)
    assert [load(db, d.uuid).result for d in (first, second)] == ["(1, 2, 3, 0)", "(4, 0)"]


def test_the_parts_keep_the_other_arguments_and_keywords(session):
    whole = jobs.noop.delayable(session, "m", ["a", "b", "c"], "after", flag=True)
    parts = whole.split(2).delayables()
    assert [(part.job.args, part.job.kwargs) for part in parts] == [
        (("m", ["a", "b"], "after"), {"flag": True}), (("m", ["c"], "after"), {"flag": True})]
    parts[0].job.kwargs["flag"] = False  # each part has keywords of its own
    assert parts[1].job.kwargs == {"flag": True} and whole.job.kwargs == {"flag": True}
    assert len({part.job.uuid for part in parts} | {whole.job.uuid}) == 3


def test_a_size_larger_than_the_records_gives_one_part(session):
    parts = jobs.noop.delayable(session, "m", [1, 2]).split(10).delayables()
    assert [part.job.args for part in parts] == [("m", [1, 2])]
    assert parts[0].job.description == "Do nothing. (split 1/1)"


def test_the_parts_can_be_composed_and_set(db):
    with db.session() as session:
        prepare = jobs.add.delayable(session, "m", 1, 1)
        parts = jobs.add.delayable(session, "m", [1, 2, 3], [9]).split(1)
        parts.delayables()[2].set(priority=1)
        finish = jobs.add.delayable(session, "m", 2, 2)
        chain(prepare, parts, finish).delay()
    a, b, c = parts.delayables()
    assert load(db, c.uuid).priority == 1 and load(db, a.uuid).priority == 10
    assert graph_edges(db, prepare) == {
        (prepare.uuid, a.uuid), (prepare.uuid, b.uuid), (prepare.uuid, c.uuid),
        (a.uuid, finish.uuid), (b.uuid, finish.uuid), (c.uuid, finish.uuid)}
    run_burst(db)
    assert load(db, finish.uuid).result == "4"
    assert states(db) == {"done": 5}


def test_the_parts_keep_an_identity_function_and_a_string_key(db):
    with db.session() as session:
        first = jobs.add.delayable(session, "m", [1, 2, 3, 4], [0],
                                   identity_key=identity_exact).split(2)
        first.delay()
        again = jobs.add.delayable(session, "m", [1, 2, 3, 4], [0],
                                   identity_key=identity_exact).split(2)
        again.delay()  # each part keyed on its own records: all exist, nothing stored
        shared = jobs.add.delayable(session, "m", [5, 6], [0], identity_key="one").split(1)
        shared.delay()
    assert [d.uuid for d in again.delayables()] == [d.uuid for d in first.delayables()]
    assert len({d.uuid for d in first.delayables()}) == 2
    # a string key is the same for every part: the first part stands in for the others
    one, two = shared.delayables()
    assert one.job.identity_key == two.job.identity_key == "one"
    assert two.uuid == one.uuid
    assert states(db) == {"pending": 3}


def test_a_long_description_is_cut_to_leave_room_for_the_suffix(session):
    whole = jobs.noop.delayable(session, "m", [1, 2], description="d" * limits.DESCRIPTION)
    parts = whole.split(1).delayables()
    assert [len(part.job.description) for part in parts] == [limits.DESCRIPTION] * 2
    assert parts[1].job.description.endswith("d (split 2/2)")


@pytest.mark.parametrize("args", [(), ("m",), ("m", 5), ("m", "abc"), ("m", []), ("m", ())],
                         ids=["no args", "model only", "an int", "a str", "empty list",
                              "empty tuple"])
def test_nothing_to_split_is_refused(args, session):
    whole = jobs.noop.delayable(session, *args)
    with pytest.raises(ValueError, match=r"^nothing to split: tests\.jobs\.noop has no list or "
                                         r"tuple of records as its second positional argument"):
        whole.split(1)


@pytest.mark.parametrize("size", [0, -3])
def test_a_size_below_one_is_refused(size, session):
    with pytest.raises(ValueError, match=f"split\\(\\) needs a size of at least 1, not {size}"):
        jobs.noop.delayable(session, "m", [1]).split(size)


@pytest.mark.parametrize("size", [True, 1.5, "2"])
def test_a_size_that_is_not_a_whole_number_is_refused(size, session):
    with pytest.raises(TypeError, match="whole number"):
        jobs.noop.delayable(session, "m", [1]).split(size)


def test_split_is_refused_on_a_job_already_in_a_graph(session):
    def built():
        return jobs.noop.delayable(session, "m", [1, 2])

    parent, child, member, alone = built(), built(), built(), built()
    parent.on_done(child)
    group(member, alone)
    chained = built()
    chain(chained)
    for linked in (parent, child, member, chained):
        with pytest.raises(GraphError, match="already in a graph: split it before composing"):
            linked.split(1)


def test_split_is_refused_on_a_stored_job_and_twice(db):
    with db.session() as session:
        stored = jobs.noop.delayable(session, "m", [1, 2])
        stored.delay()
        with pytest.raises(GraphError, match="already stored"):
            stored.split(1)
        whole = jobs.noop.delayable(session, "m", [1, 2])
        whole.split(1)
        with pytest.raises(GraphError, match="already split"):
            whole.split(1)
        with pytest.raises(GraphError, match="was split"):
            whole.set(priority=1)
        with pytest.raises(GraphError, match="was split: delay the parts"):
            whole.delay()
        with pytest.raises(GraphError, match="was split"):
            chain(jobs.noop.delayable(session, "m"), whole).delay()
    assert states(db) == {"pending": 1}
