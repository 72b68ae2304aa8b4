"""Benchmark the heatmap page's size and load time in headless Chromium; prints one JSON object.

Cases: a synthetic DEMOUSDT year (built directly with the engine and the model store, 30 days
per write, in a DuckDB file under --work, reused when present) rendered at the ends of its 30th,
90th, 180th and 365th day (pages holding 30 days, 90 days, 180 days and a year of history), and
the real 30-day BTCUSDT sample when a DuckDB file of it is given (--real-db, e.g. the file
``make backfill-real`` writes). Per page, both as ``latest.html`` and the API serve it (Plotly
inlined) and as a day page (loading ``plotly.min.js`` beside it): its bytes, the seconds from
navigation to the plot's ``data-ready`` attribute (the default 3-day view drawn), the page's
own clock at the end of parsing (the HTML and Plotly's library), at the first view's cells
decoded and at its first draw, and the seconds each range button takes to redraw (the
self-contained page). The machine's load average is reported: other processes skew every
figure. ``--plotly-js FILE`` measures the pages with another build of plotly.js in place of
the project's (e.g. a partial bundle) without changing the project.

    python scripts/bench_page.py [--work DIR] [--real-db FILE] [--repeat 3] [--plotly-js FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.days import day_end
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL, generate_demo_market
from liqheat_pipeline.lib.engine.brackets import bracket_table_frame
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.engine.state import ModelState
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.history import load_history
from liqheat_pipeline.lib.heatmap.page import (
    PLOTLY_FILE,
    RANGES,
    plotly_bundle,
    render_page,
    self_contained,
)
from liqheat_pipeline.lib.model import store
from liqheat_pipeline.lib.model.days import run_days
from liqheat_pipeline_tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS

SYNTHETIC_START = date(2025, 1, 1)
SYNTHETIC_DAYS = 365
PAGE_HISTORY_DAYS = (30, 90, 180, 365)
WRITE_CHUNK_DAYS = 30
BUILD_MEMORY_LIMIT = "3GB"
READY = '#liqheat-plot[data-ready="1"]'
PAGE_CLOCK = """(() => {
    const mark = (name) => performance.getEntriesByName(name)[0].startTime / 1000;
    return {parsed: performance.getEntriesByType("navigation")[0].domInteractive / 1000,
            decoded: mark("liqheat-decoded"), drawn: mark("liqheat-drawn")};
})()"""


def build_synthetic_year(db_path: Path, start: date = SYNTHETIC_START, days: int = SYNTHETIC_DAYS):
    """The DEMOUSDT market and its model for ``days`` days in ``db_path``: candles, open
    interest and every model table, as the pipeline writes them (without its checks)."""
    candles, open_interest = generate_demo_market(start, days)
    config = ModelConfig()
    with warehouse.connect(db_path) as conn:
        # DuckDB's default buffer pool is 80 % of the machine's memory; a year's writes fill it.
        conn.execute(f"SET memory_limit = '{BUILD_MEMORY_LIMIT}'")
        conn.execute("SET enable_progress_bar = false")
        warehouse.ensure_schema(conn)
        for table, frame in (("candles", candles), ("open_interest", open_interest)):
            conn.register("_rows", frame.assign(symbol=DEMO_SYMBOL))
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
            conn.unregister("_rows")
        state = None
        for offset in range(0, days, WRITE_CHUNK_DAYS):
            chunk = [
                start + timedelta(days=d)
                for d in range(offset, min(days, offset + WRITE_CHUNK_DAYS))
            ]
            market = store.load_market(conn, DEMO_SYMBOL, chunk[0], chunk[-1] + timedelta(1))
            results = run_days(DEMO_SYMBOL, chunk, market, config, state)
            history = store.history_stamps(conn, DEMO_SYMBOL, chunk[0] - timedelta(days=1))
            conn.execute("BEGIN")
            store.write_days(
                conn, DEMO_SYMBOL, results, bracket_table_frame(), expected_history=history
            )
            conn.execute("COMMIT")
            last = results[-1]
            state = ModelState.restore(last.state_metadata, last.state_levels)
            del results
            print(f"synthetic year: {chunk[-1]} written", file=sys.stderr, flush=True)


def _page_case(conn, symbol: str, end_day: date, browser, work: Path, args) -> dict:
    info = queries.symbol_info(conn, symbol)
    started = time.perf_counter()
    history = load_history(conn, info, day_end(end_day))
    day_page = render_page(history, inline_plotly=False)
    render_seconds = time.perf_counter() - started
    bundle = plotly_bundle() if args.plotly_js is None else args.plotly_js.read_text("utf-8")
    (work / PLOTLY_FILE).write_text(bundle, "utf-8")
    pages = {"self_contained": self_contained(day_page, bundle), "day_page": day_page}
    data = day_page.split('id="liqheat-data">', 1)[1].split("</script>", 1)[0]
    case = {
        "history_days": (history.end - history.first_column) / timedelta(days=1),
        "data_megabytes": round(len(data.encode()) / 1e6, 2),
        "python_render_seconds": round(render_seconds, 3),
    }
    for kind, html in pages.items():
        path = work / f"{symbol}_{end_day}_{kind}.html"
        path.write_text(html, "utf-8")
        size = len(html.encode()) + (len(bundle.encode()) if kind == "day_page" else 0)
        loads, clocks, redraws = [], [], {}
        for _ in range(args.repeat):
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            started = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector(READY, timeout=60_000)
            loads.append(time.perf_counter() - started)
            clocks.append(page.evaluate(PAGE_CLOCK))
            if kind == "self_contained":
                _redraw_ranges(page, redraws)
            page.close()
        fastest = min(range(len(loads)), key=loads.__getitem__)
        case[kind] = {
            "bytes": len(html.encode()),
            "megabytes_with_plotly": round(size / 1e6, 2),
            "load_to_data_ready_seconds": round(loads[fastest], 3),
            "load_seconds_all_runs": [round(s, 3) for s in loads],
            "page_clock_seconds": {k: round(v, 3) for k, v in clocks[fastest].items()},
            **({"range_redraw_seconds": redraws} if redraws else {}),
        }
    grids = {"fine": history.fine.window.slots, "coarse": history.coarse.window.slots}
    if history.long is not None:
        grids["long"] = history.long.grid.window.slots
    case["columns"] = grids
    case["long_bin_size"] = None if history.long is None else history.long.bins.size
    return case


def _redraw_ranges(page, redraws: dict) -> None:
    """Seconds each enabled range button takes to redraw (the fastest run's) into ``redraws``."""
    for name in RANGES:
        button = page.locator(f'button[data-range="{name}"]')
        if button.is_disabled():
            redraws[name] = None
            continue
        started = time.perf_counter()
        button.click()
        page.wait_for_function(
            f"document.getElementById('liqheat-plot').dataset.range === '{name}'"
        )
        seconds = time.perf_counter() - started
        redraws[name] = round(min(seconds, redraws.get(name) or seconds), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_page")
    parser.add_argument("--real-db", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plotly-js", type=Path, default=None)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.work.mkdir(parents=True, exist_ok=True)
    synthetic_db = args.work / "synthetic_year.duckdb"
    report: dict = {"cases": {}}
    if not synthetic_db.exists():
        started = time.perf_counter()
        build_synthetic_year(synthetic_db)
        report["synthetic_build_seconds"] = round(time.perf_counter() - started, 1)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        with warehouse.connect(synthetic_db, read_only=True) as conn:
            conn.execute("SET enable_progress_bar = false")
            for days in PAGE_HISTORY_DAYS:
                end_day = SYNTHETIC_START + timedelta(days=days - 1)
                report["cases"][f"synthetic_{DEMO_SYMBOL}_{days}d"] = _page_case(
                    conn, DEMO_SYMBOL, end_day, browser, args.work, args
                )
        if args.real_db is not None:
            with warehouse.connect(args.real_db, read_only=True) as conn:
                last = queries.symbol_info(conn, "BTCUSDT").last_day
                report["cases"]["real_BTCUSDT_30d"] = _page_case(
                    conn, "BTCUSDT", last, browser, args.work, args
                )
        else:
            report["cases"]["real_BTCUSDT_30d"] = {"skipped": "no --real-db given"}
        browser.close()
    report["targets"] = {
        f"{name}/{kind}": {
            "page_max_8_mb": case[kind]["megabytes_with_plotly"] <= 8.0,
            "load_max_2_s": case[kind]["load_to_data_ready_seconds"] <= 2.0,
        }
        for name, case in report["cases"].items()
        for kind in ("self_contained", "day_page")
        if kind in case
    }
    report["load_average"] = [round(value, 2) for value in os.getloadavg()]
    report["cpu_count"] = os.cpu_count()
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
