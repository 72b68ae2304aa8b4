"""Raw-data assets: one daily-partitioned table feed per symbol and archive dataset.

Each run reads every day's archive file of its partition range, then replaces the range's rows in
one transaction: a bad or missing file fails the run and leaves the table as it was. The readers
enforce what can be decided from the file before anything is written (rows present, low <= open,
close <= high, positive values, the plausibility limits of the settings); the blocking asset
checks audit the stored rows independently.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd

from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib.archive.layout import (
    KLINES,
    MARK_PRICE_KLINES,
    METRICS,
    daily_relative_path,
    dataset_directory,
    find_daily_file,
    has_dataset,
    interval_duration,
)
from liqheat_pipeline.lib.archive.readers import (
    KLINE_FRAME_COLUMNS,
    METRICS_FRAME_COLUMNS,
    METRICS_INTERVAL,
    ArchiveFormatError,
    DailyRead,
    MetricsRead,
    PreviousRow,
    read_klines,
    read_metrics,
)
from liqheat_pipeline.lib.warehouse import replace_rows
from liqheat_pipeline.partitions import daily_partitions
from liqheat_pipeline.settings import Settings, load_settings

CANDLE_INTERVAL = "5m"
SAMPLE_SIZE = 12
_PREVIEW_ROWS = 3


@dataclass(frozen=True)
class Feed:
    """One contract table filled from one archive dataset."""

    table: str
    dataset: str
    time_column: str
    columns: tuple[str, ...]
    step: timedelta
    # open_interest partition D owns (D, D+1]: what metrics file D holds in both label conventions.
    include_end: bool
    description: str


CANDLES = Feed(
    table="candles",
    dataset=KLINES,
    time_column="open_time",
    columns=KLINE_FRAME_COLUMNS,
    step=interval_duration(CANDLE_INTERVAL),
    include_end=False,
    description="Last-price 5-minute candles from the archive's daily klines files.",
)
OPEN_INTEREST = Feed(
    table="open_interest",
    dataset=METRICS,
    time_column="ts",
    columns=METRICS_FRAME_COLUMNS,
    step=METRICS_INTERVAL,
    include_end=True,
    description=(
        "Open-interest snapshots (base units and USDT) from the archive's daily metrics files, "
        "each at its snapshot instant; partition D holds (D 00:00, D+1 00:00]."
    ),
)
MARK_PRICE_CANDLES = Feed(
    table="mark_price_candles",
    dataset=MARK_PRICE_KLINES,
    time_column="open_time",
    columns=("open_time", "open", "high", "low", "close"),
    step=interval_duration(CANDLE_INTERVAL),
    include_end=False,
    description="Mark-price 5-minute candles (what Binance liquidates on) from markPriceKlines.",
)


def symbol_feeds(settings: Settings, symbol: str) -> tuple[Feed, ...]:
    """The feeds of one symbol; mark-price candles only if the mirror has that folder now."""
    if has_dataset(settings.data_dir, MARK_PRICE_KLINES, symbol, CANDLE_INTERVAL):
        return (CANDLES, OPEN_INTEREST, MARK_PRICE_CANDLES)
    return (CANDLES, OPEN_INTEREST)


def feed_key(symbol: str, feed: Feed) -> dg.AssetKey:
    return dg.AssetKey([symbol.lower(), feed.table])


def naive_utc_window(window: dg.TimeWindow) -> tuple[datetime, datetime]:
    """A partition window as naive UTC datetimes, the form every TIMESTAMP column holds.

    Binding tz-aware datetimes would make DuckDB compare in the session's (host's) time zone.
    """
    return (
        window.start.astimezone(UTC).replace(tzinfo=None),
        window.end.astimezone(UTC).replace(tzinfo=None),
    )


def build_ingest_assets(settings: Settings) -> list[dg.AssetsDefinition]:
    partitions = daily_partitions(settings)
    return [
        _feed_asset(settings, symbol, feed, partitions)
        for symbol in settings.symbols
        for feed in symbol_feeds(settings, symbol)
    ]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=build_ingest_assets(load_settings()))


def _feed_asset(
    settings: Settings, symbol: str, feed: Feed, partitions: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    @dg.asset(
        key=feed_key(symbol, feed),
        group_name=symbol.lower(),
        kinds={"duckdb"},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=feed.description,
    )
    def ingest(
        context: dg.AssetExecutionContext, database: LiqheatDatabase
    ) -> dg.MaterializeResult:
        start, end = naive_utc_window(context.partition_time_window)
        days = [start.date() + timedelta(days=i) for i in range((end - start).days)]
        reads = _read_days(settings, database, symbol, feed, days)
        rows = _table_rows(symbol, feed, reads)
        with database.transaction() as conn:
            replace_rows(
                conn,
                feed.table,
                rows,
                symbol=symbol,
                time_column=feed.time_column,
                start=start,
                end=end,
                include_end=feed.include_end,
            )
            (total,) = conn.execute(
                f"SELECT count(*) FROM {feed.table} WHERE symbol = ?", [symbol]
            ).fetchone()
        context.log.info(f"{symbol} {feed.table}: {len(rows)} rows for {days[0]}…{days[-1]}")
        return dg.MaterializeResult(metadata=_metadata(settings, symbol, feed, reads, rows, total))

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
            values={name: float(last[name]) for name in _judged_columns(feed)},
            where=f"the last row of {read.path.name}",
        )
    return reads


def _judged_columns(feed: Feed) -> tuple[str, ...]:
    """The columns a day's first row is compared on with the row before it."""
    return ("open_interest", "open_interest_value") if feed.dataset == METRICS else ("close",)


