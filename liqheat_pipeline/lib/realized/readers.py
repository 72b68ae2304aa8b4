"""Strict readers for observed (realized) liquidation totals per time bucket.

Two sources, one frame (:data:`REALIZED_COLUMNS`, ``bucket_start`` as naive UTC
``datetime64[ns]``, sorted):

* CoinGlass aggregate exports ``<liquidations_dir>/coinglass/<BASE>/*.csv``
  (``timestamp,datetime_utc,longUsd,shortUsd,totalUsd``, one row per bucket, ``timestamp`` the
  bucket start in epoch ms); the bucket length is read from the file;
* Binance's archive ``liquidationSnapshot`` daily files in the archive mirror (one row per
  liquidation order), summed into 60-minute buckets.

A bucket the source lacks stays absent, never 0. Identical duplicate rows are dropped and counted;
anything else that is wrong raises :class:`ArchiveFormatError` naming the file, line and problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from liqheat_pipeline.lib.archive.layout import (
    LIQUIDATION_SNAPSHOT,
    find_daily_file,
    interval_duration,
    parse_daily_file_name,
)
from liqheat_pipeline.lib.archive.readers import (
    ArchiveFormatError,
    Table,
    day_from_name,
    file_bytes,
    format_instant,
    read_table,
    sorted_without_duplicates,
    to_ns,
)

REALIZED_COLUMNS = ("bucket_start", "bucket_minutes", "long_usd", "short_usd", "source", "scope")
COINGLASS_COLUMNS = ("timestamp", "datetime_utc", "longUsd", "shortUsd", "totalUsd")
LIQUIDATION_SNAPSHOT_COLUMNS = (
    "time",
    "side",
    "order_type",
    "time_in_force",
    "original_quantity",
    "price",
    "average_price",
    "order_status",
    "last_fill_quantity",
    "accumulated_fill_quantity",
)
# Quote assets a USDⓈ-M symbol may end with; what precedes it is the base CoinGlass groups by.
QUOTE_SUFFIXES = ("USDT", "USDC", "FDUSD", "BUSD")
SNAPSHOT_BUCKET = timedelta(hours=1)
# The export rounds longUsd, shortUsd and totalUsd separately; beyond this it is not rounding.
TOTAL_RELATIVE_TOLERANCE = 1e-9
TOTAL_ABSOLUTE_TOLERANCE_USD = 1e-6
# A liquidated long is a forced sell, a liquidated short a forced buy.
LONG_SIDE, SHORT_SIDE = "SELL", "BUY"
# An interval token in an export's name, e.g. the 1h of BTC-aggregated-1h-2025-11-23_….csv.
_NAMED_INTERVAL = re.compile(r"(?:^|[-_])(\d+[mhd])(?=[-_.])")
_MS_NS = 1_000_000
_MINUTE_NS = 60 * 1_000_000_000
_DAY = timedelta(days=1)
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RealizedRead:
    """Realized buckets from one or more files, with what reading had to do to them."""

    frame: pd.DataFrame
    rows_read: int
    duplicates_dropped: int
    # Slots of the rows' bucket grid, inside the span read, that no row covers.
    missing_buckets: tuple[datetime, ...]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(sorted(self.frame["source"].unique()))

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(sorted(self.frame["scope"].unique()))


def base_asset(symbol: str) -> str:
    """``BTCUSDT`` → ``BTC``: the symbol without its quote suffix (USDT, USDC, FDUSD, BUSD)."""
    for quote in QUOTE_SUFFIXES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol.removesuffix(quote)
    raise ValueError(
        f"symbol={symbol!r}: cannot tell its base asset (it ends with none of "
        f"{', '.join(QUOTE_SUFFIXES)})"
    )


def coinglass_scope(base: str) -> str:
    return f"{base} all contracts; Binance+Bybit+OKX (CoinGlass aggregate)"


def snapshot_scope(symbol: str) -> str:
    return f"{symbol} only; Binance USDⓈ-M (archive liquidationSnapshot)"


def coinglass_directory(liquidations_dir: str | Path, symbol: str) -> Path:
    return Path(liquidations_dir) / "coinglass" / base_asset(symbol)


def read_realized(
    liquidations_dir: str | Path,
    data_dir: str | Path,
    symbol: str,
    start: datetime,
    end: datetime,
) -> RealizedRead:
    """The realized buckets of ``symbol`` whose bucket_start lies in [start, end) (naive UTC).

    Precedence, per UTC day: Binance's own archive file for the day
    (``liquidationSnapshot`` in the ``data_dir`` mirror; this symbol only) when it exists,
    otherwise the CoinGlass exports of the symbol's base asset. A CoinGlass bucket is used only if
    it lies wholly in days without an archive file, so no bucket is counted twice. Every CoinGlass
    file of the folder is read and checked (identical rows across files are dropped, conflicting
    ones are an error). A day with neither source has no rows; that is not an error.
    """
    archive_days, archive_reads = [], []
    day_start = datetime.combine(start.date(), datetime.min.time())
    while day_start < end:
        path = find_daily_file(data_dir, LIQUIDATION_SNAPSHOT, symbol, day_start.date())
        if path is not None:
            archive_days.append(day_start)
            archive_reads.append(read_liquidation_snapshot(path, symbol, day_start.date()))
        day_start += _DAY
    coinglass = read_coinglass_directory(coinglass_directory(liquidations_dir, symbol))

    rows = coinglass.frame
    bucket_start = rows["bucket_start"]
    bucket_end = bucket_start + pd.to_timedelta(rows["bucket_minutes"], unit="min")
    keep = (bucket_start >= start) & (bucket_start < end)
    for archive_day in archive_days:
        keep &= (bucket_start >= archive_day + _DAY) | (bucket_end <= archive_day)
    frame = _sorted_frame([*(read.frame for read in archive_reads), rows[keep]])
    frame = frame[(frame["bucket_start"] >= start) & (frame["bucket_start"] < end)]
    return RealizedRead(
        frame=frame.reset_index(drop=True),
        rows_read=coinglass.rows_read + sum(read.rows_read for read in archive_reads),
        duplicates_dropped=coinglass.duplicates_dropped
        + sum(read.duplicates_dropped for read in archive_reads),
        missing_buckets=uncovered_slots(frame, start, end),
    )


def read_coinglass_directory(directory: str | Path) -> RealizedRead:
    """Every ``*.csv`` export of one base asset's folder, merged; an absent folder holds nothing.

    All files must share one bucket length. A bucket in several files must have the same values
    in each (then it is kept once, from the first file by name, and counted as a duplicate).
    """
    directory = Path(directory)
    paths = sorted(directory.glob("*.csv")) if directory.is_dir() else []
    reads = [read_coinglass_file(path, directory.name) for path in paths]
    if not reads:
        return RealizedRead(_sorted_frame([]), 0, 0, ())
    for path, read in zip(paths[1:], reads[1:], strict=True):
        minutes, first_minutes = (
            read.frame["bucket_minutes"][0],
            reads[0].frame["bucket_minutes"][0],
        )
        if minutes != first_minutes:
            raise ArchiveFormatError(
                path,
                f"{minutes}-minute buckets while {paths[0].name} has {first_minutes}-minute ones; "
                "the exports of one asset must share one bucket length",
            )
    rows = _sorted_frame([read.frame for read in reads])
    repeat = rows["bucket_start"].duplicated().to_numpy()
    first = rows[~repeat].set_index("bucket_start").loc[rows["bucket_start"][repeat]]
    again = rows[repeat]
    conflict = np.flatnonzero(
        (again["long_usd"].to_numpy() != first["long_usd"].to_numpy())
        | (again["short_usd"].to_numpy() != first["short_usd"].to_numpy())
    )
    if conflict.size:
        row, earlier = again.iloc[conflict[0]], first.iloc[conflict[0]]
        raise ArchiveFormatError(
            directory / row["source"],
            f"conflicting rows for timestamp {row['bucket_start']} in {earlier['source']} "
            f"(longUsd {float(earlier['long_usd'])!r}, shortUsd {float(earlier['short_usd'])!r}) "
            f"and this file (longUsd {float(row['long_usd'])!r}, "
            f"shortUsd {float(row['short_usd'])!r})",
        )
    kept = rows[~repeat].reset_index(drop=True)
    return RealizedRead(
        frame=kept,
        rows_read=sum(read.rows_read for read in reads),
        duplicates_dropped=sum(read.duplicates_dropped for read in reads) + int(repeat.sum()),
        missing_buckets=_file_span_gaps(kept),
    )


def read_coinglass_file(path: str | Path, base: str) -> RealizedRead:
    """One CoinGlass export of the ``base`` asset (e.g. BTC); ``source`` is the file name.

    The bucket length is the interval in the file name when it has one (``BTC-aggregated-1h-…``),
    else the file's most common step between consecutive buckets (the shorter on a tie). Every
    step must be a whole multiple of it (a gap); anything else is an error.
    """
    path = Path(path)
    _require_header(path, COINGLASS_COLUMNS)
    table = read_table(path, COINGLASS_COLUMNS, COINGLASS_COLUMNS, allow_no_rows=True)
    if not table.rows:
        raise ArchiveFormatError(path, "no data rows after the header", 1)
    start_ns = table.integers("timestamp") * _MS_NS
    _require_stated_times(table, start_ns)
    long_usd = table.numbers("longUsd", nonnegative=True)
    short_usd = table.numbers("shortUsd", nonnegative=True)
    total_usd = table.numbers("totalUsd", nonnegative=True)
    table.require(
        np.isclose(
            total_usd,
            long_usd + short_usd,
            rtol=TOTAL_RELATIVE_TOLERANCE,
            atol=TOTAL_ABSOLUTE_TOLERANCE_USD,
        ),
        lambda i: (
            f"totalUsd {float(total_usd[i])!r} is not longUsd + shortUsd = "
            f"{float(long_usd[i] + short_usd[i])!r}"
        ),
    )
    bucket_ns = _bucket_length(table, start_ns)
    rows = sorted_without_duplicates(
        table,
        {"timestamp": start_ns, "long_usd": long_usd, "short_usd": short_usd},
        "timestamp",
    )
    columns, dropped = rows.columns, rows.dropped
    frame = _frame(
        columns["timestamp"],
        bucket_ns // _MINUTE_NS,
        columns["long_usd"],
        columns["short_usd"],
        source=path.name,
        scope=coinglass_scope(base),
    )
    return RealizedRead(
        frame=frame,
        rows_read=table.rows,
        duplicates_dropped=dropped,
        missing_buckets=_file_span_gaps(frame),
    )


def read_liquidation_snapshot(
    path: str | Path, symbol: str, day: date | None = None
) -> RealizedRead:
    """One archive ``liquidationSnapshot`` day of ``symbol`` as its 24 hourly buckets.

    A day with a file covers all its hours (an hour without orders is 0, not missing; so is a
    file with a header and no orders). USD per order = accumulated_fill_quantity × average_price;
    ``SELL`` orders are liquidated longs, ``BUY`` orders liquidated shorts. ``day`` defaults to
    the date in the file name. Orders identical in every column are dropped and counted.
    """
    path = Path(path)
    day = day or day_from_name(path)
    named = parse_daily_file_name(path.name)
    if named and named[0] != symbol:
        raise ArchiveFormatError(path, f"a file named for {named[0]}, read as {symbol}")
    table = read_table(
        path,
        LIQUIDATION_SNAPSHOT_COLUMNS,
        ("time", "side", "average_price", "accumulated_fill_quantity"),
        allow_no_rows=True,
    )
    start_ns, bucket_ns = to_ns(datetime.combine(day, datetime.min.time())), to_ns(SNAPSHOT_BUCKET)
    time_ns = table.integers("time") * _MS_NS
    table.require(
        (time_ns >= start_ns) & (time_ns < start_ns + to_ns(_DAY)),
        lambda i: f"time {format_instant(time_ns[i])} is outside the file's day {day}",
    )
    table.require(~table.is_empty("side"), lambda i: "side is empty")
    sides = table.column("side")
    table.require(
        np.isin(sides, (LONG_SIDE, SHORT_SIDE)),
        lambda i: (
            f"side {sides[i]!r} is neither {LONG_SIDE} (a long liquidated) nor "
            f"{SHORT_SIDE} (a short liquidated)"
        ),
    )
    usd = table.numbers("average_price", nonnegative=True) * table.numbers(
        "accumulated_fill_quantity", nonnegative=True
    )
    present = [name for name in LIQUIDATION_SNAPSHOT_COLUMNS if table.column(name) is not None]
    kept = ~pd.DataFrame({name: table.column(name) for name in present}).duplicated().to_numpy()
    buckets = to_ns(_DAY) // bucket_ns
    hour = (time_ns[kept] - start_ns) // bucket_ns
    long_usd, short_usd = (
        np.bincount(hour, weights=np.where(sides[kept] == side, usd[kept], 0.0), minlength=buckets)
        for side in (LONG_SIDE, SHORT_SIDE)
    )
    frame = _frame(
        start_ns + bucket_ns * np.arange(buckets),
        bucket_ns // _MINUTE_NS,
        long_usd,
        short_usd,
        source=path.name,
        scope=snapshot_scope(symbol),
    )
    return RealizedRead(
        frame=frame,
        rows_read=table.rows,
        duplicates_dropped=int(np.count_nonzero(~kept)),
        missing_buckets=(),
    )


def uncovered_slots(frame: pd.DataFrame, start: datetime, end: datetime) -> tuple[datetime, ...]:
    """Slots in [start, end) of the rows' grid (their shortest bucket, aligned on the first row)
    that no row's [bucket_start, bucket_start + bucket_minutes) covers; none without rows."""
    if frame.empty:
        return ()
    starts = frame["bucket_start"].to_numpy("datetime64[ns]").view(np.int64)
    ends = starts + frame["bucket_minutes"].to_numpy(np.int64) * _MINUTE_NS
    step = int(frame["bucket_minutes"].min()) * _MINUTE_NS
    low, high = to_ns(start), to_ns(end)
    first = int(starts[0]) - (int(starts[0]) - low) // step * step
    slots = np.arange(first, high, step, dtype=np.int64)
    row = np.searchsorted(starts, slots, side="right") - 1
    covered = (row >= 0) & (slots < ends[np.maximum(row, 0)])
    return tuple(pd.Timestamp(int(ns)).to_pydatetime() for ns in slots[~covered])


