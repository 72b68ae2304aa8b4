"""The history one heatmap page shows: up to a year before its end, on three time grids.

Ranges up to 3 days use 5-minute columns, up to 30 days hourly columns, longer ones (90 days,
180 days, a year) daily columns; every coarser column holds the state at its end and the
liquidations summed within it. Hourly keeps a 30-day page at 720 columns instead of 8,640 while
12 h still gets 144 columns. Daily keeps a year at 365 columns, about one per pixel of the plot
at 1y (4-hourly would be 2,190 columns, six times the data, for detail a 1y view cannot show),
on price bins of their own: a year spans a wider price range than 30 days, so the long grid's
bins are coarser (LONG_MAX_PRICE_ROWS) and the short ranges keep exactly the bins they had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from liqheat_pipeline.lib.days import day_start
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.window import IntervalWindow, floor_to_grid

HISTORY_SPAN = timedelta(days=365)
COARSE_SPAN = timedelta(days=30)
FINE_SPAN = timedelta(days=3)
FINE_MINUTES = 5
COARSE_MINUTES = 60
LONG_MINUTES = 1440
# Price rows of the short ranges' grids at most; wider price ranges merge stored buckets into
# coarser bins.
MAX_PRICE_ROWS = 600
# Price rows of the long grid at most: a year's band in bins about as tall as a pixel of the
# plot's price axis, which keeps a year of BTCUSDT's tiers within the page's size budget.
LONG_MAX_PRICE_ROWS = 300
# The page shows levels within this share beyond the traded range of its window. Low-leverage
# levels sit far away (a 1x long liquidates near 0, a 1x short near twice the entry): drawn,
# they would stretch the axis over prices the window never came near and wash out the levels
# that matter. The API serves every level.
PRICE_BAND_MARGIN = 0.25
ALL_TIERS = 0  # tier value of rows that sum every leverage (when no per-tier table exists)


@dataclass(frozen=True)
class Grid:
    """Cells of one time grid: columns ``window.start + i * interval`` for i < window.slots."""

    window: IntervalWindow
    cells: pd.DataFrame  # ts, leverage, price, long_active, short_active, long/short_consumed

    def column(self) -> np.ndarray:
        """Column index of every cell."""
        offset = self.cells["ts"].to_numpy("datetime64[ns]") - np.datetime64(self.window.start)
        return (offset // np.timedelta64(self.window.interval_minutes, "m")).astype(np.int64)


@dataclass(frozen=True)
class LongHistory:
    """The long ranges' part of a page whose history reaches back beyond COARSE_SPAN: daily
    columns over up to HISTORY_SPAN on price bins of their own, with the price path, observed
    liquidations and coverage at matching resolutions."""

    grid: Grid
    bins: queries.PriceBins
    candles: pd.DataFrame  # hourly: open_time (of the hour's last candle), low, high, close
    observed: pd.DataFrame  # realized buckets summed per day: bucket_start, bucket_minutes ...
    coverage: pd.DataFrame  # coverage_series at the daily grid


@dataclass(frozen=True)
class HeatmapHistory:
    info: queries.SymbolInfo
    start: datetime  # first column of the hourly grid
    end: datetime  # exclusive end of the page (the partition's end)
    bins: queries.PriceBins  # of the 5-minute and hourly grids
    tiers: tuple[int, ...]  # leverage tiers, or (ALL_TIERS,) without per-tier snapshots
    fine: Grid
    coarse: Grid
    candles: pd.DataFrame  # open_time, open, high, low, close of [start, end)
    map_ts: datetime | None  # last snapshot before end: where the liquidation map is drawn
    map_price: float | None  # its candle's close
    observed: pd.DataFrame  # realized_buckets of [start, end): observed, not modelled
    coverage: pd.DataFrame  # coverage_series at the hourly grid
    skill: queries.SkillWindow | None  # the model_skill window ending at ``end``, if any
    long: LongHistory | None  # None when the model's history starts within COARSE_SPAN

    @property
    def symbol(self) -> str:
        return self.info.symbol

    @property
    def first_column(self) -> datetime:
        """Start of the page's whole history (of its longest grid)."""
        return self.start if self.long is None else self.long.grid.window.start


