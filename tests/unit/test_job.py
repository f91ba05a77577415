"""The Job of the page: attributes, perform and retries, postpone, states, related
action, identity keys; and the outcome an attempt leads to."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from queuejob import (
    RETRY_INTERVAL,
    FailedJobError,
    Job,
    NothingToDoJob,
    RetryableJobError,
    identity_exact,
)
from queuejob.core.outcome import MAX_TEXT, cap_text, outcome_of
from tests import jobs

UTC = dt.UTC


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def session_for(job: Job) -> SimpleNamespace:
    """What a job function sees: user, context with the job's uuid, the job."""
    return SimpleNamespace(user_id=job.user_id, context={"job_uuid": job.uuid}, job=job)


def perform(job: Job):
    return job.perform(session_for(job))


def assert_about(value: dt.datetime | None, expected_from: dt.datetime,
                 expected_to: dt.datetime) -> None:
    assert value is not None
    assert value.utcoffset() == dt.timedelta(0)
    assert expected_from <= value <= expected_to


# -- attributes -------------------------------------------------------------------------

def test_every_attribute_of_the_page_with_its_initial_value():
    before = now()
    job = Job(jobs.add, "res.partner", args=(1,), kwargs={"b": 2})
    after = now()
    assert isinstance(job.uuid, str)
    assert str(UUID(job.uuid)) == job.uuid
    assert job.state == "pending"
    assert job.retry == 0
    assert job.max_retries == 5
    assert job.func_name == "tests.jobs.add"
    assert job.args == ("res.partner", 1)  # the model name leads the arguments (9.0)
    assert job.kwargs == {"b": 2}
    assert job.func_string == "tests.jobs.add('res.partner', 1, b=2)"
    assert job.description == "Add two numbers."
    assert job.func is jobs.add
    assert job.model_name == "res.partner"
    assert job.priority == 10
    assert_about(job.date_created, before, after)
    assert job.date_enqueued is None
    assert job.date_started is None
    assert job.date_done is None
    assert job.result is None
    assert job.exc_info is None
    assert job.user_id is None
    assert job.eta is None
    assert job.channel == "root"
    assert job.identity_key is None


def test_each_job_gets_its_own_uuid_unless_given():
    assert Job(jobs.noop).uuid != Job(jobs.noop).uuid
    given = "0f0e0d0c-0b0a-0908-0706-050403020100"
    assert Job(jobs.noop, job_uuid=given).uuid == given


def test_args_are_a_tuple_and_kwargs_a_dict_copy():
    kwargs = {"b": 2}
    job = Job(jobs.add, "m", args=[1], kwargs=kwargs)
    assert job.args == ("m", 1)
    assert type(job.args) is tuple
    kwargs["b"] = 99
    assert job.kwargs == {"b": 2}
    assert Job(jobs.noop).args == ()
    assert Job(jobs.noop).kwargs == {}


def test_options_given_at_creation():
    job = Job(jobs.add, "m", args=(1, 2), priority=30, max_retries=3,
              description="Adding", channel="root.sub")
    assert (job.priority, job.max_retries, job.description, job.channel) == (
        30, 3, "Adding", "root.sub")


def test_description_defaults_to_the_first_docstring_line_else_the_function_name():
    assert Job(jobs.record).description == "Sleep, then log the execution."
    assert Job(jobs.fail).description == "Function fail"


def test_channel_defaults_to_the_functions_default_channel_and_can_be_overridden():
    assert Job(jobs.export).channel == "root.export"
    assert Job(jobs.export, channel="root.other").channel == "root.other"
    assert Job(jobs.export, channel="other.sub").channel == "root.other.sub"
    assert Job(jobs.seq_job).channel == "root.seq"


def test_a_bad_channel_name_is_refused():
    with pytest.raises(ValueError, match="channel"):
        Job(jobs.noop, channel="root.a;b")


def test_func_string_without_model_or_arguments():
    assert Job(jobs.noop).func_string == "tests.jobs.noop()"
    assert Job(jobs.noop, "m", args=("x",), kwargs={"k": [1]}).func_string == \
        "tests.jobs.noop('m', 'x', k=[1])"


