"""The naive-UTC day helpers every TIMESTAMP the pipeline binds or stores goes through."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone

from liqheat_pipeline.lib.days import day_end, day_start, days_in, naive_utc_now, to_naive_utc


def test_a_day_spans_its_two_naive_midnights():
    assert day_start(date(2025, 12, 31)) == datetime(2025, 12, 31)
    assert day_end(date(2025, 12, 31)) == datetime(2026, 1, 1)
    assert day_start(date(2025, 12, 31)).tzinfo is None


def test_days_in_lists_the_half_open_range():
    assert days_in(date(2025, 11, 29), date(2025, 12, 2)) == [
        date(2025, 11, 29),
        date(2025, 11, 30),
        date(2025, 12, 1),
    ]
    assert days_in(date(2025, 12, 2), date(2025, 12, 2)) == []


def test_aware_moments_are_converted_and_naive_ones_kept():
    tokyo = timezone(timedelta(hours=9))
    assert to_naive_utc(datetime(2025, 12, 2, 3, 30, tzinfo=tokyo)) == datetime(2025, 12, 1, 18, 30)
    assert to_naive_utc(datetime(2025, 12, 2, 3, 30)) == datetime(2025, 12, 2, 3, 30)


def test_now_is_naive_utc():
    now = naive_utc_now()
    assert now.tzinfo is None
    epoch_seconds = (now - datetime(1970, 1, 1)).total_seconds()
    assert abs(epoch_seconds - time.time()) < 5
