"""The history one heatmap page shows: up to 30 days before its end, on two time grids.

Ranges up to 3 days use 5-minute columns; longer ones hourly columns (the state at the hour's
end, liquidations summed within it). Hourly keeps a 30-day page at 720 columns instead of 8,640
while 12 h still gets 144 columns, so the page stays a few MB and every range looks detailed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import duckdb
import numpy as np
import pandas as pd

from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.window import Window, floor_to_grid

HISTORY_SPAN = timedelta(days=30)
FINE_SPAN = timedelta(days=3)
FINE_MINUTES = 5
COARSE_MINUTES = 60
# Price rows per page at most; wider price ranges merge stored buckets into coarser bins.
MAX_PRICE_ROWS = 600
ALL_TIERS = 0  # tier value of rows that sum every leverage (when no per-tier table exists)


def day_end(day: date) -> datetime:
    """Naive UTC midnight closing ``day``: the end of that day's page."""
    return datetime.combine(day, time()) + timedelta(days=1)


@dataclass(frozen=True)
class Grid:
    """Cells of one time grid: columns ``window.start + i * interval`` for i < window.slots."""

    window: Window
    cells: pd.DataFrame  # ts, leverage, price, long_active, short_active, long/short_consumed

    def column(self) -> np.ndarray:
        """Column index of every cell."""
        offset = self.cells["ts"].to_numpy("datetime64[ns]") - np.datetime64(self.window.start)
        return (offset // np.timedelta64(self.window.interval_minutes, "m")).astype(np.int64)


@dataclass(frozen=True)
class HeatmapHistory:
    info: queries.SymbolInfo
    start: datetime  # first column of the hourly grid
    end: datetime  # exclusive end of the page (the partition's end)
    bins: queries.PriceBins
    tiers: tuple[int, ...]  # leverage tiers, or (ALL_TIERS,) without per-tier snapshots
    fine: Grid
    coarse: Grid
    candles: pd.DataFrame  # open_time, open, high, low, close of [start, end)
    map_ts: datetime | None  # last snapshot before end: where the liquidation map is drawn
    map_price: float | None  # its candle's close

    @property
    def symbol(self) -> str:
        return self.info.symbol


def load_history(
    conn: duckdb.DuckDBPyConnection, info: queries.SymbolInfo, end: datetime
) -> HeatmapHistory:
    """Everything the page and its preview draw, for the history before ``end``."""
    start = max(datetime.combine(info.first_day, time()), end - HISTORY_SPAN)
    fine_start = max(floor_to_grid(start, FINE_MINUTES), end - FINE_SPAN)
    coarse_window = Window(start, end, COARSE_MINUTES)
    fine_window = Window(fine_start, end, FINE_MINUTES)
    bins = _page_bins(conn, info, coarse_window)
    has_tiers = _has_leverage_rows(conn, info.symbol, coarse_window)
    grids = []
    for window in (fine_window, coarse_window):
        cells = queries.heatmap_cells(conn, info.symbol, window, bins, by_leverage=has_tiers)
        if not has_tiers:
            cells.insert(1, "leverage", ALL_TIERS)
        grids.append(Grid(window, cells))
    fine, coarse = grids
    tiers = tuple(sorted({*fine.cells["leverage"], *coarse.cells["leverage"]})) or (ALL_TIERS,)
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
    )


def _page_bins(
    conn: duckdb.DuckDBPyConnection, info: queries.SymbolInfo, window: Window
) -> queries.PriceBins:
    """Stored buckets, merged just enough to keep the page's price rows under MAX_PRICE_ROWS."""
    low, high = conn.execute(
        """
        SELECT min(price_bucket), max(price_bucket) FROM heatmap_snapshots
        WHERE symbol = ? AND ts >= ? AND ts < ?
        """,
        [info.symbol, window.start, window.end],
    ).fetchone()
    if low is None:
        return queries.PriceBins(info.bucket_size)
    rows = (high - low) / info.bucket_size + 1
    return queries.PriceBins(info.bucket_size, max(1, math.ceil(rows / MAX_PRICE_ROWS)))


def _has_leverage_rows(conn: duckdb.DuckDBPyConnection, symbol: str, window: Window) -> bool:
    row = conn.execute(
        """
        SELECT 1 FROM heatmap_snapshots_by_leverage
        WHERE symbol = ? AND ts >= ? AND ts < ? LIMIT 1
        """,
        [symbol, window.start, window.end],
    ).fetchone()
    return row is not None


def dense(grid: Grid, bins: queries.PriceBins, column: str, y0: float, rows: int) -> np.ndarray:
    """A (rows x columns) matrix of ``column`` summed over tiers; row r is the bin y0 + r*size."""
    matrix = np.zeros((rows, grid.window.slots))
    row = np.rint((grid.cells["price"].to_numpy() - y0) / bins.size).astype(np.int64)
    np.add.at(matrix, (row, grid.column()), grid.cells[column].to_numpy())
    return matrix