def load_history(
    conn: duckdb.DuckDBPyConnection, info: queries.SymbolInfo, end: datetime
) -> HeatmapHistory:
    """Everything the page and its preview draw, for the history before ``end``."""
    return HistoryReader(info).history(conn, end)


class HistoryReader:
    """Histories of one symbol's pages, read in turn (a range run's days, oldest first).

    Consecutive pages overlap by all but one day, so the cells read for one page are kept and
    only the new days are queried for the next: a 30-day range reads each day's cells about
    once instead of up to 30 times. Pages come out identical to reading each alone. Each call
    reads through the connection it is given, so a caller can hold the file per page only.
    """

    def __init__(self, info: queries.SymbolInfo) -> None:
        self._info = info
        self._grids = {
            minutes: _SlidingCells(info.symbol, minutes)
            for minutes in (FINE_MINUTES, COARSE_MINUTES, LONG_MINUTES)
        }

    def history(self, conn: duckdb.DuckDBPyConnection, end: datetime) -> HeatmapHistory:
        """The history before ``end``."""
        info = self._info
        first = day_start(info.first_day)
        start = max(first, end - COARSE_SPAN)
        fine_start = max(floor_to_grid(start, FINE_MINUTES), end - FINE_SPAN)
        coarse_window = IntervalWindow(start, end, COARSE_MINUTES)
        fine_window = IntervalWindow(fine_start, end, FINE_MINUTES)
        bins = _page_bins(conn, info, coarse_window)
        has_tiers = _has_leverage_rows(conn, info.symbol, coarse_window)
        fine, coarse = (
            Grid(
                window,
                self._grids[window.interval_minutes].cells(conn, window, bins, has_tiers),
            )
            for window in (fine_window, coarse_window)
        )
        long = (
            self._long_history(
                conn, IntervalWindow(max(first, end - HISTORY_SPAN), end, LONG_MINUTES)
            )
            if first < start
            else None
        )
        grids = [fine, coarse] if long is None else [fine, coarse, long.grid]
        leverages = np.concatenate([grid.cells["leverage"] for grid in grids])
        tiers = tuple(np.unique(leverages).tolist()) or (ALL_TIERS,)
        map_ts = queries.snapshot_at(conn, info.symbol, end - timedelta(microseconds=1))
        if map_ts is not None and map_ts < start:
            map_ts = None
        return HeatmapHistory(
            info=info,
            start=start,
            end=end,
            bins=bins,
            tiers=tiers,
            fine=fine,
            coarse=coarse,
            candles=queries.price_path(conn, info.symbol, start, end),
            map_ts=map_ts,
            map_price=None if map_ts is None else queries.close_price(conn, info.symbol, map_ts),
            observed=queries.realized_buckets(conn, info.symbol, start, end),
            coverage=queries.coverage_series(conn, info.symbol, coarse_window),
            skill=queries.skill_window(conn, info.symbol, window_end=end),
            long=long,
        )

    def _long_history(self, conn: duckdb.DuckDBPyConnection, window: IntervalWindow) -> LongHistory:
        symbol = self._info.symbol
        bins = _page_bins(conn, self._info, window, LONG_MAX_PRICE_ROWS)
        by_leverage = _has_leverage_rows(conn, symbol, window)
        return LongHistory(
            grid=Grid(window, self._grids[LONG_MINUTES].cells(conn, window, bins, by_leverage)),
            bins=bins,
            candles=_hourly_candles(conn, symbol, window),
            observed=_observed_per_interval(conn, symbol, window),
            coverage=queries.coverage_series(conn, symbol, window),
        )