def _file_span_gaps(frame: pd.DataFrame) -> tuple[datetime, ...]:
    """The buckets missing between a file's first and last bucket."""
    if frame.empty:
        return ()
    last = frame.iloc[-1]
    return uncovered_slots(
        frame,
        frame["bucket_start"].iloc[0],
        last["bucket_start"] + timedelta(minutes=int(last["bucket_minutes"])),
    )


def _require_header(path: Path, expected: tuple[str, ...]) -> None:
    """Exports always carry their header; a missing or different one is not the same format."""
    data = file_bytes(path).removeprefix(_BOM)
    if not data.strip():
        raise ArchiveFormatError(path, "the file is empty")
    first_line = data.lstrip().split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if [name.strip() for name in first_line.split(",")] != list(expected):
        raise ArchiveFormatError(path, f"header {first_line!r}, expected {','.join(expected)}", 1)


def _require_stated_times(table: Table, start_ns: np.ndarray) -> None:
    """datetime_utc repeats timestamp in ISO 8601; a disagreement means a corrupted row."""
    table.require(~table.is_empty("datetime_utc"), lambda i: "datetime_utc is empty")
    text = [str(value) for value in table.column("datetime_utc")]
    stated = pd.to_datetime(pd.Series(text), format="ISO8601", utc=True, errors="coerce")
    table.require(
        stated.notna().to_numpy(),
        lambda i: f"datetime_utc {text[i]!r} is not an ISO 8601 time",
    )
    stated_ns = stated.dt.tz_convert(None).to_numpy("datetime64[ns]").view(np.int64)
    table.require(
        stated_ns == start_ns,
        lambda i: (
            f"datetime_utc {text[i]!r} disagrees with timestamp {start_ns[i] // _MS_NS} "
            f"({format_instant(start_ns[i])} UTC)"
        ),
    )


