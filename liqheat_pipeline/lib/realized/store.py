"""SQL over the stored ``realized_liquidations`` rows (pure DuckDB, used by the asset check)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

REALIZED_TABLE = "realized_liquidations"


@dataclass(frozen=True)
class WindowProblems:
    """What is wrong with one symbol's rows whose bucket_start lies in a window."""

    rows: int
    # Rows with a negative or non-finite USD value, or a bucket length that is not positive.
    bad_value_rows: int
    # bucket_start values held by more than one row.
    duplicate_buckets: int
    first_bad_value: datetime | None
    first_duplicate: datetime | None

    @property
    def ok(self) -> bool:
        return self.bad_value_rows == 0 and self.duplicate_buckets == 0


def window_problems(
    conn: duckdb.DuckDBPyConnection, symbol: str, start: datetime, end: datetime
) -> WindowProblems:
    """Count bad values and repeated buckets among ``symbol``'s rows in [start, end)."""
    # NaN compares greater than every number in DuckDB, so `>= 0` alone would accept it.
    rows, bad, first_bad = conn.execute(
        f"""
        WITH checked AS (
            SELECT bucket_start,
                   NOT (isfinite(long_usd) AND long_usd >= 0
                        AND isfinite(short_usd) AND short_usd >= 0
                        AND bucket_minutes > 0) AS bad
            FROM {REALIZED_TABLE}
            WHERE symbol = ? AND bucket_start >= ? AND bucket_start < ?
        )
        SELECT count(*), count(*) FILTER (WHERE bad), min(bucket_start) FILTER (WHERE bad)
        FROM checked
        """,
        [symbol, start, end],
    ).fetchone()
    duplicates, first_duplicate = conn.execute(
        f"""
        SELECT count(*), min(bucket_start) FROM (
            SELECT bucket_start FROM {REALIZED_TABLE}
            WHERE symbol = ? AND bucket_start >= ? AND bucket_start < ?
            GROUP BY bucket_start HAVING count(*) > 1
        )
        """,
        [symbol, start, end],
    ).fetchone()
    return WindowProblems(rows, bad, duplicates, first_bad, first_duplicate)
