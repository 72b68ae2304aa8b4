"""How a run's days are grouped onto the checks' connections."""

from datetime import date, timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from liqheat_pipeline.defs.day_checks import consecutive_batches

DAYS = st.sets(st.integers(min_value=0, max_value=60), max_size=40).map(
    lambda offsets: [date(2025, 12, 1) + timedelta(days=offset) for offset in sorted(offsets)]
)


@given(DAYS, st.integers(min_value=1, max_value=10))
def test_batches_are_the_days_in_runs_of_consecutive_days_no_longer_than_the_size(days, size):
    batches = consecutive_batches(days, size)
    assert [day for batch in batches for day in batch] == days
    for batch in batches:
        assert 1 <= len(batch) <= size
        assert all(b - a == timedelta(days=1) for a, b in pairwise(batch))
    # A batch is cut short only by a gap or the end of the days.
    for batch, following in pairwise(batches):
        assert len(batch) == size or following[0] - batch[-1] > timedelta(days=1)
