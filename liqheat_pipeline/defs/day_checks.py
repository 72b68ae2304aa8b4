"""Asset checks evaluated and reported per day partition, in single-day and range runs alike.

Dagster records an ``AssetCheckResult`` of a range run against the range as a whole (partition
"—") and leaves each day's planned evaluation without a result, so the UI shows the days as
skipped. The checks built here evaluate every day of the run on its own, on a connection of
that day only, and report one evaluation per day, then emit the check's output so that
downstream steps still gate on blocking checks (a failed blocking evaluation fails the step).
They are subsettable: the UI can run one check alone.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import dagster as dg
import duckdb

from liqheat_pipeline.defs.resources import LiqheatDatabase


@dataclass(frozen=True)
class DayOutcome:
    passed: bool
    metadata: Mapping[str, dg.MetadataValue] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class DayCheck:
    """One check: its spec and how one day is evaluated on a read connection."""

    spec: dg.AssetCheckSpec
    evaluate: Callable[[duckdb.DuckDBPyConnection, date], DayOutcome]
    # WARN: reported, never blocking (e.g. gaps the public archive really has).
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR


def check_spec(
    asset: dg.AssetKey,
    name: str,
    description: str,
    partitions: dg.PartitionsDefinition,
    *,
    blocking: bool,
    additional_deps: Sequence[dg.AssetKey] = (),
) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        name,
        asset=asset,
        description=description,
        blocking=blocking,
        partitions_def=partitions,
        additional_deps=list(additional_deps),
    )


def build_day_checks(
    name: str,
    checks: Sequence[DayCheck],
    prepare: Callable[[duckdb.DuckDBPyConnection, date], object] | None = None,
) -> dg.AssetChecksDefinition:
    """One step running the selected ``checks`` for every day of the run's partition range;
    ``prepare`` runs first on each day's connection (what the day's checks share)."""

    @dg.multi_asset_check(specs=[check.spec for check in checks], name=name, can_subset=True)
    def day_checks(
        context: dg.AssetCheckExecutionContext, database: LiqheatDatabase
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        selected = [
            check for check in checks if check.spec.key in context.selected_asset_check_keys
        ]
        for key in context.partition_keys:
            day = date.fromisoformat(key)
            # One connection per day, closed before its results are reported: another symbol's
            # step in a parallel process gets the file between two days, not after the range.
            with database.read() as conn:
                if prepare is not None:
                    prepare(conn, day)
                outcomes = [(check, check.evaluate(conn, day)) for check in selected]
            for check, outcome in outcomes:
                yield dg.AssetCheckEvaluation(
                    asset_key=check.spec.asset_key,
                    check_name=check.spec.name,
                    passed=outcome.passed,
                    metadata=outcome.metadata,
                    severity=check.severity,
                    description=outcome.description,
                    blocking=check.spec.blocking,
                    partition=key,
                )
        for check in selected:
            yield dg.Output(None, output_name=check.spec.get_python_identifier())

    return day_checks
