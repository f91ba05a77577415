"""``@job`` at decoration time: parameters named like delay()'s reserved options are
refused, options reserved for later would be refused by delay(), the hooks are checked."""

from __future__ import annotations

import functools
import inspect

import pytest

import queuejob
from queuejob import JobFunction, job
from queuejob.core import registry
from queuejob.core.graph import PROPERTIES
from queuejob.storage import NOT_YET_SUPPORTED, RESERVED
from tests import jobs
from tests.helpers import states

#: the names a job function's parameter may not have
REFUSED = [name for name in RESERVED if name != "model_name"]


def module_level(source: str) -> object:
    """The function defined by ``source`` as if at this module's level (a test's own
    local functions are refused as not module-level before anything else is checked)."""
    namespace: dict[str, object] = {"__name__": __name__}
    exec(source, namespace)
    (func,) = (value for key, value in namespace.items() if inspect.isfunction(value))
    return func


# -- reserved options ---------------------------------------------------------------------
def test_the_reserved_names_are_listed_in_one_place():
    assert {"concurrency_key", "debounce"} <= set(RESERVED)
    # both are options now: none is waiting for a later version
    assert NOT_YET_SUPPORTED == ()
    # every property a Delayable may set is a reserved option, and nothing else is but
    # the model name and debounce (an option of delay() and delay_many() alone)
    assert set(RESERVED) == set(PROPERTIES) | {"model_name", "debounce"}
    delay_doc = JobFunction.delay.__doc__ or ""
    assert all(name in delay_doc for name in REFUSED)


@pytest.mark.parametrize("name", REFUSED)
@pytest.mark.parametrize("where", ["positional", "keyword-only"])
def test_a_parameter_named_like_a_reserved_option_is_refused(name, where):
    parameter = f"{name}=None" if where == "positional" else f"*, {name}=None"
    func = module_level(f"def refused_{name}(session, model_name, {parameter}):\n    pass\n")
    with pytest.raises(TypeError) as raised:
        job(func)
    message = str(raised.value)
    assert f"parameter {name!r}" in message and f"reserved option {name!r}" in message
    assert f"refused_{name}" in message
    assert "rename the parameter" in message and f"{name}_" in message
    assert "\n" not in message
    assert registry.job_function(f"{__name__}.refused_{name}") is None


def test_every_form_of_the_decorator_refuses_it():
    func = module_level("def with_timeout(session, model_name, timeout):\n    pass\n")
    with pytest.raises(TypeError, match="'timeout'"):
        job(default_channel="root.x")(func)
    with pytest.raises(TypeError, match="'timeout'"):
        job(func, timeout=5)
    with pytest.raises(TypeError, match="'timeout'"):
        JobFunction(func)


def test_a_wrapped_function_is_checked_through_its_wrapper():
    inner = module_level("def inner(session, model_name, priority):\n    pass\n")

    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        return inner(*args, **kwargs)

    wrapper.__qualname__ = "inner"  # as a module-level decorator would leave it
    with pytest.raises(TypeError, match="'priority'"):
        job(wrapper)


@pytest.mark.parametrize("source", [
    "def star_args(session, model_name, *timeout, **priority):\n    return timeout, priority\n",
    "def positional_only(session, model_name, timeout, /):\n    return timeout\n",
    "def with_model(session, model_name, records_channel=None):\n    return model_name\n",
], ids=["var-args", "positional-only", "model_name"])
def test_names_that_cannot_collide_are_accepted(source):
    func = module_level(source)
    decorated = job(func)
    assert isinstance(decorated, JobFunction)
    assert registry.job_function(decorated.func_name) is decorated


def test_an_option_reserved_for_later_is_refused_by_delay_and_nothing_is_stored(
        db, monkeypatch):
    name = "later_option"
    # an option a later version would add, reserved meanwhile as the two flow options were
    monkeypatch.setattr("queuejob.storage.RESERVED", (*RESERVED, name))
    monkeypatch.setattr("queuejob.storage.NOT_YET_SUPPORTED", (name,))
    with db.session() as session:
        with pytest.raises(TypeError, match=f"{name} is reserved for a later version"):
            jobs.noop.delay(session, "m", **{name: "x"})
        with pytest.raises(TypeError, match=f"{name} is reserved for a later version"):
            jobs.noop.delayable(session, "m", **{name: "x"})
        with pytest.raises(TypeError, match=f"delay_many\\(\\): {name} is reserved"):
            jobs.noop.delay_many(session, [("m",)], **{name: "x"})
        with pytest.raises(TypeError, match=f"{name} is reserved"):
            jobs.noop.delay_many(session, [{"args": ("m",), name: "x"}])
    assert states(db) == {}


