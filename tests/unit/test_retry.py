"""Retry delays: the exception's seconds, else the retry pattern, else RETRY_INTERVAL."""

from __future__ import annotations

import pytest

import queuejob
from queuejob.core.retry import RETRY_INTERVAL, retry_seconds, validate_retry_pattern

ISSUE_PATTERN = {1: 60, 2: 180, 3: 10, 5: 300}


def plain_function(session, model_name):
    """Module level, so that @job reaches the retry pattern check."""


def test_retry_interval_is_ten_minutes():
    assert RETRY_INTERVAL == 600
    assert queuejob.RETRY_INTERVAL == 600


@pytest.mark.parametrize(("retry", "expected"), [(1, 60), (2, 180), (3, 10), (4, 10), (5, 300)])
def test_issue_pattern_gives_the_largest_key_at_most_retry(retry, expected):
    assert retry_seconds(retry, ISSUE_PATTERN) == expected


def test_issue_pattern_beyond_its_last_key_keeps_the_last_delay():
    assert retry_seconds(6, ISSUE_PATTERN) == 300
    assert retry_seconds(100, ISSUE_PATTERN) == 300


@pytest.mark.parametrize(("retry", "expected"), [(1, 600), (2, 600), (3, 180), (4, 180)])
def test_pattern_starting_late_uses_retry_interval_before_its_first_key(retry, expected):
    assert retry_seconds(retry, {3: 180}) == expected


def test_pattern_key_order_does_not_matter():
    shuffled = {5: 300, 1: 60, 3: 10, 2: 180}
    assert [retry_seconds(n, shuffled) for n in range(1, 6)] == [60, 180, 10, 10, 300]


@pytest.mark.parametrize("pattern", [None, {}])
def test_without_pattern_the_delay_is_retry_interval(pattern):
    assert [retry_seconds(n, pattern) for n in (1, 2, 7)] == [RETRY_INTERVAL] * 3


@pytest.mark.parametrize("pattern", [None, {}, ISSUE_PATTERN, {3: 180}])
def test_seconds_given_by_the_exception_win(pattern):
    assert retry_seconds(1, pattern, seconds=5) == 5
    assert retry_seconds(3, pattern, seconds=2.5) == 2.5
    assert retry_seconds(5, pattern, seconds=3600) == 3600


def test_zero_seconds_counts_as_not_given():
    assert retry_seconds(2, ISSUE_PATTERN, seconds=0) == 180
    assert retry_seconds(1, {3: 180}, seconds=0) == RETRY_INTERVAL
    assert retry_seconds(1, None, seconds=0) == RETRY_INTERVAL
    assert retry_seconds(2, ISSUE_PATTERN, seconds=None) == 180


def test_a_zero_delay_in_the_pattern_is_kept():
    assert retry_seconds(1, {1: 0, 2: 30}) == 0
    assert retry_seconds(2, {1: 0, 2: 30}) == 30


def test_validate_returns_a_plain_copy():
    source = {1: 60, 2: 180.5}
    checked = validate_retry_pattern(source)
    assert checked == source
    assert type(checked) is dict
    source[3] = 10
    assert 3 not in checked


def test_validate_none_is_no_pattern():
    assert validate_retry_pattern(None) == {}


@pytest.mark.parametrize("pattern", [[(1, 60)], "1:60", 60])
def test_validate_refuses_what_is_not_a_mapping(pattern):
    with pytest.raises(TypeError, match="retry_pattern"):
        validate_retry_pattern(pattern)


@pytest.mark.parametrize("key", ["1", 1.0, 1.5, -1, True, None, (1,)])
def test_validate_refuses_a_key_that_is_not_a_retry_count(key):
    with pytest.raises(ValueError, match="key") as caught:
        validate_retry_pattern({key: 60})
    assert repr(key) in str(caught.value)


@pytest.mark.parametrize("delay", ["60", -1, -0.5, True, None, [60]])
def test_validate_refuses_a_delay_that_is_not_seconds(delay):
    with pytest.raises(ValueError, match="delay") as caught:
        validate_retry_pattern({1: delay})
    assert repr(delay) in str(caught.value)


def test_validate_accepts_int_and_float_delays_and_key_zero():
    assert validate_retry_pattern({0: 1, 1: 2.5, 10: 0}) == {0: 1, 1: 2.5, 10: 0}


def test_job_decorator_refuses_a_bad_retry_pattern():
    with pytest.raises(ValueError, match="retry_pattern"):
        queuejob.job(retry_pattern={"1": 60})(plain_function)
    with pytest.raises(ValueError, match="retry_pattern"):
        queuejob.job(plain_function, retry_pattern={1: -5})
