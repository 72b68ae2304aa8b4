"""The heatmap page in headless Chromium, served by a real ``liqheat serve`` on loopback, over
real pipeline output (the synthetic DEMOUSDT market)."""

from __future__ import annotations

import io
import math
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from liqheat_pipeline.defs.heatmap.assets import page_directory
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL
from liqheat_pipeline.lib.heatmap import queries, style
from liqheat_pipeline_tests.conftest import REPO_ROOT
from liqheat_pipeline_tests.helpers.api_server import client, running_server
from liqheat_pipeline_tests.helpers.browser import open_offline
from liqheat_pipeline_tests.helpers.demo_pipeline import (
    DEMO_LAST,
    OBSERVED_SCOPE,
    SKILL_WINDOWS,
    demo_database,
)

ARTIFACTS = REPO_ROOT / "artifacts"
SYMBOL = DEMO_SYMBOL
HOUR_MS = 3600e3
# Trace indices of the page's figure (page.js TRACE).
LIQ_LONG, LIQ_SHORT, PRICE_CASING, PRICE = 2, 3, 4, 5
CUM_LONG, CUM_SHORT = 8, 9
OBSERVED_LONG, OBSERVED_SHORT, COVERAGE = 10, 11, 12
USD_LABEL = re.compile(r"\$\d+(\.\d+)?[kMB]?")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_database(tmp_path_factory)


@pytest.fixture(scope="module")
def base_url(database: Path):
    with running_server(database) as url:
        yield url


def _open_offline(browser, url: str, allowed: str) -> tuple:
    """A browser page showing ``url`` once drawn, with the live lists of refused requests (the
    page must work offline) and of console and script errors."""
    page, refused, errors = open_offline(browser, url, allowed, height=800)
    page.wait_for_selector('#liqheat-plot[data-ready="1"]', timeout=30_000)
    return page, refused, errors


@pytest.fixture
def page(browser, base_url):
    page, refused, errors = _open_offline(browser, f"{base_url}/heatmap?symbol={SYMBOL}", base_url)
    yield page
    assert (refused, errors) == ([], [])
    page.close()


def _x_range_hours(page) -> float:
    start, end = page.evaluate("document.getElementById('liqheat-plot').layout.xaxis.range")
    return (end - start) / HOUR_MS


def _click_and_wait(page, selector: str, range_name: str | None = None) -> None:
    page.click(selector)
    condition = (
        f"document.getElementById('liqheat-plot').dataset.range === '{range_name}'"
        if range_name
        else "true"
    )
    page.wait_for_function(condition)
    page.wait_for_timeout(200)


