"""The pace of removal (core.removal): after each batch, a wait that leaves removing at
most its share of the time, and never a wait of zero between two batches."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from queuejob.core import removal

seconds = st.floats(min_value=0.0, max_value=3600.0, allow_nan=False)


@given(seconds, st.floats(min_value=0.01, max_value=0.99))
def test_removing_takes_at_most_its_share_of_the_time(batch, duty):
    pause = removal.pause_after(batch, duty)
    assert pause >= removal.MIN_PAUSE
    assert batch <= duty * (batch + pause) * (1 + 1e-9) + 1e-12


@given(seconds)
def test_the_wait_grows_with_the_batch(batch):
    assert removal.pause_after(batch * 2 + 1.0) > removal.pause_after(batch)


@given(seconds, st.floats(min_value=1.0, max_value=10.0))
def test_a_duty_of_one_never_waits(batch, duty):
    assert removal.pause_after(batch, duty) == 0.0


def test_a_batch_measured_as_negative_waits_the_least():
    """(a clock read twice may say so): no negative wait, no error."""
    assert removal.pause_after(-1.0) == removal.MIN_PAUSE
