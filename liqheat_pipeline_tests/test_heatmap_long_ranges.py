"""The page's long ranges (90d, 180d, 1y): daily columns over up to a year on price bins of
their own, equal to the SQL contract's heatmap; offered by the history's length; drawn in
headless Chromium. On the hand-made fixture (4-hour candles, 400 days: quick to build)."""

from __future__ import annotations

import base64
import gzip
import math
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.heatmap import queries, sql
from liqheat_pipeline.lib.heatmap.history import (
    HISTORY_SPAN,
    LONG_MAX_PRICE_ROWS,
    PRICE_BAND_MARGIN,
    HeatmapHistory,
    dense,
    load_history,
)
from liqheat_pipeline.lib.heatmap.page import (
    RANGES,
    available_ranges,
    decode_cells,
    page_data,
    render_page,
)
from liqheat_pipeline.lib.heatmap.window import IntervalWindow
from liqheat_pipeline_tests.helpers.browser import open_offline
from liqheat_pipeline_tests.helpers.heatmap_fixture import make_fixture, write_fixture

FIXTURE_DAYS = 400
DAY_MS = 86_400_000
START = datetime(2025, 12, 1)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    # 4-hour candles keep 400 days at ~1 M snapshot rows; 50x/100x levels are soon consumed.
    fixture = make_fixture(days=FIXTURE_DAYS, interval_minutes=240, tiers=((50, 0.6), (100, 0.4)))
    path = tmp_path_factory.mktemp("long_ranges") / "fixture.duckdb"
    write_fixture(fixture, path)
    return path, fixture.symbol


def _history(database: tuple[Path, str], days: int) -> HeatmapHistory:
    path, symbol = database
    with warehouse.connect(path, read_only=True) as conn:
        return load_history(conn, queries.symbol_info(conn, symbol), START + timedelta(days=days))


@pytest.fixture(scope="module")
def year(database) -> HeatmapHistory:
    return _history(database, FIXTURE_DAYS)


def _unpack(packed: str, dtype: str) -> np.ndarray:
    return np.frombuffer(gzip.decompress(base64.b64decode(packed)), dtype=dtype)


def _decoded(grid: dict, kind: str, tiers: tuple[int, ...]) -> pd.DataFrame:
    """One kind (active, consumed) of a page grid's cells: ts, leverage, price, side, usd."""
    cells = decode_cells(grid[kind])
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(
                grid["t0"] + cells["col"].astype(np.int64) * grid["step"], unit="ms"
            ),
            "leverage": np.array(tiers)[cells["key"] >> 1],
            "price": np.round(grid["y0"] + cells["row"] * grid["bin_size"], 10),
            "side": np.where(cells["key"] & 1, "short", "long"),
            "usd": cells["value"].astype(float),
        }
    )


def test_long_grid_is_daily_over_the_last_year_on_its_own_bins(year, database):
    end = START + timedelta(days=FIXTURE_DAYS)
    long = year.long
    assert long.grid.window == IntervalWindow(end - HISTORY_SPAN, end, 1440)
    assert year.first_column == end - timedelta(days=365)
    path, symbol = database
    with warehouse.connect(path, read_only=True) as conn:
        year_low, year_high = conn.execute(
            "SELECT min(low), max(high) FROM candles WHERE symbol = ? AND open_time >= ?",
            [symbol, end - HISTORY_SPAN],
        ).fetchone()
        month_low, month_high = conn.execute(
            "SELECT min(low), max(high) FROM candles WHERE symbol = ? AND open_time >= ?",
            [symbol, end - timedelta(days=30)],
        ).fetchone()
    size = long.bins.bucket_size
    assert long.bins.low == math.floor(year_low * (1 - PRICE_BAND_MARGIN) / size) * size
    assert long.bins.high == (math.floor(year_high * (1 + PRICE_BAND_MARGIN) / size) + 1) * size
    # The short ranges keep the bins of their own 30-day window, as before the long ranges.
    assert year.bins.low == math.floor(month_low * (1 - PRICE_BAND_MARGIN) / size) * size
    assert year.bins.high == (math.floor(month_high * (1 + PRICE_BAND_MARGIN) / size) + 1) * size
    assert year.coarse.window == IntervalWindow(end - timedelta(days=30), end, 60)
    data = page_data(year)
    assert data["grids"]["long"]["n"] == 365 and data["grids"]["long"]["step"] == DAY_MS
    assert data["grids"]["long"]["rows"] <= LONG_MAX_PRICE_ROWS
    # The price path beyond 30 days is hourly: each hour's last candle.
    minutes = _unpack(data["long"]["candles"]["minute"], "<i4")
    assert len(minutes) == 365 * 6 and minutes[0] == -335 * 1440
    assert len(_unpack(data["candles"]["minute"], "<i4")) == 30 * 6