@pytest.mark.parametrize("max_retries", [-1, 1.5, "3", True])
def test_max_retries_must_be_a_count(max_retries):
    with pytest.raises(ValueError, match="max_retries"):
        Job(jobs.noop, max_retries=max_retries)


@pytest.mark.parametrize("priority", [1.5, "10", True])
def test_priority_must_be_an_int(priority):
    with pytest.raises(TypeError, match="priority"):
        Job(jobs.noop, priority=priority)


# -- eta --------------------------------------------------------------------------------

def test_eta_as_an_aware_datetime_is_kept_as_utc():
    eta = dt.datetime(2030, 6, 1, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))
    job = Job(jobs.noop, eta=eta)
    assert job.eta == eta
    assert job.eta.utcoffset() == dt.timedelta(0)
    assert job.eta.hour == 10


def test_eta_as_a_naive_datetime_is_utc():
    job = Job(jobs.noop, eta=dt.datetime(2030, 1, 2, 3, 4, 5))
    assert job.eta == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("eta", [dt.timedelta(hours=5), 5 * 60 * 60], ids=["timedelta", "int"])
def test_eta_as_a_delay_is_that_long_from_now(eta):
    before = now()
    job = Job(jobs.noop, eta=eta)
    after = now()
    five_hours = dt.timedelta(hours=5)
    assert_about(job.eta, before + five_hours, after + five_hours)


def test_eta_can_be_set_after_creation():
    job = Job(jobs.noop)
    job.eta = dt.datetime(2031, 1, 1)
    assert job.eta == dt.datetime(2031, 1, 1, tzinfo=UTC)
    job.eta = None
    assert job.eta is None


# -- perform and retries ----------------------------------------------------------------

def test_perform_calls_the_function_and_returns_and_keeps_its_result():
    job = Job(jobs.add, "m", args=(2,), kwargs={"b": 3})
    assert perform(job) == 5
    assert job.result == 5
    assert job.retry == 1


def test_perform_passes_the_session_and_model_name():
    job = Job(jobs.echo_session, "res.partner")
    job.user_id = 7
    session = SimpleNamespace(user_id=7, context={"lang": "en"}, job=job)
    assert job.perform(session) == repr((7, [("lang", "en")]))


def test_perform_adds_one_to_retry_before_calling():
    job = Job(jobs.retry_then_succeed, "m", args=(2,))
    with pytest.raises(RetryableJobError, match="attempt 1"):
        perform(job)
    with pytest.raises(RetryableJobError, match="attempt 2"):
        perform(job)
    assert perform(job) == "succeeded at attempt 3"
    assert job.retry == 3


def test_retryable_error_past_max_retries_becomes_failed_job_error():
    job = Job(jobs.always_retry, "m", max_retries=3)
    for attempt in (1, 2):
        with pytest.raises(RetryableJobError):
            perform(job)
        assert job.retry == attempt
    with pytest.raises(FailedJobError) as caught:
        perform(job)
    assert str(caught.value) == "Max. retries (3) reached: not yet"
    assert isinstance(caught.value.__cause__, RetryableJobError)
    assert job.retry == 3


def test_default_max_retries_allows_five_attempts():
    job = Job(jobs.always_retry, "m")
    for _ in range(4):
        with pytest.raises(RetryableJobError):
            perform(job)
    with pytest.raises(FailedJobError, match=r"^Max\. retries \(5\) reached: not yet$"):
        perform(job)


def test_max_retries_one_fails_at_the_first_retryable_error():
    job = Job(jobs.always_retry, "m", max_retries=1)
    with pytest.raises(FailedJobError, match=r"Max\. retries \(1\) reached"):
        perform(job)


def test_ignore_retry_does_not_count_the_attempt():
    job = Job(jobs.always_retry, "m", kwargs={"ignore_retry": True}, max_retries=2)
    for _ in range(10):
        with pytest.raises(RetryableJobError):
            perform(job)
    assert job.retry == 0


def test_max_retries_zero_retries_forever():
    job = Job(jobs.always_retry, "m", max_retries=0)
    for _ in range(50):
        with pytest.raises(RetryableJobError):
            perform(job)
    assert job.retry == 50


