"""Per-day checks on the raw tables (the SQL lives in ``lib/archive/audit.py``).

Ingest already refuses impossible candles and non-positive open interest before writing (the
archive readers); these checks audit the stored rows independently, e.g. rows written by a SQL
session. Those that would poison the model block downstream assets in the same run; gaps are
reported without blocking, because the public archive has real gaps the model copes with (it
counts them).
"""

from collections.abc import Callable
from datetime import date

import dagster as dg
import duckdb
import pandas as pd

from liqheat_pipeline.defs.day_checks import (
    DayCheck,
    DayOutcome,
    build_day_checks,
    check_spec,
    each_day,
)
from liqheat_pipeline.defs.metadata import rows_table, sample_times
from liqheat_pipeline.lib.archive import audit
from liqheat_pipeline.lib.archive.feeds import CANDLES, OPEN_INTEREST, Feed, symbol_feeds
from liqheat_pipeline.lib.days import day_end, day_start
from liqheat_pipeline.project import Project, SymbolSpec

# Below this share of candle boundaries with an OI snapshot, the model's OI gaps get noticeable.
MIN_OI_COVERAGE = 0.98

Evaluate = Callable[[duckdb.DuckDBPyConnection, date], DayOutcome]


def build_ingest_checks(spec: SymbolSpec, project: Project) -> dg.AssetChecksDefinition:
    checks = []
    for feed in symbol_feeds(spec.with_mark_price):
        if feed is OPEN_INTEREST:
            checks += [_positive_open_interest(spec, project), _coverage(spec, project)]
        else:
            checks += [_continuity(spec, feed, project), _ohlc_sanity(spec, feed, project)]
    return build_day_checks(f"{spec.group}_raw_checks", checks)


def _day_check(
    spec: SymbolSpec,
    project: Project,
    feed: Feed,
    name: str,
    description: str,
    evaluate: Evaluate,
    *,
    blocking: bool,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    additional_deps: tuple[dg.AssetKey, ...] = (),
) -> DayCheck:
    return DayCheck(
        check_spec(
            spec.key(feed.table),
            name,
            description,
            project.partitions,
            blocking=blocking,
            additional_deps=additional_deps,
        ),
        each_day(evaluate),
        severity=severity,
    )


def _continuity(spec: SymbolSpec, feed: Feed, project: Project) -> DayCheck:
    def evaluate(conn: duckdb.DuckDBPyConnection, day: date) -> DayOutcome:
        counts = audit.slot_counts(conn, spec.symbol, feed, day_start(day), day_end(day))
        return DayOutcome(
            passed=counts.missing == 0 and counts.duplicates == 0 and counts.off_grid == 0,
            metadata={
                "expected_slots": dg.MetadataValue.int(counts.expected),
                "missing_slots": dg.MetadataValue.int(counts.missing),
                "missing_slots_sample": dg.MetadataValue.text(
                    sample_times(counts.missing_sample, counts.missing)
                ),
                "duplicate_rows": dg.MetadataValue.int(counts.duplicates),
                "off_grid_rows": dg.MetadataValue.int(counts.off_grid),
            },
        )

    return _day_check(
        spec,
        project,
        feed,
        "continuity",
        f"Every {feed.step} slot of the day has exactly one row (gaps are listed).",
        evaluate,
        blocking=False,
    )


def _ohlc_sanity(spec: SymbolSpec, feed: Feed, project: Project) -> DayCheck:
    return _no_bad_rows(
        spec,
        feed,
        project,
        name="ohlc_sanity",
        description="Every candle has positive prices and low <= open, close <= high.",
        columns=("open_time", "open", "high", "low", "close"),
        valid="low > 0 AND low <= least(open, close) AND greatest(open, close) <= high",
    )


def _positive_open_interest(spec: SymbolSpec, project: Project) -> DayCheck:
    return _no_bad_rows(
        spec,
        OPEN_INTEREST,
        project,
        name="positive_values",
        description="Every snapshot has a positive open interest and a positive USDT value.",
        columns=("ts", "open_interest", "open_interest_value"),
        valid="open_interest > 0 AND open_interest_value > 0",
    )


def _no_bad_rows(
    spec: SymbolSpec,
    feed: Feed,
    project: Project,
    *,
    name: str,
    description: str,
    columns: tuple[str, ...],
    valid: str,
) -> DayCheck:
    """A blocking check that no row of the day fails the SQL condition ``valid``."""

    def evaluate(conn: duckdb.DuckDBPyConnection, day: date) -> DayOutcome:
        bad = audit.bad_rows(
            conn, spec.symbol, feed, day_start(day), day_end(day), columns=columns, valid=valid
        )
        metadata = {"bad_rows": dg.MetadataValue.int(len(bad))}
        if bad:
            sample = pd.DataFrame(bad[: audit.SAMPLE_SIZE], columns=list(columns))
            metadata["bad_rows_sample"] = rows_table(sample)
        return DayOutcome(passed=not bad, metadata=metadata)

    return _day_check(spec, project, feed, name, description, evaluate, blocking=True)


def _coverage(spec: SymbolSpec, project: Project) -> DayCheck:
    def evaluate(conn: duckdb.DuckDBPyConnection, day: date) -> DayOutcome:
        coverage = audit.open_interest_coverage(conn, spec.symbol, day_start(day), day_end(day))
        return DayOutcome(
            passed=coverage.instants > 0 and coverage.share >= MIN_OI_COVERAGE,
            description=None if coverage.instants else "no candles on this day",
            metadata={
                "coverage": dg.MetadataValue.float(round(coverage.share, 6)),
                "candle_instants": dg.MetadataValue.int(coverage.instants),
                "instants_with_oi": dg.MetadataValue.int(coverage.covered),
                "candles": dg.MetadataValue.int(coverage.candles),
                "candles_with_oi_at_both_ends": dg.MetadataValue.int(coverage.both_ends),
                "uncovered_sample": dg.MetadataValue.text(
                    sample_times(coverage.uncovered_sample, coverage.instants - coverage.covered)
                ),
            },
        )

    return _day_check(
        spec,
        project,
        OPEN_INTEREST,
        "covers_candle_boundaries",
        "Share of the candles' open and close instants that have an OI snapshot (the model "
        f"needs OI at both ends of a candle); warns below {MIN_OI_COVERAGE:.0%}. The 00:00 "
        "instant of day D comes from open_interest partition D-1.",
        evaluate,
        blocking=False,
        severity=dg.AssetCheckSeverity.WARN,
        additional_deps=(spec.key(CANDLES.table),),
    )