class _SlidingCells:
    """``heatmap_cells`` of one display interval over the last window asked for.

    A window that starts inside the kept span is served from it plus a query for its new end
    only. That is exact because every cell belongs to one interval wholly inside the window:
    reuse requires the window and the kept span's end on the interval grid, and the same bins
    and tier split; anything else is queried afresh.
    """

    def __init__(self, symbol: str, minutes: int) -> None:
        self._symbol = symbol
        self._minutes = minutes
        self._key: tuple[queries.PriceBins, bool] | None = None
        self._start = self._end = None
        self._cells = pd.DataFrame()

    def cells(
        self,
        conn: duckdb.DuckDBPyConnection,
        window: IntervalWindow,
        bins: queries.PriceBins,
        by_leverage: bool,
    ) -> pd.DataFrame:
        """Cells of ``window`` (columns as ``heatmap_cells`` by leverage; ALL_TIERS without
        per-tier rows), sorted by ts."""
        reusable = (
            self._key == (bins, by_leverage)
            and self._on_grid(window.start)
            and self._on_grid(window.end)
            and self._on_grid(self._end)
            and self._start <= window.start <= self._end
        )
        if not reusable:
            self._key, self._end = (bins, by_leverage), window.start
            self._cells = pd.DataFrame()
        if window.end > self._end:
            new = self._query(
                conn, IntervalWindow(self._end, window.end, self._minutes), bins, by_leverage
            )
            if self._cells.empty:
                self._cells = new
            elif not new.empty:
                self._cells = pd.concat([self._cells, new])
            self._end = window.end
        ts = self._cells["ts"].to_numpy("datetime64[ns]")
        first, last = (
            np.searchsorted(ts, np.datetime64(window.start)),
            np.searchsorted(ts, np.datetime64(window.end)),
        )
        # Keep only what a later window (starting no earlier) can still use.
        self._start = window.start
        self._cells = self._cells.iloc[first:]
        return _renumbered(self._cells.iloc[: last - first])

    def _on_grid(self, moment: datetime | None) -> bool:
        return moment is not None and floor_to_grid(moment, self._minutes) == moment

    def _query(
        self,
        conn: duckdb.DuckDBPyConnection,
        window: IntervalWindow,
        bins: queries.PriceBins,
        by_leverage: bool,
    ) -> pd.DataFrame:
        cells = queries.heatmap_cells(conn, self._symbol, window, bins, by_leverage=by_leverage)
        if not by_leverage:
            cells.insert(1, "leverage", ALL_TIERS)
        return cells


def _renumbered(cells: pd.DataFrame) -> pd.DataFrame:
    """``cells`` indexed 0..n-1 without copying them (``reset_index`` copies every column)."""
    cells.index = pd.RangeIndex(len(cells))
    return cells


# The lowest and highest price bucket of heatmap_snapshots' rows in [$start, $end) within the
# band, from the segments the view expands: a segment has a row in the window if a candle of its
# own (the ledger rows of its day from first_ts to last_ts) is in it. Through the view a year
# would expand every 5-minute cell first (3 s at a year; this reads 1.6 M segments).
_BUCKET_RANGE = """
    WITH band AS (
        SELECT * FROM snapshot_segments s
        WHERE s.symbol = $symbol AND s.first_ts < $end AND s.last_ts >= $start
          AND ($price_low IS NULL OR s.price_bucket >= $price_low)
          AND ($price_high IS NULL OR s.price_bucket < $price_high)
    ),
    in_window AS (
        SELECT price_bucket FROM band s
        WHERE s.first_ts >= $start AND EXISTS (
            SELECT 1 FROM candle_ledger l
            WHERE l.symbol = s.symbol AND l.side = s.side AND l.ts = s.first_ts)
        UNION ALL
        -- begun before the window: a row in it if one of its later candles is
        SELECT price_bucket FROM band s
        WHERE s.first_ts < $start AND EXISTS (
            SELECT 1 FROM candle_ledger l
            WHERE l.symbol = s.symbol AND l.side = s.side AND l.ts >= $start
              AND l.ts < $end AND l.ts <= s.last_ts
              AND CAST(l.ts AS DATE) = CAST(s.first_ts AS DATE))
    )
    SELECT min(price_bucket), max(price_bucket) FROM in_window
"""


