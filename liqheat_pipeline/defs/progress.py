"""Progress lines for long range runs: days done of the total and rows per second."""

import time
from datetime import date

import dagster as dg

# About this many lines per step however long the range (plus the last day's).
LINES_PER_STEP = 10


class DayProgress:
    """Logs ``<what>: <done>/<total> days (<pct>), through <day>, <n> <unit>, <rate> <unit>/s``."""

    def __init__(
        self, log: dg.DagsterLogManager, what: str, total: int, unit: str = "rows"
    ) -> None:
        self._log, self._what, self._total, self._unit = log, what, total, unit
        self._every = max(1, total // LINES_PER_STEP)
        self._done = self._rows = 0
        self._started = time.perf_counter()

    def day_done(self, day: date, rows: int) -> None:
        self._done += 1
        self._rows += rows
        if self._done % self._every and self._done != self._total:
            return
        seconds = max(time.perf_counter() - self._started, 1e-9)
        self._log.info(
            f"{self._what}: {self._done}/{self._total} days ({self._done / self._total:.0%}), "
            f"through {day}, {self._rows:,} {self._unit}, "
            f"{self._rows / seconds:,.0f} {self._unit}/s"
        )
