"""The heatmap page, its PNG preview and the heatmap_page asset, on real pipeline output (the
synthetic DEMOUSDT market)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from liqheat_pipeline.defs.heatmap.assets import build_heatmap_page, page_directory
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.days import day_end
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL
from liqheat_pipeline.lib.heatmap import queries, style
from liqheat_pipeline.lib.heatmap.history import (
    PRICE_BAND_MARGIN,
    HeatmapHistory,
    HistoryReader,
    load_history,
)
from liqheat_pipeline.lib.heatmap.labels import SYNTHETIC_LABEL, chart_title
from liqheat_pipeline.lib.heatmap.page import (
    PLOTLY_FILE,
    RANGES,
    available_ranges,
    decode_cells,
    decode_values,
    encode_values,
    page_data,
    plotly_bundle,
    render_page,
    self_contained,
)
from liqheat_pipeline.lib.heatmap.preview import (
    COLORBAR_LEFT,
    COLORBAR_WIDTH,
    PLOT_BOTTOM,
    PLOT_TOP,
    preview_liquidation_map,
    render_preview,
)
from liqheat_pipeline.project import SymbolSpec
from liqheat_pipeline_tests.helpers.demo_pipeline import DEMO_DAYS, DEMO_LAST, demo_database
from liqheat_pipeline_tests.helpers.heatmap_fixture import make_fixture, write_fixture

SYMBOL = DEMO_SYMBOL


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_database(tmp_path_factory)


@pytest.fixture(scope="module")
def history(database: Path) -> HeatmapHistory:
    with warehouse.connect(database, read_only=True) as conn:
        info = queries.symbol_info(conn, SYMBOL)
        return load_history(conn, info, day_end(DEMO_LAST))


@pytest.fixture
def database_copy(database: Path, tmp_path: Path) -> Path:
    """A private copy for runs of the asset (the shared file keeps the demo run's pages)."""
    return Path(shutil.copy(database, tmp_path / "liqheat.duckdb"))


def _embedded_json(html: str, element_id: str) -> dict:
    match = re.search(
        rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S
    )
    return json.loads(match.group(1).replace("<\\/", "</"))


def _unpack(packed: str, dtype: str) -> np.ndarray:
    return np.frombuffer(gzip.decompress(base64.b64decode(packed)), dtype=dtype)


def test_page_is_self_contained(history):
    html = render_page(history)
    assert html.startswith("<!doctype html>")
    assert "plotly.js v" in html  # the library itself is inlined
    # Nothing outside the inlined library points elsewhere (the browser test also blocks any
    # request leaving the server).
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert re.search(r"""(src|href)=["']?(https?:)?//""", markup) is None
    assert len(html.encode()) < 8_000_000
    title = (
        f"{SYNTHETIC_LABEL} · {SYMBOL} · modelled liquidation heatmap up to 2025-12-05 00:00 UTC"
    )
    assert f"<title>{title}</title>" in html


@pytest.mark.parametrize("grid_name", ["fine", "coarse"])
def test_embedded_cells_are_the_sql_heatmap(history, database, grid_name):
    """Decoding the page's arrays gives back heatmap_cells per tier; tiers sum to the whole."""
    data = _embedded_json(render_page(history), "liqheat-data")
    grid = data["grids"][grid_name]
    source = getattr(history, grid_name)
    cells = decode_cells(grid["active"])
    decoded = pd.DataFrame(
        {
            "ts": pd.to_datetime(
                grid["t0"] + cells["col"].astype(np.int64) * grid["step"], unit="ms"
            ),
            "price": np.round(grid["y0"] + cells["row"] * grid["bin_size"], 10),
            "leverage": np.array(history.tiers)[cells["key"] >> 1],
            "side": np.where(cells["key"] & 1, "short", "long"),
            "usd": cells["value"].astype(float),
        }
    )
    expected = source.cells.melt(
        id_vars=["ts", "leverage", "price"],
        value_vars=["long_active", "short_active"],
        var_name="side",
        value_name="usd",
    )
    expected = expected[expected["usd"] > 0].assign(side=lambda f: f["side"].str.split("_").str[0])
    keys = ["ts", "leverage", "price", "side"]
    merged = decoded.merge(
        expected, on=keys, how="outer", suffixes=("_page", "_sql"), indicator=True
    )
    assert (merged["_merge"] == "both").all()
    # Lossless: each cell is the stored value rounded to float32, bit for bit.
    assert (merged["usd_page"].to_numpy() == merged["usd_sql"].to_numpy("<f4")).all()
    # "All tiers" in the page is the sum over tiers; it must equal heatmap_snapshots itself.
    with warehouse.connect(database, read_only=True) as conn:
        whole = queries.heatmap_cells(conn, SYMBOL, source.window, history.bins)
    per_bin = decoded.groupby(["ts", "price", "side"])["usd"].sum()
    whole_long = whole.set_index(["ts", "price"])["long_active"]
    whole_long = whole_long[whole_long > 0]
    np.testing.assert_allclose(
        per_bin.xs("long", level="side").loc[whole_long.index], whole_long, rtol=1e-6
    )


def _bins_through_time(rng: np.random.Generator, bins: int, columns: int) -> tuple:
    """Cells ordered by bin and column as the page orders them: every column shrinks all bins
    by one factor (open interest falling), a few bins also grow (new levels), some skip
    columns; plus single-cell bins at the ends of float32's range."""
    factors = rng.uniform(0.995, 1.0, columns)
    values, cols, starts = [], [], []
    for b in range(bins):
        present = np.arange(columns) if b % 7 else np.sort(rng.choice(columns, columns // 2))
        level = np.exp(rng.uniform(0, 17)) * np.cumprod(factors)[present]
        level[rng.random(len(present)) < 0.05] *= 1.3
        values.append(level)
        cols.append(present)
        starts.append(np.arange(len(present)) == 0)
    for extreme in (np.finfo(np.float32).smallest_subnormal, np.finfo(np.float32).max, 1.0):
        values.append(np.array([extreme]))
        cols.append(np.array([columns - 1]))
        starts.append(np.array([True]))
    return tuple(np.concatenate(parts) for parts in (values, cols, starts))


def test_cell_values_round_trip_bit_for_bit_and_compress():
    rng = np.random.default_rng(7)
    columns = 300
    values, cols, starts = _bins_through_time(rng, 60, columns)
    planes, factors = encode_values(values, cols, starts, columns)
    assert len(factors) == columns
    decoded = decode_values(planes.tobytes(), cols, starts, factors)
    assert decoded.dtype == np.float32
    assert np.array_equal(decoded.view("<u4"), values.astype("<f4").view("<u4"))
    # Columns that scale every bin alike cost a fraction of the raw floats.
    raw = len(gzip.compress(values.astype("<f4").tobytes(), 6))
    assert len(gzip.compress(planes.tobytes(), 6)) < raw / 3
    empty, no_factors = encode_values(np.array([]), np.array([], int), np.array([], bool), 3)
    assert empty.size == 0 and no_factors == [1.0, 1.0, 1.0]
    assert decode_values(b"", np.array([], int), np.array([], bool), no_factors).size == 0


def test_page_data_shape(history, database):
    data = page_data(history)
    bins = history.bins
    with warehouse.connect(database, read_only=True) as conn:
        traded_low, traded_high = conn.execute(
            "SELECT min(low), max(high) FROM candles WHERE symbol = ?", [SYMBOL]
        ).fetchone()
        in_band = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT leverage FROM heatmap_snapshots_by_leverage WHERE symbol = ? "
                "AND price_bucket >= ? AND price_bucket < ? ORDER BY leverage",
                [SYMBOL, bins.low, bins.high],
            ).fetchall()
        ]
    # The page's price band: the traded range ± PRICE_BAND_MARGIN, on the bucket grid.
    size = bins.bucket_size
    assert bins.low == math.floor(traded_low * (1 - PRICE_BAND_MARGIN) / size) * size
    assert bins.high == (math.floor(traded_high * (1 + PRICE_BAND_MARGIN) / size) + 1) * size
    fine, coarse = data["grids"]["fine"], data["grids"]["coarse"]
    assert {key: fine[key] for key in ("y0", "rows", "bin_size")} == {
        key: coarse[key] for key in ("y0", "rows", "bin_size")
    }  # the short ranges share their bins
    assert coarse["bin_size"] == bins.size
    assert bins.low <= coarse["y0"]
    assert coarse["y0"] + coarse["rows"] * bins.size <= bins.high + bins.size
    # Four days of history: no long grid, and the long ranges are greyed out.
    assert "long" not in data["grids"] and data["long"] is None
    assert available_ranges(history) == ["12h", "24h", "3d", "7d", "30d"]
    assert data["tiers"] == ["all tiers", *(f"{leverage}x" for leverage in in_band)]
    assert data["grids"]["fine"]["step"] == 5 * 60_000
    assert data["grids"]["coarse"]["step"] == 60 * 60_000
    assert data["grids"]["fine"]["n"] == 3 * 288  # the last 3 days
    assert data["grids"]["coarse"]["n"] == DEMO_DAYS * 24
    minutes = _unpack(data["candles"]["minute"], "<i4")
    assert len(minutes) == DEMO_DAYS * 288
    assert minutes[0] == 0 and minutes[-1] == (DEMO_DAYS * 288 - 1) * 5
    last_candle = day_end(DEMO_LAST) - timedelta(minutes=5)
    assert data["map_time"] == int(last_candle.replace(tzinfo=UTC).timestamp() * 1000)


def test_synthetic_data_is_labelled(history):
    html = render_page(history)
    assert f"<title>{SYNTHETIC_LABEL} · {SYMBOL}" in html
    assert f'<span class="synthetic">{SYNTHETIC_LABEL}</span>' in html
    figure = _embedded_json(html, "liqheat-figure")
    assert any(note["text"] == SYNTHETIC_LABEL for note in figure["layout"]["annotations"])
    assert chart_title("BTCUSDT", "x") == "BTCUSDT · x"


def test_preview_is_a_drawn_png(history):
    png = render_preview(history)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < 400_000
    pixels = image.imread(io.BytesIO(png), format="png")[..., :3]
    assert pixels.shape[:2] == (520, 1100)
    lit = np.abs(pixels - _rgb(style.BACKGROUND)).max(axis=2) > 40 / 255
    # Inside the heatmap's axes (left of the liquidation map, between the plot's top and bottom)
    # the cells fill much of the picture, not just grid lines and the price.
    height, width = lit.shape
    rows = slice(int((1 - PLOT_TOP) * height), int((1 - PLOT_BOTTOM) * height))
    assert lit[rows, int(0.1 * width) : int(0.7 * width)].mean() > 0.25


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255


def _scale_colours(stops: tuple[tuple[float, str], ...]) -> np.ndarray:
    """The scale sampled at 256 points, interpolated between its stops as both views do."""
    positions = np.linspace(0, 1, 256)
    at = [stop for stop, _ in stops]
    colours = np.array([_rgb(colour) for _, colour in stops])
    return np.stack([np.interp(positions, at, colours[:, k]) for k in range(3)], axis=1)


def test_price_line_colour_is_in_no_colour_scale(history):
    """Nothing else on the heatmap is drawn in (or near) the price line's colour, and the page
    draws the line over a dark casing, above the markers."""
    others = np.concatenate(
        [
            _scale_colours(style.LONG_STOPS),
            _scale_colours(style.SHORT_STOPS),
            [_rgb(c) for c in (style.LONG_ACCENT, style.SHORT_ACCENT, style.COVERAGE_LINE)],
        ]
    )
    distance = np.linalg.norm(others - _rgb(style.PRICE_LINE), axis=1)
    assert distance.min() > 0.4  # of the RGB cube's 1.73 diagonal; white was at 0 (long top)
    traces = _embedded_json(render_page(history), "liqheat-figure")["data"]
    names = [trace["name"] for trace in traces]
    casing, price = (traces[names.index(name)] for name in ("price casing", "price (close)"))
    assert price["line"]["color"] == style.PRICE_LINE
    assert casing["line"]["color"] == style.BACKGROUND
    assert casing["line"]["width"] > price["line"]["width"]
    markers = [i for i, name in enumerate(names) if "liquidations (modelled)" in name]
    assert max(markers) < names.index("price casing") == names.index("price (close)") - 1


def test_marker_size_and_opacity_fall_with_the_range(history):
    ranges = page_data(history)["ranges"]
    assert list(ranges) == list(RANGES)
    for name in ("12h", "24h", "3d"):
        assert ranges[name]["marker_scale"] == 1
        assert ranges[name]["marker_opacity"] == style.MARKER_OPACITY
    assert ranges["30d"]["marker_scale"] == pytest.approx(0.1**0.25)
    scales = [view["marker_scale"] for view in ranges.values()]
    opacities = [view["marker_opacity"] for view in ranges.values()]
    assert scales == sorted(scales, reverse=True) and opacities == sorted(opacities, reverse=True)
    assert style.MARKER_MIN_OPACITY < ranges["30d"]["marker_opacity"] < style.MARKER_OPACITY
    assert ranges["30d"]["span"] == 30 * 24 * 3600 * 1000


def test_preview_map_is_the_sql_map(history, database):
    """The preview draws what ``liquidation_map_rows`` returns at the page's map time and bins."""
    with warehouse.connect(database, read_only=True) as conn:
        sql = queries.liquidation_map_rows(conn, SYMBOL, history.map_ts, history.bins)
    drawn = preview_liquidation_map(history)
    assert len(sql) > 100 and set(sql["side"]) == {"long", "short"}
    pd.testing.assert_frame_equal(drawn, sql, check_exact=False, rtol=1e-9)


def test_preview_draws_the_price_line_and_colour_bars(history):
    pixels = image.imread(io.BytesIO(render_preview(history)), format="png")[..., :3]
    near_price = np.abs(pixels - _rgb(style.PRICE_LINE)).max(axis=2) < 0.08
    assert near_price.sum() > 1000  # the close, in its colour, across the picture
    # Each colour bar reaches its scale's top colour, the short bar above the long one.
    column = pixels[:, int((COLORBAR_LEFT + COLORBAR_WIDTH / 2) * pixels.shape[1])]
    short_top, long_top = (
        np.flatnonzero(np.abs(column - _rgb(stops[-1][1])).max(axis=1) < 0.03)
        for stops in (style.SHORT_STOPS, style.LONG_STOPS)
    )
    assert short_top.size > 0 and long_top.size > 0
    assert short_top.max() < long_top.min()


_RENDER_IN_SUBPROCESS = """
import hashlib, sys
from datetime import date
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.days import day_end
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.history import load_history
from liqheat_pipeline.lib.heatmap.page import render_page
from liqheat_pipeline.lib.heatmap.preview import render_preview
with warehouse.connect(sys.argv[1], read_only=True) as conn:
    info = queries.symbol_info(conn, sys.argv[2])
    history = load_history(conn, info, day_end(date.fromisoformat(sys.argv[3])))
print(hashlib.sha256(render_page(history).encode()).hexdigest())
print(hashlib.sha256(render_preview(history)).hexdigest())
"""


def test_page_and_preview_do_not_depend_on_the_host_time_zone(history, database):
    expected = [
        hashlib.sha256(render_page(history).encode()).hexdigest(),
        hashlib.sha256(render_preview(history)).hexdigest(),
    ]
    for zone in ("America/New_York", "Asia/Kolkata"):
        output = subprocess.run(
            [sys.executable, "-c", _RENDER_IN_SUBPROCESS, str(database), SYMBOL, str(DEMO_LAST)],
            env={**os.environ, "TZ": zone},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert output == expected, zone


def _materialize(database: Path, first: str, last: str | None = None) -> dg.ExecuteInProcessResult:
    partitions = dg.DailyPartitionsDefinition(start_date="2025-12-01", timezone="UTC")
    asset = build_heatmap_page(SymbolSpec(SYMBOL, with_mark_price=False), partitions)
    tags = {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last or first,
    }
    return dg.materialize(
        [asset],
        resources={"database": LiqheatDatabase(path=str(database))},
        tags=tags,
        raise_on_error=False,
    )


def test_pipeline_run_wrote_every_page(database):
    """Each day's page (one range run, cells shared between days) is the page of that day read
    alone, loading Plotly from the shared sibling file; latest.html inlines it."""
    directory = page_directory(database, SYMBOL)
    days = [DEMO_LAST - timedelta(days=back) for back in reversed(range(DEMO_DAYS))]
    names = [f"{day.isoformat()}.html" for day in days]
    assert sorted(path.name for path in directory.iterdir()) == sorted(
        [*names, "latest.html", "latest.png", PLOTLY_FILE]
    )
    assert (directory / PLOTLY_FILE).read_text("utf-8") == plotly_bundle()
    with warehouse.connect(database, read_only=True) as conn:
        info = queries.symbol_info(conn, SYMBOL)
        for day, name in zip(days, names, strict=True):
            page = (directory / name).read_text("utf-8")
            assert "plotly.js v" not in page
            assert f'<script src="{PLOTLY_FILE}"></script>' in page
            alone = render_page(load_history(conn, info, day_end(day)))
            assert self_contained(page) == alone, day
    latest = (directory / "latest.html").read_text("utf-8")
    assert latest == self_contained((directory / names[-1]).read_text("utf-8"))
    assert "plotly.js v" in latest and PLOTLY_FILE not in latest


def test_history_reader_in_any_order_equals_reading_alone(database):
    """Reusing cells between pages (forwards, backwards, repeated) changes no history."""
    days = [DEMO_LAST - timedelta(days=back) for back in (0, 3, 2, 1, 0, 0, 3)]
    with warehouse.connect(database, read_only=True) as conn:
        info = queries.symbol_info(conn, SYMBOL)
        reader = HistoryReader(info)
        for day in days:
            shared, alone = (
                reader.history(conn, day_end(day)),
                load_history(conn, info, day_end(day)),
            )
            for grid in ("fine", "coarse"):
                pd.testing.assert_frame_equal(
                    getattr(shared, grid).cells, getattr(alone, grid).cells, check_exact=True
                )
            assert render_page(shared) == render_page(alone), day


def test_asset_writes_a_page_per_day_and_a_preview(database_copy):
    database = database_copy
    result = _materialize(database, "2025-12-02", "2025-12-04")
    assert result.success
    directory = page_directory(database, SYMBOL)
    pages = sorted(path.name for path in directory.iterdir())
    assert pages == [
        "2025-12-02.html",
        "2025-12-03.html",
        "2025-12-04.html",
        "latest.html",
        "latest.png",
        PLOTLY_FILE,
    ]
    assert _latest_is_inlined(directory, "2025-12-04.html")
    assert "up to 2025-12-03 00:00 UTC" in (directory / "2025-12-02.html").read_text()
    events = {
        event.partition: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert sorted(events) == ["2025-12-02", "2025-12-03", "2025-12-04"]
    # Each partition links its own page; only the run's last day carries the PNG preview.
    for day, metadata in events.items():
        assert metadata["page"].value == str(directory / f"{day}.html")
        assert ("preview" in metadata) == (day == "2025-12-04")
    metadata = events["2025-12-04"]
    preview = re.fullmatch(r"!\[.*\]\(data:image/png;base64,(.+)\)", metadata["preview"].value)
    png = base64.b64decode(preview.group(1))
    assert png.startswith(b"\x89PNG") and png == (directory / "latest.png").read_bytes()
    assert metadata["latest_preview"].value == str(directory / "latest.png")

    # Re-drawing an older day leaves latest.html on the newest day; a plotly.min.js that is
    # not this plotly's bundle is replaced.
    (directory / PLOTLY_FILE).write_text("stale", "utf-8")
    assert _materialize(database, "2025-12-01").success
    assert _latest_is_inlined(directory, "2025-12-04.html")
    assert (directory / PLOTLY_FILE).read_text("utf-8") == plotly_bundle()


def _latest_is_inlined(directory: Path, newest: str) -> bool:
    page = (directory / newest).read_text("utf-8")
    return (directory / "latest.html").read_text("utf-8") == self_contained(page) != page


def test_asset_fails_clearly_without_model_output(database_copy):
    result = _materialize(database_copy, "2025-12-09")
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    message = failure.step_failure_data.error.message
    assert f"{SYMBOL} has no heatmap snapshots on 2025-12-09" in message


def test_asset_range_with_a_missing_day_writes_nothing(database_copy):
    result = _materialize(database_copy, "2025-12-03", "2025-12-09")
    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "no heatmap snapshots on 2025-12-05" in failure.step_failure_data.error.message
    assert not page_directory(database_copy, SYMBOL).exists()


def test_page_without_coverage_observations_or_skill(tmp_path):
    """A ledger without coverage (files written before it existed), no realized rows and no
    skill window: the page says so and its data stays valid JSON (no NaN)."""
    fixture = make_fixture(days=1)
    path = tmp_path / "fixture.duckdb"
    write_fixture(fixture, path)
    with warehouse.connect(path, read_only=True) as conn:
        info = queries.symbol_info(conn, fixture.symbol)
        history = load_history(conn, info, fixture.end)
    html = render_page(history)
    data = json.loads(
        re.search(r'id="liqheat-data">(.*?)</script>', html, re.S).group(1),
        parse_constant=lambda name: pytest.fail(f"{name} in the page data"),
    )
    assert len(data["coverage"]["minute"]) == 24
    assert set(data["coverage"]["long"]) == {None}
    assert data["observed"] == {"minute": [], "minutes": [], "long": [], "short": []}
    assert data["observed_label"] == f"no observed liquidations of {fixture.symbol} in this period"
    assert "coverage of open interest: unknown" in html
    assert 'id="liqheat-skill"' not in html
