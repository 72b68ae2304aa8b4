"""Partition-aware checks on the raw tables, run against DuckDB over the checked date range.

Ingest already refuses impossible candles and non-positive open interest before writing (the
archive readers); these checks audit the stored rows independently, e.g. rows written by a SQL
session. Those that would poison the model block downstream assets in the same run; gaps are
reported but do not block, because the public archive has real gaps the model copes with (it
counts them).
"""

from datetime import datetime

import dagster as dg
import duckdb

from liqheat_pipeline.defs.ingest.assets import (
    CANDLES,
    OPEN_INTEREST,
    SAMPLE_SIZE,
    Feed,
    feed_key,
    markdown_table,
    naive_utc_window,
    sample_times,
    symbol_feeds,
)
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.partitions import daily_partitions
from liqheat_pipeline.settings import Settings, load_settings

# Below this share of candle boundaries with an OI snapshot, the model's OI gaps get noticeable.
MIN_OI_COVERAGE = 0.98


def build_ingest_checks(settings: Settings) -> list[dg.AssetChecksDefinition]:
    partitions = daily_partitions(settings)
    checks = []
    for symbol in settings.symbols:
        for feed in symbol_feeds(settings, symbol):
            if feed is OPEN_INTEREST:
                checks.append(_positive_open_interest(symbol, partitions))
                checks.append(_open_interest_coverage(symbol, partitions))
            else:
                checks.append(_continuity(symbol, feed, partitions))
                checks.append(_ohlc_sanity(symbol, feed, partitions))
    return checks


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(asset_checks=build_ingest_checks(load_settings()))


def _continuity(
    symbol: str, feed: Feed, partitions: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=feed_key(symbol, feed),
        name="continuity",
        partitions_def=partitions,
        description=(
            f"Every {feed.step} slot of the checked days has exactly one row (gaps are listed)."
        ),
    )
    def continuity(
        context: dg.AssetCheckExecutionContext, database: LiqheatDatabase
    ) -> dg.AssetCheckResult:
        start, end = naive_utc_window(context.partition_time_window)
        with database.read() as conn:
            expected, missing, missing_sample, duplicates, off_grid = _slot_counts(
                conn, symbol, feed, start, end
            )
        return dg.AssetCheckResult(
            passed=missing == 0 and duplicates == 0 and off_grid == 0,
            metadata={
                "expected_slots": expected,
                "missing_slots": missing,
                "missing_slots_sample": sample_times(missing_sample, missing),
                "duplicate_rows": duplicates,
                "off_grid_rows": off_grid,
            },
        )

    return continuity


def _slot_counts(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    feed: Feed,
    start: datetime,
    end: datetime,
) -> tuple[int, int, list[datetime], int, int]:
    """(expected slots, missing slots, the first missing ones, duplicate rows, off-grid rows)."""
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
    return int(expected), int(missing), sample or [], int(duplicates), int(off_grid)


def _ohlc_sanity(
    symbol: str, feed: Feed, partitions: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    return _no_bad_rows(
        symbol,
        feed,
        partitions,
        name="ohlc_sanity",
        description="Every candle has positive prices and low <= open, close <= high.",
        columns=("open_time", "open", "high", "low", "close"),
        valid="low > 0 AND low <= least(open, close) AND greatest(open, close) <= high",
    )


def _positive_open_interest(
    symbol: str, partitions: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    return _no_bad_rows(
        symbol,
        OPEN_INTEREST,
        partitions,
        name="positive_values",
        description="Every snapshot has a positive open interest and a positive USDT value.",
        columns=("ts", "open_interest", "open_interest_value"),
        valid="open_interest > 0 AND open_interest_value > 0",
    )


def _no_bad_rows(
    symbol: str,
    feed: Feed,
    partitions: dg.PartitionsDefinition,
    *,
    name: str,
    description: str,
    columns: tuple[str, ...],
    valid: str,
) -> dg.AssetChecksDefinition:
    """A blocking check that no row of the checked days fails the SQL condition ``valid``."""
    time = feed.time_column
    window = f"{time} > ? AND {time} <= ?" if feed.include_end else f"{time} >= ? AND {time} < ?"

    @dg.asset_check(
        asset=feed_key(symbol, feed),
        name=name,
        partitions_def=partitions,
        blocking=True,
        description=description,
    )
    def no_bad_rows(
        context: dg.AssetCheckExecutionContext, database: LiqheatDatabase
    ) -> dg.AssetCheckResult:
        start, end = naive_utc_window(context.partition_time_window)
        with database.read() as conn:
            bad = conn.execute(
                f"""
                SELECT {", ".join(columns)} FROM {feed.table}
                WHERE symbol = ? AND {window} AND NOT coalesce({valid}, false)
                ORDER BY {time}
                """,
                [symbol, start, end],
            ).fetchall()
        sample = markdown_table(columns, bad[:SAMPLE_SIZE]) if bad else "_none_"
        return dg.AssetCheckResult(
            passed=not bad,
            metadata={"bad_rows": len(bad), "bad_rows_sample": dg.MetadataValue.md(sample)},
        )

    return no_bad_rows


def _open_interest_coverage(
    symbol: str, partitions: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=feed_key(symbol, OPEN_INTEREST),
        name="covers_candle_boundaries",
        partitions_def=partitions,
        additional_deps=[feed_key(symbol, CANDLES)],
        description=(
            "Share of the candles' open and close instants that have an OI snapshot (the model "
            f"needs OI at both ends of a candle); warns below {MIN_OI_COVERAGE:.0%}. The 00:00 "
            "instant of day D comes from open_interest partition D-1."
        ),
    )
    def covers_candle_boundaries(
        context: dg.AssetCheckExecutionContext, database: LiqheatDatabase
    ) -> dg.AssetCheckResult:
        start, end = naive_utc_window(context.partition_time_window)
        with database.read() as conn:
            instants, covered, candles, both_ends, uncovered = _coverage(conn, symbol, start, end)
        share = covered / instants if instants else 0.0
        return dg.AssetCheckResult(
            passed=instants > 0 and share >= MIN_OI_COVERAGE,
            severity=dg.AssetCheckSeverity.WARN,
            description=None if instants else "no candles in the checked range",
            metadata={
                "coverage": dg.MetadataValue.float(round(share, 6)),
                "candle_instants": instants,
                "instants_with_oi": covered,
                "candles": candles,
                "candles_with_oi_at_both_ends": both_ends,
                "uncovered_sample": sample_times(uncovered, instants - covered),
            },
        )

    return covers_candle_boundaries


def _coverage(
    conn: duckdb.DuckDBPyConnection, symbol: str, start: datetime, end: datetime
) -> tuple[int, int, int, int, list[datetime]]:
    """(candle instants, those with an OI snapshot, candles, candles with OI at both ends,
    the first uncovered instants) for candles opening in [start, end)."""
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
    return int(instants), int(instants - uncovered), int(candles), int(both_ends), sample or []
