"""SQL audits of the raw tables over [start, end), independent of the archive readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from liqheat_pipeline.lib.archive.feeds import CANDLES, Feed

SAMPLE_SIZE = 12


@dataclass(frozen=True)
class SlotCounts:
    expected: int
    missing: int
    missing_sample: list[datetime]
    duplicates: int
    off_grid: int


def slot_counts(
    conn: duckdb.DuckDBPyConnection, symbol: str, feed: Feed, start: datetime, end: datetime
) -> SlotCounts:
    """Expected slots in [start, end), the missing ones, duplicate and off-grid rows."""
    time = feed.time_column
    row = conn.execute(
        f"""
        WITH present AS (
            SELECT {time} AS t, count(*) AS n FROM {feed.table}
            WHERE symbol = $symbol AND {time} >= $start AND {time} < $end GROUP BY ALL
        ),
        expected AS (SELECT unnest(generate_series($start, $end - $step, $step)) AS t),
        missing AS (SELECT t FROM expected ANTI JOIN present USING (t))
        SELECT (SELECT count(*) FROM expected),
               (SELECT count(*) FROM missing),
               (SELECT list(t ORDER BY t) FROM (
                    SELECT t FROM missing ORDER BY t LIMIT {SAMPLE_SIZE})),
               (SELECT coalesce(sum(n - 1), 0) FROM present),
               (SELECT count(*) FROM present ANTI JOIN expected USING (t))
        """,
        {"symbol": symbol, "start": start, "end": end, "step": feed.step},
    ).fetchone()
    expected, missing, sample, duplicates, off_grid = row
    return SlotCounts(int(expected), int(missing), sample or [], int(duplicates), int(off_grid))


def bad_rows(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    feed: Feed,
    start: datetime,
    end: datetime,
    *,
    columns: tuple[str, ...],
    valid: str,
) -> list[tuple]:
    """The rows the partition window owns that fail the SQL condition ``valid``, in time order."""
    return conn.execute(
        f"""
        SELECT {", ".join(columns)} FROM {feed.table}
        WHERE symbol = ? AND {feed.schema.owned()} AND NOT coalesce({valid}, false)
        ORDER BY {feed.time_column}
        """,
        [symbol, start, end],
    ).fetchall()


@dataclass(frozen=True)
class Coverage:
    """Candle open/close instants in [start, end) and how many have an OI snapshot."""

    instants: int
    covered: int
    candles: int
    both_ends: int
    uncovered_sample: list[datetime]

    @property
    def share(self) -> float:
        return self.covered / self.instants if self.instants else 0.0


def open_interest_coverage(
    conn: duckdb.DuckDBPyConnection, symbol: str, start: datetime, end: datetime
) -> Coverage:
    row = conn.execute(
        f"""
        WITH candle_ends AS (
            SELECT open_time AS t0, open_time + $step AS t1 FROM candles
            WHERE symbol = $symbol AND open_time >= $start AND open_time < $end
        ),
        oi AS (
            SELECT DISTINCT ts FROM open_interest
            WHERE symbol = $symbol AND ts >= $start AND ts <= $end
        ),
        instants AS (SELECT t0 AS t FROM candle_ends UNION SELECT t1 FROM candle_ends),
        uncovered AS (SELECT t FROM instants ANTI JOIN oi ON t = ts)
        SELECT (SELECT count(*) FROM instants),
               (SELECT count(*) FROM uncovered),
               (SELECT count(*) FROM candle_ends),
               (SELECT count(*) FROM candle_ends
                WHERE t0 IN (SELECT ts FROM oi) AND t1 IN (SELECT ts FROM oi)),
               (SELECT list(t ORDER BY t) FROM (
                    SELECT t FROM uncovered ORDER BY t LIMIT {SAMPLE_SIZE}))
        """,
        {"symbol": symbol, "start": start, "end": end, "step": CANDLES.step},
    ).fetchone()
    instants, uncovered, candles, both_ends, sample = row
    return Coverage(
        int(instants), int(instants - uncovered), int(candles), int(both_ends), sample or []
    )
