"""Strict readers for one daily Binance archive file (klines, markPriceKlines, metrics).

Each reader returns the day's rows with the SQL contract's column names, times as naive UTC
``datetime64[ns]``, sorted, identical duplicate rows dropped (and counted) and missing slots
counted but never filled in. Anything else that is wrong raises :class:`ArchiveFormatError`
naming the file, the line (1-based, as in the file) and the problem: a file without data rows,
an impossible candle (low above open, close or high), and values beyond
:class:`~liqheat_pipeline.lib.archive.plausibility.PlausibilityLimits` among them.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from liqheat_pipeline.lib.archive.layout import parse_daily_file_name
from liqheat_pipeline.lib.archive.plausibility import DEFAULT_LIMITS, PlausibilityLimits

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
METRICS_COLUMNS = (
    "create_time",
    "symbol",
    "sum_open_interest",
    "sum_open_interest_value",
    "count_toptrader_long_short_ratio",
    "sum_toptrader_long_short_ratio",
    "count_long_short_ratio",
    "sum_taker_long_short_vol_ratio",
)
# The readers' frames: the SQL contract's column names and order.
KLINE_FRAME_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
)
METRICS_FRAME_COLUMNS = ("ts", "open_interest", "open_interest_value")
_KLINE_PRICES = ("open", "high", "low", "close")
_KLINE_VOLUMES = ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")
_METRICS_VALUES = {
    "sum_open_interest": "open_interest",
    "sum_open_interest_value": "open_interest_value",
}

METRICS_INTERVAL = timedelta(minutes=5)
# Real metrics files carry create_time values a few seconds late; farther off is not a glitch.
SNAP_TOLERANCE = timedelta(seconds=30)
# First archive day whose metrics labels are the start of the 5-minute slot (see read_metrics).
LABEL_SWITCH_DAY = date(2026, 6, 25)
LABEL_AT_SNAPSHOT = "create_time is the snapshot instant"
LABEL_BEFORE_SNAPSHOT = "create_time + 5m is the snapshot instant"
# Epoch values at or above this are microseconds (spot since 2025); below it, milliseconds.
_MICROSECOND_EPOCH_FLOOR = 10**15
_DAY = timedelta(days=1)


class ArchiveFormatError(ValueError):
    """A daily archive file cannot be read as-is; the message names the file, line and problem."""

    def __init__(self, path: Path, problem: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class DailyRead:
    """One day's rows from one file, with what the reader had to do to them."""

    path: Path
    day: date
    frame: pd.DataFrame
    rows_read: int
    duplicates_dropped: int
    expected_slots: int
    missing_slots: tuple[datetime, ...]

    @property
    def present_slots(self) -> int:
        return len(self.frame)


@dataclass(frozen=True)
class PreviousRow:
    """The row just before a file's day (the day before's last), so that the file's first row is
    judged against it like every other row against its predecessor."""

    time: datetime
    # "close" for klines; "open_interest" and "open_interest_value" for metrics.
    values: Mapping[str, float]
    # Where the row comes from, for error messages (e.g. "the stored row at 2025-12-01 23:55").
    where: str


@dataclass(frozen=True)
class MetricsRead(DailyRead):
    snapped_timestamps: int
    label_convention: str
    convention_from_content: bool


