"""Observed liquidations per symbol: the ``realized_liquidations`` asset and its per-day check.

Each run reads the realized buckets of its partition range, then replaces the range's rows in one
transaction: a bad file fails the run and leaves the table as it was.
"""

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
from liqheat_pipeline.defs.metadata import row_counts, sample_times, table_metadata, usd
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib.archive.layout import LIQUIDATION_SNAPSHOT, dataset_directory
from liqheat_pipeline.lib.days import day_end, day_start
from liqheat_pipeline.lib.realized.readers import (
    RealizedRead,
    base_asset,
    coinglass_directory,
    coinglass_scope,
    read_realized,
    snapshot_scope,
)
from liqheat_pipeline.lib.realized.store import REALIZED_TABLE, window_problems
from liqheat_pipeline.lib.warehouse import replace_rows
from liqheat_pipeline.project import OWNERS, Project, SymbolSpec
from liqheat_pipeline.settings import Settings

NO_REALIZED_DATA = "no realized data"


def build_realized_asset(spec: SymbolSpec, project: Project) -> dg.AssetsDefinition:
    settings, symbol = project.settings, spec.symbol

    @dg.asset(
        key=spec.key(REALIZED_TABLE),
        group_name=spec.group,
        kinds={"duckdb"},
        owners=OWNERS,
        tags=spec.tags("validation"),
        metadata=table_metadata(REALIZED_TABLE),
        partitions_def=project.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=_description(symbol),
    )
    def realized_liquidations(
        context: dg.AssetExecutionContext, database: LiqheatDatabase
    ) -> dg.MaterializeResult:
        days = [date.fromisoformat(key) for key in context.partition_keys]
        start, end = day_start(days[0]), day_end(days[-1])
        try:
            read = read_realized(settings.liquidations_dir, settings.data_dir, symbol, start, end)
        except ValueError as error:  # a bad file (ArchiveFormatError) or an unknown base asset
            raise dg.Failure(description=str(error)) from error
        rows = read.frame.copy()
        rows.insert(0, "symbol", symbol)
        with database.transaction() as conn:
            replace_rows(conn, REALIZED_TABLE, rows, symbol=symbol, start=start, end=end)
        context.log.info(
            f"{symbol} {REALIZED_TABLE}: {len(rows):,} rows for [{start}, {end}) "
            f"({read.rows_read:,} read, {read.duplicates_dropped:,} identical duplicates dropped)"
        )
        for day in days:
            context.add_asset_metadata(
                _day_metadata(settings, symbol, read, day), partition_key=day.isoformat()
            )
        return dg.MaterializeResult()

    return realized_liquidations


def build_realized_check(spec: SymbolSpec, project: Project) -> dg.AssetChecksDefinition:
    def evaluate(conn: duckdb.DuckDBPyConnection, day: date) -> DayOutcome:
        problems = window_problems(conn, spec.symbol, day_start(day), day_end(day))
        return DayOutcome(
            passed=problems.ok,
            metadata={
                "rows": dg.MetadataValue.int(problems.rows),
                "bad_value_rows": dg.MetadataValue.int(problems.bad_value_rows),
                "first_bad_value": dg.MetadataValue.text(_when(problems.first_bad_value)),
                "duplicate_buckets": dg.MetadataValue.int(problems.duplicate_buckets),
                "first_duplicate": dg.MetadataValue.text(_when(problems.first_duplicate)),
            },
        )

    description = "USD values are finite and ≥ 0, and each bucket_start has one row."
    valid_buckets = check_spec(
        spec.key(REALIZED_TABLE), "valid_buckets", description, project.partitions, blocking=False
    )
    return build_day_checks(
        f"{spec.group}_realized_checks", [DayCheck(valid_buckets, each_day(evaluate))]
    )


def _description(symbol: str) -> str:
    try:
        coinglass = coinglass_scope(base_asset(symbol))
    except ValueError:
        coinglass = "no CoinGlass folder: the symbol's base asset is unknown"
    return (
        f"Observed, not modelled, liquidations of {symbol}: long and short USD per bucket. "
        f"Days with a Binance archive liquidationSnapshot file use it ({snapshot_scope(symbol)}, "
        f"60-minute buckets); other days use the CoinGlass exports ({coinglass}). Compare shapes "
        "and ranks with the model, not absolute sizes: the scopes differ. A missing bucket is "
        "absent, never 0."
    )


def _day_metadata(
    settings: Settings, symbol: str, read: RealizedRead, day: date
) -> dict[str, dg.MetadataValue]:
    start, end = day_start(day), day_end(day)
    frame = read.frame[(read.frame["bucket_start"] >= start) & (read.frame["bucket_start"] < end)]
    metadata: dict[str, dg.MetadataValue] = {
        **row_counts(REALIZED_TABLE, len(frame)),
        "long_usd": usd(float(frame["long_usd"].sum())),
        "short_usd": usd(float(frame["short_usd"].sum())),
    }
    if frame.empty:
        where = (
            f"{settings.data_dir / dataset_directory(LIQUIDATION_SNAPSHOT, symbol)} "
            f"and {_coinglass_folder(settings, symbol)}"
        )
        metadata["sources"] = dg.MetadataValue.text(f"{NO_REALIZED_DATA} (looked in {where})")
        metadata["scope"] = dg.MetadataValue.text(NO_REALIZED_DATA)
        return metadata
    missing = [moment for moment in read.missing_buckets if start <= moment < end]
    metadata.update(
        {
            "sources": dg.MetadataValue.text(", ".join(sorted(frame["source"].unique()))),
            "scope": dg.MetadataValue.text("; and ".join(sorted(frame["scope"].unique()))),
            "bucket_minutes": dg.MetadataValue.text(
                ", ".join(str(minutes) for minutes in sorted(frame["bucket_minutes"].unique()))
            ),
            "first_bucket": dg.MetadataValue.text(_when(frame["bucket_start"].iloc[0])),
            "last_bucket": dg.MetadataValue.text(_when(frame["bucket_start"].iloc[-1])),
            "missing_buckets": dg.MetadataValue.int(len(missing)),
            "missing_buckets_sample": dg.MetadataValue.text(sample_times(missing, len(missing))),
        }
    )
    return metadata


def _coinglass_folder(settings: Settings, symbol: str) -> str:
    try:
        return str(coinglass_directory(settings.liquidations_dir, symbol))
    except ValueError as error:
        return str(error)


def _when(moment: pd.Timestamp | None) -> str:
    return "none" if moment is None or pd.isna(moment) else f"{moment:%Y-%m-%d %H:%M} UTC"
