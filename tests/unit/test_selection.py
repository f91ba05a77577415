"""Which due jobs a worker starts: capacities, order, sequential, throttle, pause."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queuejob.core.channels import ChannelSpec, ChannelTree
from queuejob.core.selection import (
    Candidate,
    Flow,
    Limits,
    flow_rules_only,
    per_channel_limits,
    select,
)


def as_tree(config: str | ChannelTree) -> ChannelTree:
    return config if isinstance(config, ChannelTree) else ChannelTree.from_string(config)


class Pool:
    """Pending jobs by name; ``start`` returns the names select() picks, in start order."""

    def __init__(self) -> None:
        self.candidates: list[Candidate] = []
        self.names: dict[int, str] = {}

    def add(self, name: str, channel: str, *, priority: int = 10,
            created: float | None = None, due: bool = True, ident: int | None = None) -> None:
        ident = len(self.candidates) + 1 if ident is None else ident
        self.candidates.append(Candidate(
            priority=priority, date_created=float(ident if created is None else created),
            id=ident, channel=channel, due=due))
        self.names[ident] = name

    def selection(self, local="root:100", shared="", *, limit=100, running=None,
                  all_running=None, failed=(), last_started=None, now=0.0):
        running = dict(running or {})
        all_running = dict(running if all_running is None else all_running)
        return select(
            reversed(self.candidates),  # the input order must not matter
            limit=limit,
            local=Limits(as_tree(local), running),
            shared=Limits(as_tree(shared), all_running),
            global_running=all_running,
            failed_channels=failed,
            last_started=last_started,
            now=now,
        )

    def start(self, *args, **kwargs) -> list[str]:
        return [self.names[cand.id] for cand in self.selection(*args, **kwargs).picked]


def test_issue_example_first_four_to_start():
    pool = Pool()
    for n in range(1, 7):
        pool.add(f"A{n}", "root.A", priority=10)
    pool.add("B1", "root.B", priority=5)
    pool.add("B2", "root.B", priority=5)
    assert pool.start("root:4,root.A:4,root.B:1") == ["B1", "A1", "A2", "A3"]


def test_issue_example_with_the_configuration_in_the_shared_tree():
    pool = Pool()
    for n in range(1, 7):
        pool.add(f"A{n}", "root.A", priority=10)
    pool.add("B1", "root.B", priority=5)
    pool.add("B2", "root.B", priority=5)
    assert pool.start("root:100", "root:4,root.A:4,root.B:1") == ["B1", "A1", "A2", "A3"]


def test_smaller_priority_starts_first():
    pool = Pool()
    pool.add("late-low", "root", priority=20, created=1)
    pool.add("urgent", "root", priority=1, created=3)
    pool.add("normal", "root", priority=10, created=2)
    assert pool.start() == ["urgent", "normal", "late-low"]


def test_same_priority_goes_by_creation_date():
    pool = Pool()
    pool.add("second", "root", created=200.0, ident=1)
    pool.add("first", "root", created=100.0, ident=2)
    pool.add("third", "root", created=300.0, ident=3)
    assert pool.start() == ["first", "second", "third"]


def test_same_priority_and_date_goes_by_creation_order():
    pool = Pool()
    pool.add("c", "root", created=5.0, ident=30)
    pool.add("a", "root", created=5.0, ident=10)
    pool.add("b", "root", created=5.0, ident=20)
    assert pool.start() == ["a", "b", "c"]


def test_a_job_that_is_not_due_waits_and_others_start():
    pool = Pool()
    pool.add("future", "root", priority=1, due=False)
    pool.add("now", "root", priority=50)
    assert pool.start() == ["now"]


def test_capacity_of_a_channel_holds():
    pool = Pool()
    for n in range(5):
        pool.add(f"E{n}", "root.export")
    assert pool.start("root:10,root.export:2") == ["E0", "E1"]


def test_a_high_priority_job_in_a_full_channel_does_not_block_others():
    pool = Pool()
    pool.add("A-urgent", "root.A", priority=0)
    pool.add("B-low", "root.B", priority=100)
    pool.add("C-low", "root.C", priority=100)
    started = pool.start("root:4,root.A:1", running={"root.A": 1})
    assert started == ["B-low", "C-low"]


def test_a_full_channel_skips_its_jobs_but_lower_priority_jobs_elsewhere_start():
    pool = Pool()
    pool.add("A1", "root.A", priority=1)
    pool.add("A2", "root.A", priority=2)
    pool.add("A3", "root.A", priority=3)
    pool.add("B1", "root.B", priority=50)
    assert pool.start("root:3,root.A:1") == ["A1", "B1"]


def test_running_jobs_count_against_all_ancestors():
    pool = Pool()
    pool.add("X1", "root.A.X")
    pool.add("X2", "root.A.X")
    pool.add("Y1", "root.Y")
    # two jobs running in root.A.B fill root.A (capacity 3) up to one place,
    # and root (capacity 4) up to two
    started = pool.start("root:4,root.A:3,root.A.B:5", running={"root.A.B": 2})
    assert started == ["X1", "Y1"]


def test_running_jobs_of_an_unconfigured_channel_count_against_its_configured_ancestors():
    pool = Pool()
    pool.add("A1", "root.A")
    pool.add("R1", "root")
    assert pool.start("root:3,root.A:2", running={"root.A.deep.sub": 2}) == ["R1"]
    assert pool.start("root:2,root.A:5", running={"root.A.deep.sub": 2}) == []


def test_jobs_of_unconfigured_channels_share_their_nearest_configured_ancestor():
    pool = Pool()
    pool.add("x", "root.A.x")
    pool.add("y", "root.A.y")
    pool.add("z", "root.A.y.z")
    assert pool.start("root:10,root.A:1") == ["x"]


def test_limit_is_respected():
    pool = Pool()
    for n in range(10):
        pool.add(f"J{n}", "root")
    assert pool.start("root:100", limit=3) == ["J0", "J1", "J2"]
    assert pool.start("root:100", limit=0) == []


def test_nothing_to_start_when_root_is_full():
    pool = Pool()
    pool.add("J", "root.any")
    assert pool.start("root:2", running={"root.other": 2}) == []


# -- sequential -----------------------------------------------------------------------

SEQ = "root:10,root.S:1:sequential"


def test_sequential_channel_starts_one_job_at_a_time():
    pool = Pool()
    pool.add("S1", "root.S")
    pool.add("S2", "root.S")
    pool.add("R1", "root")
    assert pool.start(SEQ) == ["S1", "R1"]


def test_sequential_channel_waits_while_one_of_its_jobs_runs_anywhere():
    pool = Pool()
    pool.add("S1", "root.S")
    pool.add("R1", "root")
    # running in another worker: not in this worker's own counts
    assert pool.start(SEQ, running={}, all_running={"root.S": 1}) == ["R1"]


def test_sequential_channel_is_blocked_while_it_has_a_failed_job():
    pool = Pool()
    pool.add("S1", "root.S")
    pool.add("R1", "root")
    assert pool.start(SEQ, failed=["root.S"]) == ["R1"]
    assert pool.start(SEQ, failed=["root.S.sub"]) == ["R1"]  # runs in root.S too
    assert pool.start(SEQ, failed=["root.other"]) == ["S1", "R1"]


def test_sequential_head_waiting_for_its_eta_blocks_later_jobs():
    pool = Pool()
    pool.add("S1", "root.S", due=False)
    pool.add("S2", "root.S")
    pool.add("S3", "root.S")
    pool.add("R1", "root")
    assert pool.start(SEQ) == ["R1"]


def test_a_later_sequential_job_waiting_for_its_eta_does_not_block_the_head():
    pool = Pool()
    pool.add("S1", "root.S")
    pool.add("S2", "root.S", due=False)
    assert pool.start(SEQ) == ["S1"]


def test_sequential_order_follows_priority():
    pool = Pool()
    pool.add("S-late", "root.S", priority=10)
    pool.add("S-urgent", "root.S", priority=1)
    assert pool.start(SEQ) == ["S-urgent"]


def test_sequential_declared_in_the_shared_tree_holds_too():
    pool = Pool()
    pool.add("S1", "root.S")
    pool.add("S2", "root.S")
    assert pool.start("root:10", "root.S:1:sequential") == ["S1"]
    assert pool.start("root:10", "root.S:1:sequential", failed=["root.S"]) == []


def test_sequential_covers_unconfigured_subchannels():
    pool = Pool()
    pool.add("S1", "root.S.a")
    pool.add("S2", "root.S.b")
    assert pool.start(SEQ) == ["S1"]


# -- throttle ---------------------------------------------------------------------------

THROTTLED = "root:10,root.T:5:throttle=10"


def test_throttled_channel_starts_one_job_per_period():
    pool = Pool()
    pool.add("T1", "root.T")
    pool.add("T2", "root.T")
    pool.add("R1", "root")
    selection = pool.selection(THROTTLED, now=1000.0)
    assert [pool.names[cand.id] for cand in selection.picked] == ["T1", "R1"]
    assert selection.throttled == ["root.T"]


def test_throttled_channel_waits_until_the_period_has_passed():
    pool = Pool()
    pool.add("T1", "root.T")
    pool.add("R1", "root")
    assert pool.start(THROTTLED, last_started={"root.T": 995.0}, now=1000.0) == ["R1"]
    assert pool.start(THROTTLED, last_started={"root.T": 990.0}, now=1000.0) == ["T1", "R1"]


def test_no_throttle_reported_when_no_throttled_job_started():
    pool = Pool()
    pool.add("R1", "root")
    assert pool.selection(THROTTLED, now=1000.0).throttled == []


# -- paused channels --------------------------------------------------------------------

def test_paused_channel_of_the_shared_tree_starts_nothing():
    pool = Pool()
    pool.add("P1", "root.P", priority=1)
    pool.add("P2", "root.P.sub", priority=1)
    pool.add("R1", "root")
    shared = ChannelTree([ChannelSpec("root.P", paused=True)])
    assert pool.start("root:10", shared) == ["R1"]
    assert pool.start("root:10", ChannelTree([ChannelSpec("root.P")])) == ["P1", "P2", "R1"]


def test_paused_root_starts_nothing():
    pool = Pool()
    pool.add("R1", "root")
    pool.add("A1", "root.A")
    assert pool.start("root:10", ChannelTree([ChannelSpec("root", paused=True)])) == []


# -- local and shared limits together ---------------------------------------------------

def test_shared_capacity_bounds_a_worker_with_a_larger_local_capacity():
    pool = Pool()
    pool.add("A1", "root.A")
    pool.add("A2", "root.A")
    pool.add("A3", "root.A")
    assert pool.start("root:4", "root.A:2") == ["A1", "A2"]


def test_local_capacity_bounds_a_worker_with_a_larger_shared_capacity():
    pool = Pool()
    for n in range(4):
        pool.add(f"J{n}", "root.A")
    assert pool.start("root:2", "root:10,root.A:10") == ["J0", "J1"]


def test_shared_limits_count_the_jobs_of_every_worker():
    pool = Pool()
    pool.add("A1", "root.A")
    pool.add("B1", "root.B")
    started = pool.start("root:4,root.A:4", "root.A:2", running={},
                         all_running={"root.A": 2})
    assert started == ["B1"]


def test_local_limits_count_this_workers_jobs():
    pool = Pool()
    pool.add("A1", "root.A")
    pool.add("B1", "root.B")
    assert pool.start("root:2", "", running={"root.B": 2}) == []


# -- per_channel_limits -----------------------------------------------------------------

def limits(local: str, shared: str = "", running=None, all_running=None):
    running = running or {}
    return {"local": Limits(as_tree(local), running),
            "shared": Limits(as_tree(shared), running if all_running is None else all_running)}


def test_per_channel_limits_bounds_each_channel_by_its_room_and_the_limit():
    got = per_channel_limits(["root.A", "root.B", "root"], limit=3,
                             **limits("root:10,root.A:2"))
    assert got == {"root.A": 2, "root.B": 3, "root": 3}


def test_per_channel_limits_takes_the_smallest_room_on_the_path():
    got = per_channel_limits(["root.A.x"], limit=50,
                             **limits("root:10,root.A:4", "root.A:5",
                                      running={"root.A": 1}, all_running={"root.A": 3}))
    assert got == {"root.A.x": 2}  # local root 9, local root.A 3, shared root.A 2


def test_per_channel_limits_leaves_out_full_channels():
    got = per_channel_limits(["root.A", "root.B"], limit=10,
                             **limits("root:10,root.A:2", running={"root.A": 2}))
    assert got == {"root.B": 8}


def test_per_channel_limits_nothing_when_root_is_full():
    got = per_channel_limits(["root.A", "root.B"], limit=10,
                             **limits("root:2", running={"root.A": 2}))
    assert got == {}


@pytest.mark.parametrize("limit", [0, 1])
def test_per_channel_limits_never_exceed_the_limit(limit):
    got = per_channel_limits(["root", "root.A"], limit=limit, **limits("root:100"))
    assert all(0 < room <= limit for room in got.values())
    assert (got == {}) == (limit == 0)


# -- flow rules that cannot bind: the claim in start order --------------------------------
_CHANNELS = ["root", "root.a", "root.a.x", "root.b"]


@st.composite
def flows(draw):
    """A tree of rates and key capacities, and what they count now."""
    specs = [ChannelSpec(name,
                         rate=draw(st.none() | st.tuples(st.integers(1, 12), st.just(60.0))),
                         key_capacity=draw(st.none() | st.integers(1, 6)))
             for name in _CHANNELS if draw(st.booleans()) or name == "root"]
    tree = ChannelTree(specs)
    used = {spec.name: draw(st.integers(0, spec.rate[0])) for spec in specs if spec.rate}
    running = {(draw(st.sampled_from(_CHANNELS)), draw(st.sampled_from("pqr"))):
               draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 4)))}
    return tree, used, running


@settings(max_examples=400, deadline=None, database=None)
@given(flows(), st.integers(1, 8),
       st.lists(st.tuples(st.sampled_from(_CHANNELS), st.sampled_from(["", "p", "q", "r"])),
                min_size=1, max_size=8))
def test_flow_rules_that_do_not_bind_allow_any_claim_of_that_size(flow_state, size, jobs):
    """``Flow.binds(n)`` says whether a rule could refuse one of n more starts: it does
    exactly when n jobs of one rule's channel (all of its busiest key, for a key
    capacity) are refused; when it does not, any n jobs are allowed one after the
    other, whatever their channels and keys."""
    tree, used, running = flow_state

    def refused(batch) -> bool:
        flow = Flow.counting(tree, used, running)
        for channel, key in batch:
            if not flow.allows(channel, key):
                return True
            flow.take(channel, key)
        return False

    worst = []
    for name, spec in tree.specs.items():
        if spec.rate is not None:
            worst.append([(name, "")] * size)
        if spec.key_capacity is not None:
            for key in "pqr":
                worst.append([(name, key)] * size)
    binds = Flow.counting(tree, used, running).binds(size)
    assert binds == any(refused(batch) for batch in worst)
    if not binds:
        assert not refused(jobs[:size])


def test_flow_rules_only_accepts_root_capacity_rates_and_key_capacities():
    assert flow_rules_only(ChannelTree.from_string("root:8,root.crm:0:rate=10/m"))
    assert flow_rules_only(ChannelTree.from_string("root.t:0:key_capacity=2"))
    assert not flow_rules_only(ChannelTree.from_string("root:8,root.crm:2"))
    assert not flow_rules_only(ChannelTree.from_string("root.t:0:fair"))
    assert not flow_rules_only(ChannelTree.from_string("root.t:1:sequential"))
