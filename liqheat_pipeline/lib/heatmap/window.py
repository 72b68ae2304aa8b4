"""Time windows on an interval grid: the display intervals and how a requested window is aligned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from liqheat_pipeline.lib.days import day_start, to_naive_utc

# Display intervals of the HTTP API and the page; every one divides a UTC day, so the grid is
# anchored at midnight UTC (the same grid DuckDB's time_bucket uses).
INTERVAL_MINUTES: dict[str, int] = {"5m": 5, "15m": 15, "1h": 60, "4h": 240, "1d": 1440}


_EPOCH = day_start(date(1970, 1, 1))
# Requests outside these years are rejected before any date arithmetic can overflow.
EARLIEST = _EPOCH
LATEST = day_start(date(2200, 1, 1))


class WindowError(ValueError):
    """A requested window is malformed; ``parameter`` names the offending query parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class IntervalWindow:
    """A half-open UTC window [start, end) made of whole intervals of ``interval_minutes``."""

    start: datetime
    end: datetime
    interval_minutes: int

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes)

    @property
    def slots(self) -> int:
        return (self.end - self.start) // self.interval


def checked_moment(parameter: str, moment: datetime) -> datetime:
    """``moment`` as naive UTC, rejected (naming ``parameter``) outside the supported years."""
    moment = to_naive_utc(moment)
    if not EARLIEST <= moment < LATEST:
        raise WindowError(
            parameter,
            f"{moment.isoformat()} is outside the years {EARLIEST.year}-{LATEST.year - 1}",
        )
    return moment


def floor_to_grid(moment: datetime, minutes: int) -> datetime:
    step = timedelta(minutes=minutes)
    return _EPOCH + ((moment - _EPOCH) // step) * step


def align_window(
    start: datetime, end: datetime, interval_minutes: int, *, max_slots: int
) -> IntervalWindow:
    """Widen [start, end) to whole intervals and check it: ordered, in range, not too many slots.

    Raises ``WindowError`` naming ``start_time``/``end_time``; a window of more than
    ``max_slots`` intervals raises ``WindowTooLargeError``.
    """
    start, end = checked_moment("start_time", start), checked_moment("end_time", end)
    if end <= start:
        raise WindowError(
            "end_time", f"{end.isoformat()} must be after start_time {start.isoformat()}"
        )
    step = timedelta(minutes=interval_minutes)
    aligned_start = floor_to_grid(start, interval_minutes)
    aligned_end = floor_to_grid(end - timedelta(microseconds=1), interval_minutes) + step
    window = IntervalWindow(aligned_start, aligned_end, interval_minutes)
    if window.slots > max_slots:
        raise WindowTooLargeError(
            "end_time",
            f"the window holds {window.slots} intervals of {interval_minutes} min; at most "
            f"{max_slots} are served per request (use a coarser interval or a shorter window)",
        )
    return window


class WindowTooLargeError(WindowError):
    """The window is well-formed but holds more intervals than one response may carry."""