def test_other_exceptions_propagate_as_they_are():
    job = Job(jobs.fail, "m", kwargs={"message": "bad input"}, max_retries=1)
    with pytest.raises(ValueError, match="bad input"):
        perform(job)
    with pytest.raises(NothingToDoJob, match="already exported"):
        perform(Job(jobs.nothing_to_do, "m"))
    with pytest.raises(FailedJobError, match="gave up"):
        perform(Job(jobs.fail_hard, "m"))


def test_perform_of_a_job_without_a_registered_function_fails_clearly():
    job = Job(None, "m")
    job.func_name = "myapp.jobs.gone"
    with pytest.raises(FailedJobError, match=r"myapp\.jobs\.gone"):
        perform(job)


@pytest.mark.parametrize(("retry", "seconds"), [(1, 60), (2, 180), (3, 10), (4, 10), (5, 300)])
def test_retry_seconds_follows_the_functions_retry_pattern(retry, seconds):
    job = Job(jobs.always_retry, "m")
    job.retry = retry
    assert job.retry_seconds() == seconds
    assert job.retry_seconds(7) == 7
    assert job.retry_seconds(0) == seconds


def test_retry_seconds_without_a_pattern_is_retry_interval():
    job = Job(jobs.add, "m")
    job.retry = 3
    assert job.retry_seconds() == RETRY_INTERVAL == 600


# -- postpone ---------------------------------------------------------------------------

def test_postpone_with_seconds():
    job = Job(jobs.add, "m")
    job.exc_info = "old traceback"
    before = now()
    job.postpone(result="later", seconds=30)
    after = now()
    assert_about(job.eta, before + dt.timedelta(seconds=30), after + dt.timedelta(seconds=30))
    assert job.result == "later"
    assert job.exc_info is None


def test_postpone_without_seconds_uses_the_retry_pattern():
    job = Job(jobs.always_retry, "m")
    job.retry = 2
    before = now()
    job.postpone()
    after = now()
    delay = dt.timedelta(seconds=180)
    assert_about(job.eta, before + delay, after + delay)
    assert job.result is None


def test_postpone_without_seconds_nor_pattern_waits_retry_interval():
    job = Job(jobs.add, "m")
    job.retry = 1
    before = now()
    job.postpone(seconds=0)
    after = now()
    delay = dt.timedelta(seconds=RETRY_INTERVAL)
    assert_about(job.eta, before + delay, after + delay)


# -- states -----------------------------------------------------------------------------

def test_set_enqueued():
    job = Job(jobs.add, "m")
    job.date_started = now()
    before = now()
    job.set_enqueued()
    assert job.state == "enqueued"
    assert_about(job.date_enqueued, before, now())
    assert job.date_started is None


def test_set_started():
    job = Job(jobs.add, "m")
    job.set_enqueued()
    before = now()
    job.set_started()
    assert job.state == "started"
    assert_about(job.date_started, before, now())


def test_set_done():
    job = Job(jobs.add, "m")
    job.exc_info = "an old traceback"
    before = now()
    job.set_done(result="42")
    assert job.state == "done"
    assert job.result == "42"
    assert job.exc_info is None
    assert_about(job.date_done, before, now())


def test_set_done_without_result_keeps_the_result():
    job = Job(jobs.add, "m")
    job.result = "kept"
    job.set_done()
    assert job.result == "kept"


def test_set_failed():
    job = Job(jobs.add, "m")
    job.set_failed(exc_info="Traceback ...\nValueError: boom")
    assert job.state == "failed"
    assert job.exc_info == "Traceback ...\nValueError: boom"
    job.set_failed()
    assert job.exc_info == "Traceback ...\nValueError: boom"


def test_set_pending_resets_retry_and_dates():
    job = Job(jobs.add, "m")
    job.set_enqueued()
    job.set_started()
    job.retry = 3
    job.set_pending(result="again")
    assert job.state == "pending"
    assert job.retry == 0
    assert job.result == "again"
    assert job.date_enqueued is None
    assert job.date_started is None