def _lit_fraction(page) -> float:
    """Share of the heatmap area's pixels clearly brighter than the page background."""
    box = page.evaluate(
        """(() => {
            const plot = document.getElementById('liqheat-plot');
            const size = plot._fullLayout._size, domain = plot._fullLayout.xaxis.domain;
            const rows = plot._fullLayout.yaxis.domain;  // the heatmap's, above the panel
            const origin = plot.getBoundingClientRect();
            return {x: origin.left + size.l + domain[0] * size.w,
                    y: origin.top + size.t + (1 - rows[1]) * size.h,
                    width: (domain[1] - domain[0]) * size.w, height: (rows[1] - rows[0]) * size.h};
        })()"""
    )
    pixels = image.imread(io.BytesIO(page.screenshot(clip=box)), format="png")[..., :3]
    background = np.array([int(style.BACKGROUND[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return float((np.abs(pixels - background).max(axis=2) > 40 / 255).mean())


def test_heatmap_is_drawn(page):
    with_heatmap = _lit_fraction(page)
    page.evaluate("Plotly.restyle('liqheat-plot', {visible: false}, [0, 1])")
    without_heatmap = _lit_fraction(page)
    assert with_heatmap > 0.25
    assert with_heatmap - without_heatmap > 0.2


def test_hovering_a_cell_shows_usd(page):
    box = page.locator("#liqheat-plot .nsewdrag").first.bounding_box()
    texts = []
    for fx in (0.3, 0.6, 0.9):
        for fy in np.linspace(0.05, 0.95, 19):
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            texts.append(page.evaluate("document.querySelector('.hoverlayer').textContent"))
    assert any(re.search(r"(long|short) liquidation levels: \$[\d,]+", text) for text in texts)


def test_range_buttons_change_the_view(page):
    assert _x_range_hours(page) == 72
    assert page.inner_text("#liqheat-resolution") == "columns: 5 min"
    for name, hours, columns in (
        ("12h", 12, "5 min"),
        ("24h", 24, "5 min"),
        ("7d", 168, "1 hour"),
        ("30d", 720, "1 hour"),
        ("3d", 72, "5 min"),
    ):
        _click_and_wait(page, f'button[data-range="{name}"]', name)
        assert _x_range_hours(page) == hours
        assert page.inner_text("#liqheat-resolution") == f"columns: {columns}"
    # Four days of history: the long ranges would show nothing the 30-day one does not.
    for name in ("90d", "180d", "1y"):
        assert page.locator(f'button[data-range="{name}"]').is_disabled()


def test_tier_filter_and_log_scale_recolour(page, database):
    def heat_total() -> float:
        return page.evaluate(
            """document.getElementById('liqheat-plot').data[0].customdata
                 .flat().reduce((a, v) => a + (v || 0), 0)"""
        )

    everything = heat_total()
    options = page.eval_on_selector_all("#liqheat-tier option", "o => o.map(x => x.textContent)")
    # The stored leverages with levels inside the page's price band (a tier above the bracket's
    # maximum is capped, e.g. 100x -> 75x; 1x-3x levels lie far outside the band).
    low, high = page.evaluate(
        """(() => { const d = JSON.parse(document.getElementById('liqheat-data').textContent)
                              .grids.fine;
                    return [d.y0, d.y0 + d.bin_size * d.rows]; })()"""
    )
    with warehouse.connect(database, read_only=True) as conn:
        stored = queries.leverage_tiers(conn, SYMBOL)
        in_band = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT leverage FROM heatmap_snapshots_by_leverage WHERE symbol = ? "
                "AND price_bucket >= ? AND price_bucket < ? ORDER BY leverage",
                [SYMBOL, low, high],
            ).fetchall()
        ]
    assert set(in_band) < set(stored)
    assert options == ["all tiers", *(f"{leverage}x" for leverage in in_band)]
    per_tier = []
    for label in options[1:]:
        page.select_option("#liqheat-tier", label=label)
        page.wait_for_timeout(300)
        per_tier.append(heat_total())
    assert all(0 < total < everything for total in per_tier)
    assert sum(per_tier) == pytest.approx(everything, rel=1e-6)
    _click_and_wait(page, 'button[data-scale="log"]')
    colour_axis = page.evaluate("document.getElementById('liqheat-plot').layout.coloraxis")
    assert colour_axis["colorbar"]["ticktext"][0].startswith("$")
    assert colour_axis["cmax"] < 10  # log10 of USD


def _usd_value(label: str) -> float:
    scale = {"k": 1e3, "M": 1e6, "B": 1e9}.get(label[-1], 1)
    return float(label[1:].rstrip("kMB")) * scale


def _saturation(page) -> float:
    """The SATURATION_QUANTILE of the cells in view (all tiers, summed in the browser), as
    page.js picks it: the value at floor(q (n - 1)) of the sorted cells."""
    values = page.evaluate(
        """(() => { const d = document.getElementById('liqheat-plot').data;
                    return d[0].customdata.concat(d[1].customdata).flat()
                               .filter((v) => v > 0); })()"""
    )
    ordered = np.sort(values)
    return float(ordered[int(np.floor(style.SATURATION_QUANTILE * (len(ordered) - 1)))])


def test_colour_scales_floor_and_usd_ticks(page):
    """Linear: 0 to the saturation, USD ticks across it. Log: the saturation down to
    LOG_DECADES below it (not the smallest cells), ticks at powers of ten (and their triples when
    there are fewer than three) in between."""
    for range_name in ("3d", "30d"):
        _click_and_wait(page, f'button[data-range="{range_name}"]', range_name)
        top = _saturation(page)
        _click_and_wait(page, 'button[data-scale="linear"]')
        layout = page.evaluate("document.getElementById('liqheat-plot').layout")
        for axis in (layout["coloraxis"], layout["coloraxis2"]):
            assert axis["cmin"] == 0 and axis["cmax"] == pytest.approx(top, rel=1e-9)
            ticks, labels = axis["colorbar"]["tickvals"], axis["colorbar"]["ticktext"]
            assert 3 <= len(ticks) <= 6 and ticks[0] == 0 and ticks[-1] > top / 2
            assert all(USD_LABEL.fullmatch(label) for label in labels), labels
            assert [_usd_value(label) for label in labels] == pytest.approx(ticks)
        _click_and_wait(page, 'button[data-scale="log"]')
        layout = page.evaluate("document.getElementById('liqheat-plot').layout")
        for axis in (layout["coloraxis"], layout["coloraxis2"]):
            assert axis["cmax"] == pytest.approx(math.log10(top), rel=1e-9)
            assert axis["cmin"] == pytest.approx(axis["cmax"] - style.LOG_DECADES)
            assert 10 ** axis["cmin"] > 1_000  # the demo's floor: ~$100k, not cents
            ticks, labels = axis["colorbar"]["tickvals"], axis["colorbar"]["ticktext"]
            assert len(ticks) >= 3
            assert all(axis["cmin"] <= tick <= axis["cmax"] for tick in ticks)
            assert all(USD_LABEL.fullmatch(label) for label in labels), labels
            assert [math.log10(_usd_value(label)) for label in labels] == pytest.approx(ticks)
    # The map's axes: USD ticks with suffixes too (no "G" for billions).
    for axis in ("xaxis2", "xaxis3"):
        labels = page.evaluate(f"document.getElementById('liqheat-plot').layout.{axis}.ticktext")
        assert len(labels) >= 3 and all(USD_LABEL.fullmatch(label) for label in labels), labels


def test_markers_shrink_and_the_price_line_stays_on_top(page):
    def markers() -> dict:
        return page.evaluate(
            f"""(() => {{ const m = document.getElementById('liqheat-plot').data[{LIQ_LONG}];
                         return {{size: Math.max(...m.marker.size), opacity: m.marker.opacity,
                                  count: m.x.length}}; }})()"""
        )

    three_days = markers()
    _click_and_wait(page, 'button[data-range="30d"]', "30d")
    thirty_days = markers()
    assert three_days["count"] > 0 and thirty_days["count"] > 0
    assert three_days["opacity"] == style.marker_opacity(timedelta(days=3))
    assert thirty_days["opacity"] == pytest.approx(style.marker_opacity(timedelta(days=30)))
    scale = style.marker_scale(timedelta(days=30))
    assert thirty_days["size"] == pytest.approx(three_days["size"] * scale)
    traces = page.evaluate(
        """document.getElementById('liqheat-plot').data
             .map((t) => ({name: t.name, color: t.line && t.line.color, n: (t.y || []).length}))"""
    )
    assert traces[PRICE]["name"] == "price (close)" and traces[PRICE]["color"] == style.PRICE_LINE
    assert traces[PRICE_CASING]["n"] == traces[PRICE]["n"] > 0
    assert max(LIQ_LONG, LIQ_SHORT) < PRICE_CASING < PRICE  # drawn later: on top
    shapes = page.evaluate("document.getElementById('liqheat-plot').layout.shapes")
    assert style.PRICE_LINE in [shape["line"]["color"] for shape in shapes]  # the map's price


def test_page_map_is_the_api_map(page, base_url):
    """The page's cumulative curves (computed in the browser) equal GET /liquidations/map at
    the page's bin size, inside the price band the page draws (PRICE_BAND_MARGIN around the
    traded range; the API serves every level)."""
    curves = page.evaluate(
        f"""(() => {{ const d = document.getElementById('liqheat-plot').data;
                     return [d[{CUM_LONG}].x, d[{CUM_LONG}].y, d[{CUM_SHORT}].x, d[{CUM_SHORT}].y];
                  }})()"""
    )
    low, high, size = page.evaluate(
        """(() => { const d = JSON.parse(document.getElementById('liqheat-data').textContent)
                              .grids.fine;
                    return [d.y0, d.y0 + d.bin_size * d.rows, d.bin_size]; })()"""
    )
    with client(base_url) as http:
        api_map = http.get(
            "/liquidations/map", params={"symbol": SYMBOL, "price_bin_size": size}
        ).json()
    outside = 0
    for side, (usd, reach) in (("long", curves[0:2]), ("short", curves[2:4])):
        inside = [point for point in api_map[side] if low <= point["price"] < high]
        outside += len(api_map[side]) - len(inside)
        expected = sorted(inside, key=lambda point: point["reach_price"])
        got = sorted(zip(reach, usd, strict=True))
        assert len(got) == len(expected) > 0
        np.testing.assert_allclose([p for p, _ in got], [e["reach_price"] for e in expected])
        np.testing.assert_allclose(
            [u for _, u in got], [e["cumulative_usd"] for e in expected], rtol=1e-5
        )
    assert outside > 0  # the default mix reaches 1x: levels far outside the band exist


def test_clicking_a_column_moves_the_liquidation_map(page):
    before = page.evaluate("document.getElementById('liqheat-plot').layout.xaxis2.title.text")
    box = page.locator("#liqheat-plot .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    page.wait_for_timeout(500)
    after = page.evaluate("document.getElementById('liqheat-plot').layout.xaxis2.title.text")
    assert before.startswith("USD per bin at ") and after.startswith("USD per bin at ")
    assert after != before


def test_times_are_utc_whatever_the_browser_time_zone(browser, base_url):
    context = browser.new_context(timezone_id="America/New_York")
    try:
        page = context.new_page()
        page.goto(f"{base_url}/heatmap?symbol={SYMBOL}")
        page.wait_for_selector('#liqheat-plot[data-ready="1"]', timeout=30_000)
        title = page.evaluate("document.getElementById('liqheat-plot').layout.xaxis2.title.text")
        end = page.evaluate("document.getElementById('liqheat-plot').layout.xaxis.range[1]")
    finally:
        context.close()
    # The demo history ends at 2025-12-05 00:00 UTC: the map is drawn there, the axis ends there.
    assert title == "USD per bin at 2025-12-05 00:00 UTC"
    assert end == 1764892800000


def _file_page_problems(browser, path: Path) -> list[str]:
    page, refused, errors = _open_offline(browser, path.as_uri(), "file://")
    try:
        assert page.evaluate("document.getElementById('liqheat-plot').data.length") == 13
        # A click on a column redraws the map: the page's script runs against the library.
        box = page.locator("#liqheat-plot .nsewdrag").first.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
        page.wait_for_timeout(300)
    finally:
        page.close()
    return [*errors, *refused]


def test_day_page_and_latest_work_offline_from_files(browser, database, tmp_path):
    """A day's page loads Plotly from the plotly.min.js beside it; latest.html needs nothing
    beside it (opened from a folder of its own)."""
    directory = page_directory(database, SYMBOL)
    day_page = max(directory.glob("????-??-??.html"))
    assert _file_page_problems(browser, day_page) == []
    alone = Path(shutil.copy(directory / "latest.html", tmp_path / "latest.html"))
    assert sorted(tmp_path.iterdir()) == [alone]
    assert _file_page_problems(browser, alone) == []


def _epoch_ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def _trace(page, index: int) -> dict:
    return page.evaluate(
        f"""(() => {{ const t = document.getElementById('liqheat-plot').data[{index}];
                     return {{x: t.x, y: t.y, customdata: t.customdata, width: t.width}}; }})()"""
    )


def test_observed_panel_draws_the_table_rows_with_their_scope(page, database):
    end = datetime.combine(DEMO_LAST, datetime.min.time()) + timedelta(days=1)
    with warehouse.connect(database, read_only=True) as conn:
        rows = conn.execute(
            """
            SELECT bucket_start, bucket_minutes, long_usd, short_usd FROM realized_liquidations
            WHERE symbol = ? AND bucket_start >= ? AND bucket_start < ? ORDER BY bucket_start
            """,
            [SYMBOL, end - timedelta(days=30), end],
        ).df()
    assert len(rows) > 24
    long, short = _trace(page, OBSERVED_LONG), _trace(page, OBSERVED_SHORT)
    starts = [_epoch_ms(moment) for moment in rows["bucket_start"]]
    for trace, column, sign in ((long, "long_usd", -1), (short, "short_usd", 1)):
        assert trace["x"] == starts
        assert trace["width"] == [minutes * 60_000 for minutes in rows["bucket_minutes"]]
        assert trace["customdata"] == rows[column].tolist()
        assert trace["y"] == [sign * value for value in rows[column]]  # longs below the line
    label = f"observed liquidations ({OBSERVED_SCOPE}) per 60 min"
    annotations = page.locator("#liqheat-plot .annotation-text").all_text_contents()
    assert any(text.startswith(label) for text in annotations), annotations
    assert any("modelled liquidations" in text for text in annotations)
    # Bars are drawn in the panel's subplot (x, y3): one per bucket and side.
    assert page.locator("#liqheat-plot .subplot.xy3 .bars .point").count() == 2 * len(rows)
    # The panel's scale follows the buckets in view.
    _click_and_wait(page, 'button[data-range="12h"]', "12h")
    in_view = rows[rows["bucket_start"] >= end - timedelta(hours=12)]
    top = max(in_view["long_usd"].max(), in_view["short_usd"].max())
    axis = page.evaluate("document.getElementById('liqheat-plot').layout.yaxis3")
    assert axis["tickvals"] == [-top, 0, top]


def test_coverage_and_skill_are_the_stored_values(page, database):
    end = datetime.combine(DEMO_LAST, datetime.min.time()) + timedelta(days=1)
    with warehouse.connect(database, read_only=True) as conn:
        ledger = conn.execute(
            "SELECT ts, side, coverage FROM candle_ledger WHERE symbol = ? AND ts < ?",
            [SYMBOL, end],
        ).df()
    last = ledger[ledger["ts"] == ledger["ts"].max()].set_index("side")["coverage"]
    total = (last["long"] + last["short"]) / 2
    assert page.inner_text("#liqheat-coverage") == (
        f"modelled levels cover {100 * total:.0f} % of open interest "
        f"(long {100 * last['long']:.0f} %, short {100 * last['short']:.0f} %) "
        f"as of the {ledger['ts'].max():%Y-%m-%d %H:%M} UTC candle"
    )
    # The line: each hour's last candle, long and short in its hover data.
    line = _trace(page, COVERAGE)
    hourly = ledger.assign(hour=ledger["ts"].dt.floor("h"))
    ends = hourly[hourly["ts"] == hourly.groupby("hour")["ts"].transform("max")]
    pivot = ends.pivot(index="ts", columns="side", values="coverage")
    assert line["x"] == [_epoch_ms(moment) for moment in pivot.index.to_pydatetime()]
    np.testing.assert_allclose(line["y"], (pivot["long"] + pivot["short"]) / 2, rtol=1e-12)
    np.testing.assert_allclose(line["customdata"], pivot[["long", "short"]], rtol=1e-12)
    assert line["y"][0] < line["y"][-1]  # the warm-up after the start date
    scores = SKILL_WINDOWS[end]
    caption = page.inner_text("#liqheat-skill")
    assert (
        f"long {scores['model']:.2f} vs {scores['baseline_range']:.2f}, "
        f"short {scores['model'] - 0.04:.2f} vs {scores['baseline_range'] - 0.04:.2f}"
    ) in caption
    assert "48 buckets of 60 min" in caption


def test_page_without_observed_data_says_so(browser, base_url):
    """The first day's page: no realized rows, no skill window ending there; no error."""
    page, refused, errors = _open_offline(
        browser, f"{base_url}/heatmap?symbol={SYMBOL}&date=2025-12-01", base_url
    )
    try:
        assert _trace(page, OBSERVED_LONG)["x"] == []
        annotations = page.locator("#liqheat-plot .annotation-text").all_text_contents()
        assert f"no observed liquidations of {SYMBOL} in this period" in annotations
        assert page.locator("#liqheat-skill").count() == 0
        assert page.inner_text("#liqheat-coverage").startswith("modelled levels cover ")
    finally:
        page.close()
    assert (refused, errors) == ([], [])


def test_screenshot_artefact(page):
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "heatmap_page.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 20_000
