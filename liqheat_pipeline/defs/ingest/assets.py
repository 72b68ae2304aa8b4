"""Raw-data assets: one daily-partitioned table feed per symbol and archive dataset.

Each run reads every day's archive file of its partition range, then replaces the range's rows in
one transaction: a bad or missing file fails the run and leaves the table as it was. The readers
enforce what can be decided from the file before anything is written (rows present, low <= open,
close <= high, positive values, the plausibility limits of the settings); the blocking asset
checks audit the stored rows independently.
"""

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import dagster as dg
import pandas as pd

from liqheat_pipeline.defs.metadata import preview_rows, row_counts, sample_times, table_metadata
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib.archive.feeds import CANDLE_INTERVAL, METRICS, Feed, symbol_feeds
from liqheat_pipeline.lib.archive.layout import daily_relative_path, find_daily_file
from liqheat_pipeline.lib.archive.readers import (
    ArchiveFormatError,
    DailyRead,
    MetricsRead,
    PreviousRow,
    read_klines,
    read_metrics,
)
from liqheat_pipeline.lib.days import day_end, day_start
from liqheat_pipeline.lib.warehouse import replace_rows
from liqheat_pipeline.project import OWNERS, Project, SymbolSpec
from liqheat_pipeline.settings import Settings

# Bump when the readers change what they store from the same files (marks the UI stale).
READER_VERSION = "archive-readers-1"


def build_ingest_assets(spec: SymbolSpec, project: Project) -> list[dg.AssetsDefinition]:
    return [_feed_asset(spec, feed, project) for feed in symbol_feeds(spec.with_mark_price)]


def _feed_asset(spec: SymbolSpec, feed: Feed, project: Project) -> dg.AssetsDefinition:
    settings, symbol = project.settings, spec.symbol

    @dg.asset(
        key=spec.key(feed.table),
        group_name=spec.group,
        kinds={"duckdb"},
        owners=OWNERS,
        tags=spec.tags("raw"),
        code_version=READER_VERSION,
        metadata=table_metadata(feed.table),
        partitions_def=project.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=feed.description,
    )
    def ingest(
        context: dg.AssetExecutionContext, database: LiqheatDatabase
    ) -> dg.MaterializeResult:
        days = [date.fromisoformat(key) for key in context.partition_keys]
        reads = _read_days(settings, database, symbol, feed, days)
        rows = _table_rows(symbol, feed, reads)
        with database.transaction() as conn:
            replace_rows(
                conn,
                feed.table,
                rows,
                symbol=symbol,
                start=day_start(days[0]),
                end=day_end(days[-1]),
            )
        context.log.info(f"{symbol} {feed.table}: {len(rows):,} rows for {days[0]}…{days[-1]}")
        for read in reads:
            context.add_asset_metadata(
                _day_metadata(feed, read),
                partition_key=read.day.isoformat(),
            )
        return dg.MaterializeResult()

    return ingest


def _read_days(
    settings: Settings, database: LiqheatDatabase, symbol: str, feed: Feed, days: Sequence[date]
) -> list[DailyRead]:
    """Every day's file in order, each first row judged against the row just before it: the
    previous day's last row read here, for the first day the stored one."""
    previous = _stored_previous_row(database, symbol, feed, days[0])
    reads = []
    for day in days:
        read = _read_day(settings, symbol, feed, day, previous)
        reads.append(read)
        last = read.frame.iloc[-1]
        previous = PreviousRow(
            time=last[feed.time_column].to_pydatetime(),
            values={name: float(last[name]) for name in feed.judged_columns},
            where=f"the last row of {read.path.name}",
        )
    return reads


