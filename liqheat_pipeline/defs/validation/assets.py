"""Observed liquidations per symbol: the ``realized_liquidations`` asset and its check.

Each run reads the realized buckets of its partition range, then replaces the range's rows in one
transaction: a bad file fails the run and leaves the table as it was.
"""

import dagster as dg
import pandas as pd

from liqheat_pipeline.defs.ingest.assets import naive_utc_window, sample_times
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib.archive.layout import LIQUIDATION_SNAPSHOT, dataset_directory
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
from liqheat_pipeline.settings import Settings

NO_REALIZED_DATA = "no realized data"


def realized_key(symbol: str) -> dg.AssetKey:
    return dg.AssetKey([symbol.lower(), REALIZED_TABLE])


def build_realized_asset(
    settings: Settings, symbol: str, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    @dg.asset(
        key=realized_key(symbol),
        group_name=symbol.lower(),
        kinds={"duckdb"},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=_description(symbol),
    )
    def realized_liquidations(
        context: dg.AssetExecutionContext, database: LiqheatDatabase
    ) -> dg.MaterializeResult:
        start, end = naive_utc_window(context.partition_time_window)
        try:
            read = read_realized(settings.liquidations_dir, settings.data_dir, symbol, start, end)
        except ValueError as error:  # a bad file (ArchiveFormatError) or an unknown base asset
            raise dg.Failure(description=str(error)) from error
        rows = read.frame.copy()
        rows.insert(0, "symbol", symbol)
        with database.transaction() as conn:
            replace_rows(
                conn,
                REALIZED_TABLE,
                rows,
                symbol=symbol,
                time_column="bucket_start",
                start=start,
                end=end,
            )
            (total,) = conn.execute(
                f"SELECT count(*) FROM {REALIZED_TABLE} WHERE symbol = ?", [symbol]
            ).fetchone()
        context.log.info(f"{symbol} {REALIZED_TABLE}: {len(rows)} rows for [{start}, {end})")
        metadata = _metadata(settings, symbol, read, total)
        if len(context.partition_keys) == 1:
            metadata["dagster/partition_row_count"] = dg.MetadataValue.int(len(rows))
        return dg.MaterializeResult(metadata=metadata)

    return realized_liquidations


def build_realized_check(
    symbol: str, partitions: dg.PartitionsDefinition
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=realized_key(symbol),
        name="valid_buckets",
        partitions_def=partitions,
        blocking=False,
        description=(
            "In the checked days: USD values are finite and ≥ 0, and each bucket_start has one row."
        ),
    )
    def valid_buckets(
        context: dg.AssetCheckExecutionContext, database: LiqheatDatabase
    ) -> dg.AssetCheckResult:
        start, end = naive_utc_window(context.partition_time_window)
        with database.read() as conn:
            problems = window_problems(conn, symbol, start, end)
        return dg.AssetCheckResult(
            passed=problems.ok,
            metadata={
                "rows": problems.rows,
                "bad_value_rows": problems.bad_value_rows,
                "first_bad_value": _when(problems.first_bad_value),
                "duplicate_buckets": problems.duplicate_buckets,
                "first_duplicate": _when(problems.first_duplicate),
            },
        )

    return valid_buckets


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


def _metadata(
    settings: Settings, symbol: str, read: RealizedRead, total: int
) -> dict[str, dg.MetadataValue]:
    frame = read.frame
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/table_name": dg.MetadataValue.text(REALIZED_TABLE),
        "dagster/row_count": dg.MetadataValue.int(int(total)),
        "rows_written": dg.MetadataValue.int(len(frame)),
        "rows_read": dg.MetadataValue.int(read.rows_read),
        "duplicates_dropped": dg.MetadataValue.int(read.duplicates_dropped),
        "long_usd_total": dg.MetadataValue.text(_usd(frame["long_usd"].sum())),
        "short_usd_total": dg.MetadataValue.text(_usd(frame["short_usd"].sum())),
    }
    if frame.empty:
        where = (
            f"{settings.data_dir / dataset_directory(LIQUIDATION_SNAPSHOT, symbol)} "
            f"and {_coinglass_folder(settings, symbol)}"
        )
        metadata["sources"] = dg.MetadataValue.text(f"{NO_REALIZED_DATA} (looked in {where})")
        metadata["scope"] = dg.MetadataValue.text(NO_REALIZED_DATA)
        return metadata
    missing = read.missing_buckets
    metadata.update(
        {
            "sources": dg.MetadataValue.text(", ".join(read.sources)),
            "scope": dg.MetadataValue.text("; and ".join(read.scopes)),
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


def _usd(value: float) -> str:
    return f"${value:,.0f}"


def _when(moment: pd.Timestamp | None) -> str:
    return "none" if moment is None or pd.isna(moment) else f"{moment:%Y-%m-%d %H:%M} UTC"