def _page_bins(
    conn: duckdb.DuckDBPyConnection,
    info: queries.SymbolInfo,
    window: IntervalWindow,
    max_rows: int = MAX_PRICE_ROWS,
) -> queries.PriceBins:
    """Stored buckets within PRICE_BAND_MARGIN of the window's traded range, merged just enough
    to keep the page's price rows under ``max_rows``."""
    size = info.bucket_size
    traded_low, traded_high = conn.execute(
        "SELECT min(low), max(high) FROM candles WHERE symbol = ? AND open_time >= ? "
        "AND open_time < ?",
        [info.symbol, window.start, window.end],
    ).fetchone()
    band_low = band_high = None
    if traded_low is not None:
        band_low = math.floor(traded_low * (1 - PRICE_BAND_MARGIN) / size) * size
        band_high = (math.floor(traded_high * (1 + PRICE_BAND_MARGIN) / size) + 1) * size
    low, high = conn.execute(
        _BUCKET_RANGE,
        {
            "symbol": info.symbol,
            "start": window.start,
            "end": window.end,
            "price_low": band_low,
            "price_high": band_high,
        },
    ).fetchone()
    if low is None:
        return queries.PriceBins(size, low=band_low, high=band_high)
    rows = (high - low) / size + 1
    return queries.PriceBins(size, max(1, math.ceil(rows / max_rows)), low=band_low, high=band_high)


def _has_leverage_rows(
    conn: duckdb.DuckDBPyConnection, symbol: str, window: IntervalWindow
) -> bool:
    row = conn.execute(
        """
        SELECT 1 FROM heatmap_snapshots_by_leverage
        WHERE symbol = ? AND ts >= ? AND ts < ? LIMIT 1
        """,
        [symbol, window.start, window.end],
    ).fetchone()
    return row is not None


def _hourly_candles(
    conn: duckdb.DuckDBPyConnection, symbol: str, window: IntervalWindow
) -> pd.DataFrame:
    """The price path of ``window`` per hour: low, high and the close of the hour's last
    candle, at that candle's open_time (where the 5-minute path draws the same close)."""
    return conn.execute(
        """
        SELECT max(open_time) AS open_time, min(low) AS low, max(high) AS high,
               arg_max(close, open_time) AS close
        FROM candles WHERE symbol = ? AND open_time >= ? AND open_time < ?
        GROUP BY time_bucket(INTERVAL 1 hour, open_time)
        ORDER BY open_time
        """,
        [symbol, window.start, window.end],
    ).df()


def _observed_per_interval(
    conn: duckdb.DuckDBPyConnection, symbol: str, window: IntervalWindow
) -> pd.DataFrame:
    """``queries.realized_buckets`` of ``window`` summed per interval (a source's missing
    buckets count as nothing); scope and source list every one summed."""
    return conn.execute(
        """
        SELECT time_bucket(to_minutes(?), bucket_start, ?) AS bucket_start,
               ? AS bucket_minutes, sum(long_usd) AS long_usd, sum(short_usd) AS short_usd,
               string_agg(DISTINCT source, ' | ' ORDER BY source) AS source,
               string_agg(DISTINCT scope, ' | ' ORDER BY scope) AS scope
        FROM realized_liquidations
        WHERE symbol = ? AND bucket_start >= ? AND bucket_start < ?
        GROUP BY 1
        ORDER BY 1
        """,
        [
            window.interval_minutes,
            window.start,
            window.interval_minutes,
            symbol,
            window.start,
            window.end,
        ],
    ).df()


def dense(grid: Grid, bins: queries.PriceBins, column: str, y0: float, rows: int) -> np.ndarray:
    """A (rows x columns) matrix of ``column`` summed over tiers; row r is the bin y0 + r*size."""
    matrix = np.zeros((rows, grid.window.slots))
    row = np.rint((grid.cells["price"].to_numpy() - y0) / bins.size).astype(np.int64)
    np.add.at(matrix, (row, grid.column()), grid.cells[column].to_numpy())
    return matrix