def _bucket_length(table: Table, start_ns: np.ndarray) -> int:
    """The file's bucket length in ns (see read_coinglass_file); repeated rows are left for the
    duplicate rule."""
    order = np.lexsort((table.lines, start_ns))
    ordered = start_ns[order]
    steps = np.diff(ordered)
    named = _NAMED_INTERVAL.search(table.path.name)
    if named:
        bucket_ns, origin = to_ns(interval_duration(named.group(1))), "named in the file name"
    else:
        positive = steps[steps > 0]
        if not positive.size:
            raise ArchiveFormatError(
                table.path,
                "a single bucket and no interval in the file name (such as -1h-): "
                "cannot tell the bucket length",
            )
        lengths, counts = np.unique(positive, return_counts=True)
        bucket_ns, origin = int(lengths[np.argmax(counts)]), "its most common step"
    off_grid = np.flatnonzero(steps % bucket_ns != 0)
    if off_grid.size:
        i = int(off_grid[0])
        raise table.fail(
            int(order[i + 1]),
            f"timestamp {format_instant(ordered[i + 1])} is {_minutes(steps[i])} after the bucket "
            f"{format_instant(ordered[i])}, off the file's {_minutes(bucket_ns)} grid ({origin}; "
            "the bucket length must be constant, a gap is a whole multiple of it)",
        )
    if bucket_ns % _MINUTE_NS:
        raise ArchiveFormatError(
            table.path, f"{bucket_ns / 1e9:g} s buckets are not a whole number of minutes"
        )
    return bucket_ns


def _frame(
    start_ns: np.ndarray,
    bucket_minutes: int,
    long_usd: np.ndarray,
    short_usd: np.ndarray,
    *,
    source: str,
    scope: str,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bucket_start": np.asarray(start_ns, dtype=np.int64).view("datetime64[ns]"),
            "bucket_minutes": np.full(len(start_ns), bucket_minutes, dtype=np.int32),
            "long_usd": np.asarray(long_usd, dtype=np.float64),
            "short_usd": np.asarray(short_usd, dtype=np.float64),
            "source": source,
            "scope": scope,
        },
        columns=list(REALIZED_COLUMNS),
    )


def _sorted_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames in REALIZED_COLUMNS concatenated and stably sorted by bucket_start."""
    empty = _frame(np.empty(0, dtype=np.int64), 0, [], [], source="", scope="")
    rows = pd.concat([empty, *frames], ignore_index=True)
    return rows.sort_values("bucket_start", kind="stable", ignore_index=True)


def _minutes(ns: int) -> str:
    return f"{ns / _MINUTE_NS:g} minutes"