def _stored_previous_row(
    database: LiqheatDatabase, symbol: str, feed: Feed, day: date
) -> PreviousRow | None:
    """The stored row at the last instant the day before owns, if there is one."""
    moment = datetime.combine(day, datetime.min.time()) - (
        timedelta(0) if feed.include_end else feed.step
    )
    columns = _judged_columns(feed)
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


def _metadata(
    settings: Settings,
    symbol: str,
    feed: Feed,
    reads: Sequence[DailyRead],
    rows: pd.DataFrame,
    total: int,
) -> dict[str, dg.MetadataValue]:
    missing = [slot for read in reads for slot in read.missing_slots]
    times = rows[feed.time_column]
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/table_name": dg.MetadataValue.text(feed.table),
        "dagster/row_count": dg.MetadataValue.int(int(total)),
        "rows_written": dg.MetadataValue.int(len(rows)),
        "rows_per_day": dg.MetadataValue.json(
            {read.day.isoformat(): read.present_slots for read in reads}
        ),
        "first_time": dg.MetadataValue.text(_utc(times.min()) if len(rows) else "none"),
        "last_time": dg.MetadataValue.text(_utc(times.max()) if len(rows) else "none"),
        "rows_read": dg.MetadataValue.int(sum(read.rows_read for read in reads)),
        "duplicates_dropped": dg.MetadataValue.int(sum(read.duplicates_dropped for read in reads)),
        "expected_slots": dg.MetadataValue.int(sum(read.expected_slots for read in reads)),
        "missing_slots": dg.MetadataValue.int(len(missing)),
        "missing_slots_sample": dg.MetadataValue.text(sample_times(missing, len(missing))),
        "source_dir": dg.MetadataValue.path(
            str(settings.data_dir / dataset_directory(feed.dataset, symbol, CANDLE_INTERVAL))
        ),
        "preview": dg.MetadataValue.md(_markdown_preview(rows)),
    }
    if len(reads) == 1:
        metadata["dagster/partition_row_count"] = dg.MetadataValue.int(len(rows))
    metrics = [read for read in reads if isinstance(read, MetricsRead)]
    if metrics:
        metadata["snapped_timestamps"] = dg.MetadataValue.int(
            sum(read.snapped_timestamps for read in metrics)
        )
        metadata["label_convention"] = dg.MetadataValue.text(_conventions(metrics))
    return metadata


def _conventions(reads: Sequence[MetricsRead]) -> str:
    """Per convention seen: how many days were decided from content and how many by date."""
    parts = []
    for convention in sorted({read.label_convention for read in reads}):
        same = [read for read in reads if read.label_convention == convention]
        by_content = sum(read.convention_from_content for read in same)
        parts.append(
            f"{convention} (days detected from content: {by_content}, "
            f"by the switch date: {len(same) - by_content})"
        )
    return "; ".join(parts)


def sample_times(times: Sequence[datetime], total: int) -> str:
    """The first few of ``total`` instants as text, e.g. for a list of gaps."""
    if not total:
        return "none"
    shown = ", ".join(f"{t:%Y-%m-%d %H:%M}" for t in times[:SAMPLE_SIZE])
    more = total - min(len(times), SAMPLE_SIZE)
    return f"{shown} (+{more} more)" if more > 0 else shown


def markdown_table(columns: Sequence[str], records: Sequence[Sequence[object]]) -> str:
    """A markdown table; missing values are empty cells and a ``None`` record is an ellipsis row."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for record in records:
        cells = ("…" for _ in columns) if record is None else (_cell(value) for value in record)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    return "" if pd.isna(value) else str(value)


def _utc(value: pd.Timestamp) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def _markdown_preview(rows: pd.DataFrame) -> str:
    """The first and last few rows."""
    if rows.empty:
        return "_no rows_"
    records: list = list(rows.head(_PREVIEW_ROWS).itertuples(index=False))
    if len(rows) > 2 * _PREVIEW_ROWS:
        records += [None, *rows.tail(_PREVIEW_ROWS).itertuples(index=False)]
    elif len(rows) > _PREVIEW_ROWS:
        records += list(rows.iloc[_PREVIEW_ROWS:].itertuples(index=False))
    return markdown_table(list(rows.columns), records)