def test_long_columns_are_the_sql_heatmap_of_each_day(year, database):
    """Every daily column, all tiers summed, is the README's heatmap query at 1440 minutes over
    the same window and price bins; per tier, the last column is the state of the year's last
    candle in heatmap_snapshots_by_leverage."""
    path, symbol = database
    long = year.long
    grid = page_data(year)["grids"]["long"]
    bins, window = long.bins, long.grid.window
    with warehouse.connect(path, read_only=True) as conn:
        expected = sql.heatmap(
            conn,
            symbol,
            window.start,
            window.end,
            1440,
            price_low=bins.low,
            price_high=bins.high,
            price_step=bins.size,
        )
        last_ts = conn.execute(
            "SELECT max(ts) FROM candle_ledger WHERE symbol = ?", [symbol]
        ).fetchone()[0]
        last_state = conn.execute(
            "SELECT leverage, round(floor(price_bucket / $step + 1e-9) * $step, 10) AS price, "
            "side, sum(active_usd) AS usd FROM heatmap_snapshots_by_leverage "
            "WHERE symbol = $symbol AND ts = $ts AND active_usd > 0 "
            "AND price_bucket >= $low AND price_bucket < $high GROUP BY ALL",
            {
                "symbol": symbol,
                "ts": last_ts,
                "step": bins.size,
                "low": bins.low,
                "high": bins.high,
            },
        ).df()
    for kind in ("active", "consumed"):
        decoded = _decoded(grid, kind, year.tiers)
        page = decoded.groupby(["ts", "price", "side"])["usd"].sum()
        want = expected[expected[f"{kind}_usd"] > 0].rename(columns={"price_bucket": "price"})
        want = want.set_index(["ts", "price", "side"])[f"{kind}_usd"]
        assert len(page) == len(want) > 300
        np.testing.assert_allclose(page.loc[want.index], want, rtol=1e-6)
    active = _decoded(grid, "active", year.tiers)
    last_column = active[active["ts"] == window.end - timedelta(days=1)]
    page_state = last_column.set_index(["leverage", "price", "side"])["usd"].sort_index()
    sql_state = last_state.set_index(["leverage", "price", "side"])["usd"].sort_index()
    assert set(page_state.index.get_level_values("leverage")) == {50, 100}
    assert list(page_state.index) == list(sql_state.index)
    np.testing.assert_allclose(page_state, sql_state, rtol=1e-6)


@pytest.mark.parametrize(
    ("days", "offered"),
    [
        (20, ["12h", "24h", "3d", "7d", "30d"]),
        (30, ["12h", "24h", "3d", "7d", "30d"]),
        (31, ["12h", "24h", "3d", "7d", "30d", "90d"]),
        (91, ["12h", "24h", "3d", "7d", "30d", "90d", "180d"]),
        (181, list(RANGES)),
    ],
)
def test_a_long_range_is_offered_once_the_history_reaches_beyond_the_shorter_one(
    database, days, offered
):
    history = _history(database, days)
    assert available_ranges(history) == offered
    assert ("long" in page_data(history)["grids"]) == (days > 30)
    html = render_page(history, inline_plotly=False)
    disabled = re.findall(r'data-range="(\w+)" disabled', html)
    assert disabled == [name for name in RANGES if name not in offered]
    assert html.count('title="the history starts 2025-12-01"') == len(disabled)


def _drawn_cells(page) -> np.ndarray:
    """The long and short heatmaps' USD per cell as drawn (all tiers, summed in the browser);
    0 where empty."""
    drawn = page.evaluate(
        "[0, 1].map((i) => document.getElementById('liqheat-plot').data[i].customdata)"
    )
    return np.array([[[v or 0.0 for v in row] for row in side] for side in drawn])


@pytest.mark.browser
def test_long_ranges_in_the_browser(browser, year, tmp_path):
    path = tmp_path / "year.html"
    html = render_page(year)
    assert len(html.encode()) <= 8_000_000
    path.write_text(html, "utf-8")
    grids = page_data(year)["grids"]
    sources = {
        "long": (year.long.grid, year.long.bins),
        "coarse": (year.coarse, year.bins),
        "fine": (year.fine, year.bins),
    }
    page, refused, errors = open_offline(browser, path.as_uri(), "file://")
    marker_count = 0
    try:
        page.wait_for_selector('#liqheat-plot[data-ready="1"]', timeout=30_000)
        for name, days, columns, label in (
            ("1y", 365, 365, "1 day"),
            ("180d", 180, 365, "1 day"),
            ("90d", 90, 365, "1 day"),
            ("30d", 30, 720, "1 hour"),
            ("3d", 3, 864, "5 min"),
        ):
            page.click(f'button[data-range="{name}"]')
            page.wait_for_function(
                f"document.getElementById('liqheat-plot').dataset.range === '{name}'"
            )
            view = page.evaluate(
                """(() => { const p = document.getElementById('liqheat-plot');
                            return {range: p.layout.xaxis.range, columns: p.data[0].x.length,
                                    rows: p.data[0].y.length, price: p.data[5].x.length,
                                    label: document.getElementById('liqheat-resolution')
                                      .textContent}; })()"""
            )
            assert (view["range"][1] - view["range"][0]) / DAY_MS == days
            assert view["columns"] == columns and view["label"] == f"columns: {label}"
            name_of_grid = "long" if label == "1 day" else "coarse" if days == 30 else "fine"
            grid = grids[name_of_grid]
            assert view["rows"] == grid["rows"]
            # The values drawn are the stored cells (float32, lossless) summed over tiers.
            source, bins = sources[name_of_grid]
            stored = [
                dense(source, bins, f"{side}_active", grid["y0"], grid["rows"])
                for side in ("long", "short")
            ]
            np.testing.assert_allclose(_drawn_cells(page), stored, rtol=1e-6)
            # A marker per cell in view with modelled liquidations, its tiers summed.
            first = max(0, math.floor((view["range"][0] - grid["t0"]) / grid["step"]))
            markers = page.evaluate(
                "[2, 3].map((i) => document.getElementById('liqheat-plot').data[i].customdata)"
            )
            for side, drawn in zip(("long", "short"), markers, strict=True):
                consumed = dense(source, bins, f"{side}_consumed", grid["y0"], grid["rows"])
                assert len(drawn) == np.count_nonzero(consumed[:, first:])
                marker_count += len(drawn)
                assert sum(drawn) == pytest.approx(consumed[:, first:].sum(), rel=1e-6)
            # The long views draw the hourly price path, the short ones the 5-minute candles.
            assert view["price"] == (365 * 6 if label == "1 day" else 30 * 6)
    finally:
        page.close()
    assert marker_count > 0
    assert (refused, errors) == ([], [])