def test_set_pending_can_keep_retry():
    job = Job(jobs.add, "m")
    job.retry = 2
    job.result = "kept"
    job.set_pending(reset_retry=False)
    assert job.retry == 2
    assert job.result == "kept"


def test_states_are_the_strings_of_the_issue():
    job = Job(jobs.add, "m")
    seen = [job.state]
    for change in (job.set_enqueued, job.set_started, job.set_done, job.set_failed,
                   job.set_cancelled, job.set_pending):
        change()
        seen.append(job.state)
    assert seen == ["pending", "enqueued", "started", "done", "failed", "cancelled", "pending"]
    assert all(isinstance(state, str) for state in seen)


# -- related action ---------------------------------------------------------------------

def test_related_action_is_called_with_its_kwargs():
    job = Job(jobs.export_partner, "res.partner", args=(42,))
    assert job.related_action(session_for(job)) == {
        "res_model": "res.partner", "res_id": 42, "extra": 2}


def test_related_action_is_none_without_one():
    job = Job(jobs.add, "m", args=(1, 2))
    assert job.related_action(session_for(job)) is None


def test_decorated_function_still_runs_synchronously():
    assert jobs.export_partner(None, "res.partner", 5) == 5


# -- identity keys ----------------------------------------------------------------------

def test_identity_exact_is_stable_for_equal_arguments():
    day = dt.date(2024, 1, 1)
    one = Job(jobs.add, "res.partner", args=(1, (2, 3)), kwargs={"a": 1, "b": [day]})
    two = Job(jobs.add, "res.partner", args=(1, (2, 3)), kwargs={"b": [day], "a": 1})
    assert one.uuid != two.uuid
    assert identity_exact(one) == identity_exact(two)
    assert identity_exact(one) == identity_exact(one)
    assert isinstance(identity_exact(one), str)


IDENTITY_SCRIPT = """
import datetime as dt
from queuejob import Job, identity_exact
from tests import jobs
job = Job(jobs.add, "res.partner", args=("x", (1, 2)), kwargs={"when": dt.date(2024, 1, 1),
                                                              "names": {"b": 1, "a": 2}})
print(identity_exact(job))
"""


def test_identity_exact_is_the_same_in_another_process():
    root = Path(__file__).resolve().parents[2]
    keys = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(root))
        done = subprocess.run([sys.executable, "-c", IDENTITY_SCRIPT], env=env, cwd=root,
                              capture_output=True, text=True, check=True, timeout=60)
        keys.add(done.stdout.strip())
    here = Job(jobs.add, "res.partner", args=("x", (1, 2)),
               kwargs={"names": {"a": 2, "b": 1}, "when": dt.date(2024, 1, 1)})
    assert keys == {identity_exact(here)}


@pytest.mark.parametrize("other", [
    Job(jobs.add, "res.partner", args=(1, 3)),
    Job(jobs.add, "res.users", args=(1, 2)),
    Job(jobs.noop, "res.partner", args=(1, 2)),
    Job(jobs.add, "res.partner", args=(1,), kwargs={"b": 2}),
    Job(jobs.add, "res.partner", args=(1, "2")),
    Job(jobs.add, None, args=(1, 2)),
])
def test_identity_exact_differs_when_model_function_or_arguments_differ(other):
    job = Job(jobs.add, "res.partner", args=(1, 2))
    assert identity_exact(job) != identity_exact(other)


def test_identity_key_as_a_function_of_the_job():
    job = Job(jobs.add, "m", args=(1, 2), identity_key=identity_exact)
    assert job.identity_key == identity_exact(Job(jobs.add, "m", args=(1, 2)))


def test_identity_key_as_a_string():
    assert Job(jobs.add, "m", identity_key="export-42").identity_key == "export-42"


def test_identity_key_of_another_type_is_refused():
    with pytest.raises(TypeError, match="identity_key"):
        Job(jobs.add, "m", identity_key=42)


# -- outcome of an attempt --------------------------------------------------------------

def attempt(job: Job):
    try:
        perform(job)
    except Exception as exc:  # what the worker does with it is the point
        return outcome_of(job, 1, exc)
    return outcome_of(job, 1, None)


