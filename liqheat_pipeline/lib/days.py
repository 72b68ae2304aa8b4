"""Naive-UTC time helpers: the storage convention for every TIMESTAMP (never host-local time).

DuckDB compares a bound tz-aware datetime in the session's (host's) time zone, so everything
bound or stored is converted to naive UTC first; a UTC day D spans [day_start(D), day_end(D)).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

_DAY = timedelta(days=1)


def day_start(day: date) -> datetime:
    """Naive UTC midnight opening ``day``."""
    return datetime.combine(day, time())


def day_end(day: date) -> datetime:
    """Naive UTC midnight closing ``day`` (the next day's start)."""
    return day_start(day) + _DAY


def days_in(first_day: date, end_day: date) -> list[date]:
    """The days of [first_day, end_day), in order."""
    return [first_day + offset * _DAY for offset in range((end_day - first_day).days)]


def to_naive_utc(moment: datetime) -> datetime:
    """Naive UTC: aware datetimes are converted, naive ones are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def naive_utc_now() -> datetime:
    """The current instant as naive UTC (what ``computed_at`` columns hold)."""
    return datetime.now(UTC).replace(tzinfo=None)
