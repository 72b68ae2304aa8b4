"""Asset checks evaluated and reported per day partition, in single-day and range runs alike.

Dagster records an ``AssetCheckResult`` of a range run against the range as a whole (partition
"—") and leaves each day's planned evaluation without a result, so the UI shows the days as
skipped. The checks built here evaluate every day of the run on its own (a day's rows and the
state it started from; up to a week of days share a connection) and report one evaluation per
day, then emit the check's output so that downstream steps still gate on blocking checks (a
failed blocking evaluation fails the step). They are subsettable: the UI can run one check
alone.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg
import duckdb

from liqheat_pipeline.defs.resources import LiqheatDatabase


@dataclass(frozen=True)
class DayOutcome:
    passed: bool
    metadata: Mapping[str, dg.MetadataValue] = field(default_factory=dict)
    description: str | None = None


# How a check evaluates consecutive days on one read connection: one outcome per day.
EvaluateDays = Callable[[duckdb.DuckDBPyConnection, Sequence[date]], Mapping[date, DayOutcome]]


def each_day(evaluate: Callable[[duckdb.DuckDBPyConnection, date], DayOutcome]) -> EvaluateDays:
    """The evaluation of consecutive days by evaluating one day at a time."""
    return lambda conn, days: {day: evaluate(conn, day) for day in days}


@dataclass(frozen=True)
class DayCheck:
    """One check: its spec and how consecutive days are evaluated on a read connection."""

    spec: dg.AssetCheckSpec
    evaluate: EvaluateDays
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


# Days evaluated on one connection. A week of model checks holds the file for a few seconds at a
# year's history (another symbol's writer waits that long at most), and what the days' checks
# share is prepared once for the week (the model's end states: 0.15 s a day instead of 0.4 s).
DAYS_PER_CONNECTION = 7


def consecutive_batches(days: Sequence[date], size: int) -> list[list[date]]:
    """``days`` (ascending) cut into runs of consecutive days, each at most ``size`` long."""
    batches: list[list[date]] = []
    for day in days:
        last = batches[-1] if batches else None
        if last is not None and len(last) < size and day == last[-1] + timedelta(days=1):
            last.append(day)
        else:
            batches.append([day])
    return batches


def build_day_checks(
    name: str,
    checks: Sequence[DayCheck],
    prepare: Callable[[duckdb.DuckDBPyConnection, date, date], object] | None = None,
) -> dg.AssetChecksDefinition:
    """One step running the selected ``checks`` for every day of the run's partitions;
    ``prepare(conn, first_day, last_day)`` runs first on each connection, for the consecutive
    days evaluated on it (what their checks share)."""

    @dg.multi_asset_check(specs=[check.spec for check in checks], name=name, can_subset=True)
    def day_checks(
        context: dg.AssetCheckExecutionContext, database: LiqheatDatabase
    ) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
        selected = [
            check for check in checks if check.spec.key in context.selected_asset_check_keys
        ]
        days = sorted(date.fromisoformat(key) for key in context.partition_keys)
        for batch in consecutive_batches(days, DAYS_PER_CONNECTION):
            # Closed before the batch's results are reported: another symbol's step in a
            # parallel process gets the file between two batches, not only after the range.
            with database.read() as conn:
                if prepare is not None:
                    prepare(conn, batch[0], batch[-1])
                by_check = [(check, check.evaluate(conn, batch)) for check in selected]
            outcomes = [(day, check, per_day[day]) for day in batch for check, per_day in by_check]
            for day, check, outcome in outcomes:
                yield dg.AssetCheckEvaluation(
                    asset_key=check.spec.asset_key,
                    check_name=check.spec.name,
                    passed=outcome.passed,
                    metadata=outcome.metadata,
                    severity=check.severity,
                    description=outcome.description,
                    blocking=check.spec.blocking,
                    partition=day.isoformat(),
                )
        for check in selected:
            yield dg.Output(None, output_name=check.spec.get_python_identifier())

    return day_checks