def test_outcome_of_success_is_done_with_the_result_as_text():
    job = Job(jobs.add, "m", args=(2, 3))
    outcome = attempt(job)
    assert (outcome.state, outcome.result, outcome.retry) == ("done", "5", 1)
    assert outcome.uuid == job.uuid
    assert outcome.exc_info is None


def test_outcome_of_a_none_result_is_no_result():
    assert attempt(Job(jobs.noop, "m")).result is None


def test_outcome_of_nothing_to_do_is_done_with_the_message():
    outcome = attempt(Job(jobs.nothing_to_do, "m"))
    assert (outcome.state, outcome.result) == ("done", "already exported")


def test_outcome_of_a_retryable_error_is_pending_with_the_pattern_delay():
    job = Job(jobs.always_retry, "m")
    attempt(job)
    outcome = attempt(job)
    assert (outcome.state, outcome.retry, outcome.eta_delay) == ("pending", 2, 180)
    assert outcome.result == "not yet"


def test_outcome_of_a_retryable_error_with_seconds_uses_them():
    outcome = attempt(Job(jobs.always_retry, "m", kwargs={"seconds": 5}))
    assert (outcome.state, outcome.eta_delay) == ("pending", 5)


def test_outcome_of_a_retryable_error_without_pattern_waits_retry_interval():
    outcome = attempt(Job(jobs.retry_then_succeed, "m", args=(5,)))
    assert outcome.state == "pending"
    assert outcome.eta_delay == 0.01  # the function gives seconds=0.01
    job = Job(jobs.add, "m")
    job.retry = 1
    assert outcome_of(job, 1, RetryableJobError("later")).eta_delay == RETRY_INTERVAL


def test_outcome_of_max_retries_is_failed_with_the_message():
    job = Job(jobs.always_retry, "m", max_retries=2)
    attempt(job)
    outcome = attempt(job)
    assert outcome.state == "failed"
    assert "FailedJobError: Max. retries (2) reached: not yet" in outcome.exc_info


def test_outcome_of_another_exception_is_failed_with_the_traceback():
    outcome = attempt(Job(jobs.fail, "m", kwargs={"message": "boom"}))
    assert outcome.state == "failed"
    assert outcome.exc_info.startswith("Traceback (most recent call last):")
    assert "ValueError: boom" in outcome.exc_info
    assert "tests/jobs.py" in outcome.exc_info
    assert outcome.eta_delay is None


def test_outcome_carries_the_identity_key():
    job = Job(jobs.always_retry, "m", identity_key="the-key")
    assert attempt(job).identity_key == "the-key"


def test_outcome_caps_a_huge_traceback_and_result():
    failed = outcome_of(Job(jobs.fail, "m"), 1, ValueError("x" * 200_000))
    assert len(failed.exc_info) <= MAX_TEXT
    assert "truncated" in failed.exc_info
    job = Job(jobs.add, "m", args=("a" * 100_000, "b"))
    done = attempt(job)
    assert len(done.result) <= MAX_TEXT
    assert done.result.startswith("a" * 1000)


def test_cap_text_cuts_to_64_kb_with_a_marker():
    assert MAX_TEXT == 64 * 1024
    text = "y" * 100_000
    capped = cap_text(text)
    assert len(capped) <= MAX_TEXT
    assert len(capped) > MAX_TEXT - 200
    assert capped.startswith("y" * 60_000)
    assert "truncated" in capped
    assert "100000" in capped  # says how long it was


def test_cap_text_leaves_short_text_alone():
    assert cap_text(None) is None
    assert cap_text("") == ""
    assert cap_text("short") == "short"
    exact = "z" * MAX_TEXT
    assert cap_text(exact) == exact
    assert cap_text("z" * (MAX_TEXT + 1)) != "z" * (MAX_TEXT + 1)


def test_new_uuids_are_random_version_4_uuids_in_their_usual_text():
    import uuid

    from queuejob.core.job import new_uuid
    made = [new_uuid() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    # every hexadecimal digit of the variant's position shows up (8, 9, a, b)
    assert {text[19] for text in made} == set("89ab")