def _stored_previous_row(
    database: LiqheatDatabase, symbol: str, feed: Feed, day: date
) -> PreviousRow | None:
    """The stored row at the last instant the day before owns, if there is one."""
    moment = datetime.combine(day, datetime.min.time()) - (
        timedelta(0) if feed.owns_end else feed.step
    )
    columns = feed.judged_columns
    with database.read() as conn:
        row = conn.execute(
            f"SELECT {', '.join(columns)} FROM {feed.table} "
            f"WHERE symbol = ? AND {feed.time_column} = ?",
            [symbol, moment],
        ).fetchone()
    if row is None or None in row:
        return None
    return PreviousRow(
        time=moment,
        values=dict(zip(columns, row, strict=True)),
        where=f"the stored {feed.table} row at {moment:%Y-%m-%d %H:%M}",
    )


def _read_day(
    settings: Settings, symbol: str, feed: Feed, day: date, previous: PreviousRow | None
) -> DailyRead:
    path = find_daily_file(settings.data_dir, feed.dataset, symbol, day, CANDLE_INTERVAL)
    if path is None:
        expected = settings.data_dir / daily_relative_path(
            feed.dataset, symbol, day, CANDLE_INTERVAL
        )
        if not settings.download:
            raise dg.Failure(
                description=(
                    f"missing archive file {expected} (also looked for .csv.gz and .csv). "
                    "Put it there, or set LIQHEAT_DOWNLOAD=1 to fetch it from the archive."
                )
            )
        # Imported here: only download mode needs the network code.
        from liqheat_pipeline.lib.archive.download import ArchiveFetchError, fetch_daily_file

        try:
            path = fetch_daily_file(
                settings.data_dir,
                feed.dataset,
                symbol,
                day,
                interval=CANDLE_INTERVAL,
                base_url=settings.archive_url,
            )
        except ArchiveFetchError as error:
            raise dg.Failure(description=f"cannot fetch {expected}: {error}") from error
    try:
        if feed.dataset == METRICS:
            return read_metrics(path, day, limits=settings.plausibility, previous=previous)
        return read_klines(path, feed.step, day, limits=settings.plausibility, previous=previous)
    except ArchiveFormatError as error:
        raise dg.Failure(description=str(error)) from error


def _table_rows(symbol: str, feed: Feed, reads: Sequence[DailyRead]) -> pd.DataFrame:
    frames = [read.frame[list(feed.columns)] for read in reads if not read.frame.empty]
    if not frames:
        return pd.DataFrame(columns=["symbol", *feed.columns])
    rows = pd.concat(frames, ignore_index=True)
    rows.insert(0, "symbol", symbol)
    return rows


def _day_metadata(feed: Feed, read: DailyRead) -> dict[str, dg.MetadataValue]:
    """One day's figures: what its file held, what was written, what was missing."""
    rows = read.frame
    times = rows[feed.time_column]
    metadata: dict[str, dg.MetadataValue] = {
        **row_counts(feed.table, len(rows)),
        "source_file": dg.MetadataValue.path(str(read.path)),
        "first_time": dg.MetadataValue.text(_utc(times.min()) if len(rows) else "none"),
        "last_time": dg.MetadataValue.text(_utc(times.max()) if len(rows) else "none"),
        "rows_read": dg.MetadataValue.int(read.rows_read),
        "duplicates_dropped": dg.MetadataValue.int(read.duplicates_dropped),
        "expected_slots": dg.MetadataValue.int(read.expected_slots),
        "missing_slots": dg.MetadataValue.int(len(read.missing_slots)),
        "missing_slots_sample": dg.MetadataValue.text(
            sample_times(read.missing_slots, len(read.missing_slots))
        ),
        "preview": preview_rows(rows[list(feed.columns)]),
    }
    if isinstance(read, MetricsRead):
        metadata["snapped_timestamps"] = dg.MetadataValue.int(read.snapped_timestamps)
        metadata["label_convention"] = dg.MetadataValue.text(
            f"{read.label_convention} (from "
            + ("the content" if read.convention_from_content else "the switch date")
            + ")"
        )
    return metadata


def _utc(value: pd.Timestamp) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"