def test_schedule_refuses_an_option_reserved_for_later(monkeypatch):
    with pytest.raises(TypeError, match="schedule\\(\\): debounce is not an option"):
        queuejob.schedule(jobs.noop, cron="* * * * *", name="reserved-test", debounce=5)
    assert "reserved-test" not in registry.schedules()
    monkeypatch.setattr("queuejob.storage.RESERVED", (*RESERVED, "later_option"))
    monkeypatch.setattr("queuejob.storage.NOT_YET_SUPPORTED", ("later_option",))
    with pytest.raises(TypeError, match="schedule\\(\\): later_option is reserved"):
        queuejob.schedule(jobs.noop, cron="* * * * *", name="reserved-test", later_option=5)
    assert "reserved-test" not in registry.schedules()
    with pytest.raises(TypeError, match="unknown options: nope"):
        queuejob.schedule(jobs.noop, cron="* * * * *", name="reserved-test", nope=5)


def test_unknown_options_of_delay_many_are_still_named(db):
    with db.session() as session, pytest.raises(TypeError,
                                                match="delay_many\\(\\) got unknown options: x"):
        jobs.noop.delay_many(session, [("m",)], x=1)


# -- hooks ---------------------------------------------------------------------------------
def hook(session, job_):
    return ("hook", job_)


def hook_with_options(session, job_, extra=0):
    return extra


def hook_one_argument(session):
    return session


class Hooks:
    def on_failure(self, session, job_):
        return job_


HOOKS_INSTANCE = Hooks()


def hooked(session, model_name):
    """A function decorated in the tests with hooks."""


def test_hooks_are_stored_on_the_job_function():
    decorated = job(hooked, on_failure=hook, on_retry=functools.partial(hook_with_options,
                                                                       extra=2),
                    on_done=HOOKS_INSTANCE.on_failure)
    assert decorated.on_failure is hook
    assert decorated.on_retry.func is hook_with_options  # type: ignore[union-attr]
    assert decorated.on_retry("s", "j") == 2  # type: ignore[misc]
    assert decorated.on_done("s", "j") == "j"  # type: ignore[misc]
    # the parenthesized form too
    decorated = job(on_done=hook)(hooked)
    assert (decorated.on_failure, decorated.on_retry, decorated.on_done) == (None, None, hook)


def test_a_job_function_has_no_hooks_by_default():
    assert (jobs.add.on_failure, jobs.add.on_retry, jobs.add.on_done) == (None, None, None)


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match=r"on_failure=\.\.\.\) takes a function called as "
                                        r"on_failure\(session, job\), not str"):
        job(hooked, on_failure="tests.test_reserved_options.hook")  # type: ignore[arg-type]


def test_a_hook_must_be_module_level():
    def local_hook(session, job_):
        return None

    with pytest.raises(TypeError, match=r"on_done=\.\.\.\) needs a module-level function"):
        job(hooked, on_done=local_hook)
    with pytest.raises(TypeError, match=r"on_retry=\.\.\.\) needs a module-level function"):
        job(hooked, on_retry=lambda session, job_: None)
    with pytest.raises(TypeError, match="module-level"):
        job(hooked, on_retry=functools.partial(local_hook))


def test_a_hook_must_take_the_session_and_the_job():
    with pytest.raises(TypeError, match=r"is called as on_done\(session, job\), but its "
                                        r"signature is \(session\)"):
        job(hooked, on_done=hook_one_argument)
    # extra parameters with defaults, or *args, are fine
    assert job(hooked, on_done=hook_with_options).on_done is hook_with_options


def test_a_refused_hook_leaves_the_function_unregistered():
    func = module_level("def never_registered(session, model_name):\n    pass\n")
    with pytest.raises(TypeError):
        job(func, on_failure=42)  # type: ignore[arg-type]
    assert registry.job_function(f"{__name__}.never_registered") is None
