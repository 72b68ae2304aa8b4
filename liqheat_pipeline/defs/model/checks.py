"""Partition-aware asset checks of the model outputs, verified independently in SQL.

All checks of one symbol run in one step over one connection, each day of the materialized
partition or range on its own (``defs/day_checks.py``). They are independent audits of what
was stored: the model asset already refuses to write days breaking the invariants it can decide
in memory (``model_invariants``), so a failure here means the file was changed outside the
pipeline or the two implementations disagree. They block, so downstream assets (the heatmap
page) do not run on it.
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta

import dagster as dg
import duckdb

from liqheat_pipeline.defs.day_checks import DayCheck, DayOutcome, build_day_checks, check_spec
from liqheat_pipeline.lib.model import audit
from liqheat_pipeline.project import Project, SymbolSpec

Audit = Callable[[duckdb.DuckDBPyConnection, audit.AuditWindow], audit.AuditResult]


def _values_audit(*tables: str) -> Audit:
    def run(conn, window):
        return audit.values_valid_and_keys_unique(conn, window, tables)

    return run


# (asset name, check name) -> (description, audit)
MODEL_CHECKS: dict[tuple[str, str], tuple[str, Audit]] = {
    ("level_consumptions", "consumed_at_first_crossing"): (
        "Per day, from the day's rows and the previous day's stored end state: every level "
        "the day starts with or opens is consumed at the day's first candle after its creation "
        "whose low (long) / high (short) crosses its liquidation price (mark-price candles "
        "where present), unless closures closed it out before; nothing else is consumed, and "
        "a consumed level leaves the end state.",
        audit.consumed_at_first_crossing,
    ),
    ("model_state", "active_levels_never_crossed"): (
        "Per day: every level of the day's end state (view model_state) was opened "
        "that day or is in the previous day's end state, and no candle of the day after its "
        "creation crossed it; by induction over the days (the first starts empty), no active "
        "level was ever crossed since its creation.",
        audit.active_levels_not_crossed,
    ),
    ("model_state", "continuity_with_previous_day"): (
        "Each day's first candle starts from the previous day's closing active totals (view "
        "model_state), and each day's end state equals its last ledger row.",
        audit.continuity_with_previous_day,
    ),
    ("candle_ledger", "ledger_identity"): (
        "active_k = active_(k-1) + opened - consumed - closed per candle and side, across the "
        "day boundary; one row per candle and side.",
        audit.ledger_identity,
    ),
    ("candle_ledger", "closures_follow_open_interest"): (
        "Each candle's closed USD per side equals f_k × the side's active USD before the "
        "closure, f_k recomputed from stored candles and open interest under the run's "
        "closure_model (model.md step 6); open_interest_usd and coverage match step 7.",
        audit.closures_follow_open_interest,
    ),
    ("heatmap_snapshots", "snapshots_match_ledger"): (
        "Bucket sums of both snapshot views equal the ledger's active and consumed USD.",
        audit.snapshots_match_ledger,
    ),
    ("level_openings", "liquidation_prices_match_brackets"): (
        "Liquidation prices and leverage caps recomputed in SQL from entry price, tier leverage, "
        "side, the margin brackets and N_rep equal the stored ones.",
        audit.liquidation_prices_match_brackets,
    ),
    **{
        (name, "values_valid_keys_unique"): (
            "No NULL, NaN or negative notionals or prices; no duplicate contract keys.",
            _values_audit(*tables),
        )
        for name, tables in {
            "level_openings": ("level_openings",),
            "level_consumptions": ("level_consumptions",),
            "candle_ledger": ("candle_ledger",),
            "heatmap_snapshots": ("snapshot_segments", "snapshot_segments_by_leverage"),
            "model_state": ("level_closeouts",),
        }.items()
    },
}


def _day_outcome(result: audit.AuditResult) -> DayOutcome:
    metadata: dict[str, dg.MetadataValue] = {
        key: dg.MetadataValue.int(value) for key, value in result.counts.items()
    }
    if not result.offending.empty:
        metadata["offending_rows"] = dg.MetadataValue.md(result.offending.to_markdown(index=False))
    return DayOutcome(passed=result.passed, metadata=metadata, description=result.description)


def build_model_checks(spec: SymbolSpec, project: Project) -> dg.AssetChecksDefinition:
    history_start = project.settings.start_date

    def window(first_day: date, last_day: date) -> audit.AuditWindow:
        return audit.AuditWindow(
            spec.symbol,
            first_day=first_day,
            end_day=last_day + timedelta(days=1),
            history_start=history_start,
            states=audit.MATERIALIZED_STATES,
        )

    def day_check(asset: str, name: str, description: str, run_audit: Audit) -> DayCheck:
        # One audit over the consecutive days, its findings split by day: each day's outcome is
        # what auditing that day alone gives (audit.AuditResult.by_day), in fewer queries.
        def evaluate(
            conn: duckdb.DuckDBPyConnection, days: Sequence[date]
        ) -> Mapping[date, DayOutcome]:
            result = run_audit(conn, window(days[0], days[-1]))
            return {day: _day_outcome(result.by_day[day]) for day in days}

        return DayCheck(
            check_spec(spec.key(asset), name, description, project.partitions, blocking=True),
            evaluate,
        )

    return build_day_checks(
        f"{spec.group}_model_checks",
        [
            day_check(asset, name, description, run_audit)
            for (asset, name), (description, run_audit) in MODEL_CHECKS.items()
        ],
        # The end states of the connection's days and of the day before, rebuilt once for all
        # their checks.
        prepare=lambda conn, first_day, last_day: audit.with_materialized_states(
            conn, window(first_day, last_day)
        ),
    )