def read_klines(
    path: str | Path,
    interval: timedelta = timedelta(minutes=5),
    day: date | None = None,
    *,
    limits: PlausibilityLimits = DEFAULT_LIMITS,
    previous: PreviousRow | None = None,
) -> DailyRead:
    """Read a daily klines or markPriceKlines file; ``day`` defaults to the date in its name.

    Columns: open_time, open, high, low, close, volume, quote_volume, trades, taker_buy_volume,
    taker_buy_quote_volume. Volume-type columns may be empty in the file (NaN / <NA> here).
    Epochs are milliseconds, or microseconds when at least 1e15 (the first row decides for the
    file; a file mixing both is an error). Every candle must have low <= open, close <= high and
    stay within ``limits`` (values, and its span around the previous close: ``previous`` holds
    the close of the candle before the day's first, if known).
    """
    path = Path(path)
    day = day or day_from_name(path)
    table = read_table(path, KLINE_COLUMNS, ("open_time", *_KLINE_PRICES))
    start_ns, step_ns = to_ns(datetime.combine(day, datetime.min.time())), to_ns(interval)

    epochs = table.integers("open_time")
    unit_ns = _epoch_unit_ns(table, epochs)
    open_ns = epochs * unit_ns
    table.require(
        (open_ns >= start_ns) & (open_ns < start_ns + to_ns(_DAY)),
        lambda i: f"open_time {format_instant(open_ns[i])} is outside the file's day {day}",
    )
    table.require(
        (open_ns - start_ns) % step_ns == 0,
        lambda i: f"open_time {format_instant(open_ns[i])} is not on the {_span(interval)} grid",
    )
    close_epochs = table.integers("close_time", required=False)
    expected_close = epochs + step_ns // unit_ns - 1
    table.require(
        table.is_empty("close_time") | (close_epochs == expected_close),
        lambda i: (
            f"close_time {close_epochs[i]} does not close the {_span(interval)} candle opened "
            f"at {epochs[i]} (expected {expected_close[i]}); is the interval right?"
        ),
    )

    columns = {"open_time": open_ns}
    columns.update(
        {name: table.numbers(name, positive=True, limits=limits) for name in _KLINE_PRICES}
    )
    columns.update(
        {
            name: table.numbers(name, required=False, nonnegative=True, limits=limits)
            for name in _KLINE_VOLUMES
        }
    )
    trades = table.integers("count", required=False).astype(np.float64)
    columns["trades"] = np.where(table.is_empty("count"), np.nan, trades)
    _require_ohlc_order(table, columns)
    sorted_rows = sorted_without_duplicates(table, columns, "open_time")
    _require_candle_range(table, sorted_rows, step_ns, limits, previous)
    grid = start_ns + step_ns * np.arange(to_ns(_DAY) // step_ns)
    frame, dropped, missing = _day_frame(sorted_rows, "open_time", grid, KLINE_FRAME_COLUMNS)
    frame["trades"] = frame["trades"].astype("Int64")
    return DailyRead(
        path=path,
        day=day,
        frame=frame,
        rows_read=table.rows,
        duplicates_dropped=dropped,
        expected_slots=len(grid),
        missing_slots=missing,
    )


def read_metrics(
    path: str | Path,
    day: date | None = None,
    *,
    limits: PlausibilityLimits = DEFAULT_LIMITS,
    previous: PreviousRow | None = None,
) -> MetricsRead:
    """Read a daily metrics file into snapshot instants ``ts`` with open_interest (base units)
    and open_interest_value (USDT); ``day`` defaults to the date in the file name.

    The archive changed what ``create_time`` means on 2026-06-25:

    * before, file D is labelled 00:05 … 00:00 of D+1 and each label *is* the snapshot instant;
    * from then on, file D is labelled 00:00 … 23:55 and the snapshot is taken at label + 5 min.

    Either way file D holds the snapshots in (D 00:00, D+1 00:00]; every row is normalised to its
    snapshot instant. The convention is read from the content: a D 00:00 label exists only in the
    later convention, a D+1 00:00 label only in the earlier one (a file with both is an error).
    A file with neither boundary row (a partial day) falls back to the switch date.
    Labels within 30 s of the 5-minute grid are snapped to it and counted; farther off is an error.
    Values must stay within ``limits``, and so must their change between consecutive snapshots
    (``previous`` holds the snapshot at D 00:00, if known, for the first).
    """
    path = Path(path)
    day = day or day_from_name(path)
    table = read_table(path, METRICS_COLUMNS, ("create_time", *_METRICS_VALUES))
    start_ns, step_ns = to_ns(datetime.combine(day, datetime.min.time())), to_ns(METRICS_INTERVAL)
    end_ns = start_ns + to_ns(_DAY)

    named = parse_daily_file_name(path.name)
    symbols = table.column("symbol")
    if named and symbols is not None:
        table.require(
            table.is_empty("symbol") | (symbols == named[0]),
            lambda i: f"symbol {symbols[i]!r} in a file named for {named[0]}",
        )

    text = table.column("create_time")
    labels = pd.to_datetime(pd.Series(text), format="%Y-%m-%d %H:%M:%S", errors="coerce")
    table.require(
        labels.notna().to_numpy(),
        lambda i: f"create_time {text[i]!r} is not a UTC time 'YYYY-MM-DD HH:MM:SS'",
    )
    label_ns = labels.to_numpy("datetime64[ns]").view(np.int64)
    remainder = (label_ns - start_ns) % step_ns
    offset = np.where(remainder <= step_ns // 2, remainder, remainder - step_ns)
    table.require(
        np.abs(offset) <= to_ns(SNAP_TOLERANCE),
        lambda i: (
            f"create_time {format_instant(label_ns[i])} is {offset[i] / 1e9:+.0f} s off the "
            f"5-minute grid (more than the {SNAP_TOLERANCE.seconds} s snapping tolerance)"
        ),
    )
    snapped = label_ns - offset

    convention, from_content = _label_convention(table, snapped, start_ns, end_ns, day)
    ts_ns = snapped + (step_ns if convention == LABEL_BEFORE_SNAPSHOT else 0)
    table.require(
        (ts_ns > start_ns) & (ts_ns <= end_ns),
        lambda i: (
            f"create_time {format_instant(label_ns[i])} is outside the file's day: with labels "
            f"where {convention}, file {day} holds snapshots in ({day} 00:00, {day + _DAY} 00:00]"
        ),
    )

    columns = {"ts": ts_ns}
    columns.update(
        {
            name: table.numbers(source, positive=True, limits=limits)
            for source, name in _METRICS_VALUES.items()
        }
    )
    sorted_rows = sorted_without_duplicates(table, columns, "ts")
    _require_open_interest_steps(table, sorted_rows, step_ns, limits, previous)
    grid = start_ns + step_ns * np.arange(1, to_ns(_DAY) // step_ns + 1)
    frame, dropped, missing = _day_frame(sorted_rows, "ts", grid, METRICS_FRAME_COLUMNS)
    return MetricsRead(
        path=path,
        day=day,
        frame=frame,
        rows_read=table.rows,
        duplicates_dropped=dropped,
        expected_slots=len(grid),
        missing_slots=missing,
        snapped_timestamps=int(np.count_nonzero(offset)),
        label_convention=convention,
        convention_from_content=from_content,
    )


class Table:
    """The file's data rows as numpy columns, each row with its line number, plus validation."""

    def __init__(self, path: Path, raw: pd.DataFrame, lines: np.ndarray) -> None:
        self.path = path
        self.lines = lines
        self.rows = len(raw)
        self._columns = {name: raw[name].to_numpy() for name in raw.columns}

    def fail(self, row: int, problem: str) -> ArchiveFormatError:
        return ArchiveFormatError(self.path, problem, int(self.lines[row]))

    def require(
        self, ok: np.ndarray, problem: Callable[[int], str], lines: np.ndarray | None = None
    ) -> None:
        """Raise for the first row where ``ok`` is False; ``problem(row)`` says why.

        Rows are in file order, or in the order of ``lines`` (their line numbers) when given.
        """
        bad = np.flatnonzero(~np.asarray(ok, dtype=bool))
        if bad.size:
            line = (self.lines if lines is None else lines)[bad[0]]
            raise ArchiveFormatError(self.path, problem(int(bad[0])), int(line))

    def column(self, name: str) -> np.ndarray | None:
        return self._columns.get(name)

    def is_empty(self, name: str) -> np.ndarray:
        values = self._columns.get(name)
        if values is None:
            return np.ones(self.rows, dtype=bool)
        return pd.isna(values)

    def numbers(
        self,
        name: str,
        *,
        required: bool = True,
        positive: bool = False,
        nonnegative: bool = False,
        limits: PlausibilityLimits | None = None,
    ) -> np.ndarray:
        """The column as finite float64 (NaN where empty and not required), no larger than
        ``limits.max_value`` if given."""
        empty = self.is_empty(name)
        if required:
            self.require(~empty, lambda i: f"{name} is empty")
        values = self._columns.get(name)
        if values is None:
            return np.full(self.rows, np.nan)
        # read_csv already parsed clean numeric columns; only a column holding text is object.
        parsed = (
            pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64)
            if values.dtype == object
            else values.astype(np.float64)
        )
        self.require(empty | np.isfinite(parsed), lambda i: f"{name} {values[i]!r} is not a number")
        if positive:
            self.require(empty | (parsed > 0), lambda i: f"{name} {values[i]} is not positive")
        if nonnegative:
            self.require(empty | (parsed >= 0), lambda i: f"{name} {values[i]} is negative")
        if limits is not None:
            self.require(
                empty | (parsed <= limits.max_value),
                lambda i: (
                    f"{name} {_number(parsed[i])} is beyond any real price, quantity or USD "
                    f"amount ({limits.describe_value()})"
                ),
            )
        return parsed

    def integers(self, name: str, *, required: bool = True) -> np.ndarray:
        """The column as non-negative int64 (0 where empty: mask with ``is_empty``).

        Float64 holds every epoch below 2**53 exactly, which covers µs until the year 2255.
        """
        values = self.numbers(name, required=required, nonnegative=True)
        empty = np.isnan(values)
        self.require(
            empty | (values == np.floor(values)),
            lambda i: f"{name} {values[i]} is not a whole number",
        )
        return np.where(empty, 0, values).astype(np.int64)


def read_table(
    path: Path,
    columns: tuple[str, ...],
    required: tuple[str, ...],
    *,
    allow_no_rows: bool = False,
) -> Table:
    """The file's rows with their line numbers. A header without rows is an error unless
    ``allow_no_rows`` (a liquidation file of a day without liquidations is legitimately empty)."""
    data = file_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise ArchiveFormatError(path, "the file is empty")
    # Old archive files have no header row; a header's first field never starts with a digit.
    has_header = not data.lstrip()[:1].isdigit()
    try:
        raw = pd.read_csv(
            io.BytesIO(data),
            header=0 if has_header else None,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            index_col=False,
            # pandas' default fast parser can be one unit in the last place off the written
            # decimal; round_trip parses every value exactly.
            float_precision="round_trip",
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        line = re.search(r"line (\d+)", str(error))
        raise ArchiveFormatError(
            path, f"not a readable CSV: {str(error).strip()}", int(line.group(1)) if line else None
        ) from None
    if has_header:
        raw.columns = [str(name).strip() for name in raw.columns]
        absent = [name for name in required if name not in raw.columns]
        if absent:
            raise ArchiveFormatError(path, f"the header lacks column(s) {', '.join(absent)}", 1)
    else:
        if raw.shape[1] < len(required):
            raise ArchiveFormatError(
                path, f"{raw.shape[1]} columns, expected {len(columns)} ({', '.join(columns)})", 1
            )
        raw.columns = [*columns[: raw.shape[1]], *range(len(columns), raw.shape[1])]
    lines = np.arange(len(raw)) + (2 if has_header else 1)
    # skip_blank_lines=False keeps blank lines as all-empty rows so that line numbers stay true.
    blank = raw[required[0]].isna().to_numpy()
    if blank.any():
        blank[blank] = raw[blank].isna().all(axis=1).to_numpy()
        raw, lines = raw[~blank], lines[~blank]
    if raw.empty and not allow_no_rows:
        # Storing it would replace the day's rows with nothing, as a 0-byte file would.
        raise ArchiveFormatError(path, "the file has a header but no data rows")
    return Table(path, raw, lines)


def file_bytes(path: Path) -> bytes:
    """The CSV bytes of a .csv, .csv.gz or a .zip holding exactly one CSV."""
    if not path.is_file():
        raise ArchiveFormatError(path, "no such file")
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                members = [info for info in archive.infolist() if not info.is_dir()]
                if len(members) != 1:
                    names = ", ".join(info.filename for info in members) or "nothing"
                    raise ArchiveFormatError(
                        path, f"the zip holds {names}; expected exactly one CSV file"
                    )
                return archive.read(members[0])
        if path.name.endswith(".gz"):
            return gzip.decompress(path.read_bytes())
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ArchiveFormatError(path, f"damaged or truncated archive: {error}") from None
    return path.read_bytes()


def _epoch_unit_ns(table: Table, epochs: np.ndarray) -> int:
    """Nanoseconds per epoch unit: µs when at least 1e15, else ms; the first row sets the file's."""
    micro = epochs >= _MICROSECOND_EPOCH_FLOOR
    file_is_micro = bool(micro[0]) if micro.size else False
    units = ("milliseconds", "microseconds")
    table.require(
        micro == file_is_micro,
        lambda i: (
            f"open_time {epochs[i]} is in {units[not file_is_micro]} while line "
            f"{table.lines[0]} is in {units[file_is_micro]}"
        ),
    )
    return 1_000 if file_is_micro else 1_000_000


def _label_convention(
    table: Table, snapped: np.ndarray, start_ns: int, end_ns: int, day: date
) -> tuple[str, bool]:
    at_start = np.flatnonzero(snapped == start_ns)
    at_end = np.flatnonzero(snapped == end_ns)
    if at_start.size and at_end.size:
        raise table.fail(
            int(at_end[0]),
            f"labels {day} 00:00 (line {table.lines[at_start[0]]}) and {day + _DAY} 00:00 both "
            "appear; a metrics file holds one or the other",
        )
    if at_start.size:
        return LABEL_BEFORE_SNAPSHOT, True
    if at_end.size:
        return LABEL_AT_SNAPSHOT, True
    return (LABEL_BEFORE_SNAPSHOT if day >= LABEL_SWITCH_DAY else LABEL_AT_SNAPSHOT), False


@dataclass(frozen=True)
class _SortedRows:
    """A day's rows in time order without duplicates, each with its line in the file."""

    columns: dict[str, np.ndarray]
    lines: np.ndarray
    dropped: int


def _require_ohlc_order(table: Table, columns: dict[str, np.ndarray]) -> None:
    high, low = columns["high"], columns["low"]
    table.require(high >= low, lambda i: f"high {_number(high[i])} is below low {_number(low[i])}")
    for name in ("open", "close"):
        values = columns[name]
        table.require(
            (low <= values) & (values <= high),
            lambda i, name=name, values=values: (
                f"{name} {_number(values[i])} is outside low {_number(low[i])} … "
                f"high {_number(high[i])}"
            ),
        )


def _predecessors(
    rows: _SortedRows,
    time_column: str,
    name: str,
    step_ns: int,
    previous: PreviousRow | None,
) -> tuple[np.ndarray, np.ndarray, Callable[[int], str]]:
    """For each row: whether a row exactly one step earlier exists (in the file, or ``previous``
    for the first), that row's ``name`` value, and where that row is (for messages)."""
    times, values = rows.columns[time_column], rows.columns[name]
    first_before = to_ns(previous.time) if previous else times[0]
    follows = times - np.r_[first_before, times[:-1]] == step_ns
    before = np.r_[previous.values[name] if previous else np.nan, values[:-1]]

    def where(i: int) -> str:
        # Row 0 follows a row only when that is ``previous``.
        return f"line {rows.lines[i - 1]}" if i else previous.where

    return follows, before, where


def _require_candle_range(
    table: Table,
    rows: _SortedRows,
    step_ns: int,
    limits: PlausibilityLimits,
    previous: PreviousRow | None,
) -> None:
    """No candle spans more than the limit around the previous close (its open after a gap)."""
    high, low, open_ = rows.columns["high"], rows.columns["low"], rows.columns["open"]
    follows, close_before, where = _predecessors(rows, "open_time", "close", step_ns, previous)
    reference = np.where(follows, close_before, open_)
    span = np.maximum(high, reference) - np.minimum(low, reference)

    def problem(i: int) -> str:
        against = (
            f"the previous close {_number(reference[i])} ({where(i)})"
            if follows[i]
            else f"its open {_number(reference[i])}"
        )
        return (
            f"high {_number(high[i])} and low {_number(low[i])} span {span[i] / reference[i]:.0%} "
            f"of {against}, beyond {limits.describe_candle_range()} for one candle"
        )

    table.require(span <= limits.max_candle_range * reference, problem, rows.lines)


def _require_open_interest_steps(
    table: Table,
    rows: _SortedRows,
    step_ns: int,
    limits: PlausibilityLimits,
    previous: PreviousRow | None,
) -> None:
    """No value changes by more than the limit from the snapshot 5 minutes before it."""
    for source, name in _METRICS_VALUES.items():
        values = rows.columns[name]
        follows, before, where = _predecessors(rows, "ts", name, step_ns, previous)
        change = np.where(follows, values / np.where(follows, before, values) - 1, 0.0)
        table.require(
            np.abs(change) <= limits.max_oi_change,
            lambda i, source=source, values=values, before=before, change=change, where=where: (
                f"{source} {_number(values[i])} is {change[i]:+.0%} in 5 minutes from "
                f"{_number(before[i])} ({where(i)}), beyond {limits.describe_oi_change()}"
            ),
            rows.lines,
        )


def _day_frame(
    rows: _SortedRows, time_column: str, grid_ns: np.ndarray, frame_columns: tuple[str, ...]
) -> tuple[pd.DataFrame, int, tuple[datetime, ...]]:
    """List the grid slots a day's sorted rows lack and build its frame."""
    columns = dict(rows.columns)
    missing = _missing(grid_ns, columns[time_column])
    columns[time_column] = columns[time_column].view("datetime64[ns]")
    return pd.DataFrame({name: columns[name] for name in frame_columns}), rows.dropped, missing


def sorted_without_duplicates(
    table: Table, columns: dict[str, np.ndarray], key: str
) -> _SortedRows:
    """Sort rows by ``key`` (int64 ns); drop rows identical to an earlier one, raise on conflicts.

    Value columns are float64; two empty (NaN) values count as identical.
    """
    order = np.lexsort((table.lines, columns[key]))
    columns = {name: values[order] for name, values in columns.items()}
    lines = table.lines[order]
    repeat = np.r_[False, columns[key][1:] == columns[key][:-1]]
    if not repeat.any():
        return _SortedRows(columns, lines, 0)
    same = np.ones(len(repeat) - 1, dtype=bool)
    for name, values in columns.items():
        if name != key:
            previous, current = values[:-1], values[1:]
            same &= (previous == current) | (np.isnan(previous) & np.isnan(current))
    conflict = np.flatnonzero(repeat[1:] & ~same)
    if conflict.size:
        first, second = table.lines[order[conflict[0]]], table.lines[order[conflict[0] + 1]]
        raise ArchiveFormatError(
            table.path,
            f"conflicting rows for {key} {format_instant(columns[key][conflict[0]])} "
            f"(lines {first} and {second})",
            int(second),
        )
    kept = {name: values[~repeat] for name, values in columns.items()}
    return _SortedRows(kept, lines[~repeat], int(repeat.sum()))


def _missing(grid_ns: np.ndarray, present_ns: np.ndarray) -> tuple[datetime, ...]:
    absent = np.setdiff1d(grid_ns, present_ns)
    return tuple(pd.Timestamp(int(ns)).to_pydatetime() for ns in absent)


def day_from_name(path: Path) -> date:
    """The UTC day in a daily archive file's name."""
    named = parse_daily_file_name(path.name)
    if named is None:
        raise ArchiveFormatError(
            path, "cannot tell the file's day from its name (expected <SYM>-<tag>-YYYY-MM-DD.csv)"
        )
    return named[2]


def to_ns(value: datetime | timedelta) -> int:
    """A naive-UTC instant or a duration in integer nanoseconds."""
    if isinstance(value, timedelta):
        return int(pd.Timedelta(value).value)
    return int(pd.Timestamp(value).value)


def _number(value: float) -> str:
    """A float as written in a file: 99, 109.875, 1e+300."""
    return f"{value:.15g}"


def format_instant(ns: int) -> str:
    """An instant in nanoseconds as text for error messages."""
    return str(pd.Timestamp(int(ns)))


def _span(interval: timedelta) -> str:
    minutes = interval / timedelta(minutes=1)
    return f"{minutes:g}m" if minutes < 60 else str(interval)
