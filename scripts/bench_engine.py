"""Benchmark of the liquidation engine; prints JSON.

Runs the engine day by day with carried state (as the pipeline does), producing what the
pipeline stores: levels, consumptions, closeouts, ledger and the snapshot segments per bucket
and per bucket × leverage (the snapshot views' rows are computed from them in SQL), handing each
day's output on instead of keeping it. Cases: the real 30-day BTCUSDT sample
(../shared/data/binance, skipped when absent) and the synthetic DEMOUSDT market for 30 and 365
days (generation time excluded).

    python scripts/bench_engine.py [--days 30 365] [--real-dir DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd

from liqheat_pipeline.lib.archive.readers import read_klines, read_metrics
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL, generate_demo_market
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.engine.market import split_by_day
from liqheat_pipeline.lib.engine.run import MarketSeries, run_model
from liqheat_pipeline.lib.model.store import OUTPUT_TIME_COLUMNS

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REAL_DIR = REPO.parent / "shared" / "data" / "binance"
SYNTHETIC_START = date(2025, 1, 1)


def daily_markets_from_demo(days: int) -> list[MarketSeries]:
    candles, open_interest = generate_demo_market(SYNTHETIC_START, days)
    return [market for _, market in split_by_day(candles, open_interest)]


def daily_markets_from_archive(root: Path, symbol: str) -> list[MarketSeries]:
    base = root / "futures" / "um" / "daily"
    kline_files = sorted((base / "klines" / symbol / "5m").glob("*.csv*"))
    metrics_files = sorted((base / "metrics" / symbol).glob("*.csv*"))
    candles = pd.concat([read_klines(path).frame for path in kline_files], ignore_index=True)
    open_interest = pd.concat([read_metrics(path).frame for path in metrics_files])
    return [market for _, market in split_by_day(candles, open_interest)]


def run_days(symbol: str, markets: list[MarketSeries], config: ModelConfig) -> dict:
    rows = dict.fromkeys(OUTPUT_TIME_COLUMNS, 0)
    state = None
    started, cpu_started = time.perf_counter(), time.process_time()
    for market in markets:
        output = run_model(symbol, market, config, state)
        state = output.state
        for table in rows:
            rows[table] += len(getattr(output, table))
        del output  # handed on: nothing of the day is kept
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    candles = sum(len(market) for market in markets)
    return {
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu_seconds, 4),
        "candles": candles,
        "us_per_candle": round(seconds / candles * 1e6, 2),
        "rows": rows,
        "rows_total": sum(rows.values()),
        "active_levels_at_end": len(state),
    }


def best_of(repeat: int, symbol: str, markets: list[MarketSeries], config: ModelConfig) -> dict:
    runs = [run_days(symbol, markets, config) for _ in range(repeat)]
    best = min(runs, key=lambda run: run["seconds"])
    best["seconds_all_runs"] = [run["seconds"] for run in runs]
    return best


def peak_rss_mib() -> float:
    """Peak resident memory of this process since start or the last reset_peak_rss()."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    # Elsewhere: the process-wide peak (ru_maxrss is KiB on Linux, bytes on macOS).
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux), so the next reading covers what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measured(repeat: int, symbol: str, markets: list[MarketSeries], config: ModelConfig) -> dict:
    reset = reset_peak_rss()
    case = best_of(repeat, symbol, markets, config)
    case["peak_rss_mib"] = peak_rss_mib()
    case["peak_rss_scope"] = (
        "engine runs (market data in memory included)" if reset else ("whole process")
    )
    return case


def _targets(cases: dict) -> dict:
    """The brief's targets for this 2-core machine, and whether this run met them."""
    real = cases.get("real_BTCUSDT_30d", {})
    short = cases.get(f"synthetic_{DEMO_SYMBOL}_30d", {})
    year = cases.get(f"synthetic_{DEMO_SYMBOL}_365d", {})
    targets = {}
    if "seconds" in real:
        targets["real_30d_seconds_max_0.10"] = real["seconds"] <= 0.10
    if "seconds" in short:
        targets["synthetic_30d_seconds_max_0.10"] = short["seconds"] <= 0.10
    if "seconds" in year:
        targets["synthetic_365d_seconds_max_1.5"] = year["seconds"] <= 1.5
        targets["synthetic_365d_peak_rss_max_1024_mib"] = year["peak_rss_mib"] <= 1024
    if "seconds" in short and "seconds" in year:
        ratio = year["us_per_candle"] / short["us_per_candle"]
        targets["us_per_candle_365d_over_30d"] = round(ratio, 3)
        targets["us_per_candle_ratio_max_1.5"] = ratio <= 1.5
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[30, 365])
    parser.add_argument("--real-dir", type=Path, default=DEFAULT_REAL_DIR)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    config = ModelConfig()
    report: dict = {"cases": {}}
    if (args.real_dir / "futures" / "um" / "daily").is_dir():
        markets = daily_markets_from_archive(args.real_dir, "BTCUSDT")
        report["cases"]["real_BTCUSDT_30d"] = measured(args.repeat, "BTCUSDT", markets, config)
    else:
        report["cases"]["real_BTCUSDT_30d"] = {"skipped": f"no sample at {args.real_dir}"}
    for days in sorted(args.days):
        markets = daily_markets_from_demo(days)
        report["cases"][f"synthetic_{DEMO_SYMBOL}_{days}d"] = measured(
            args.repeat, DEMO_SYMBOL, markets, config
        )
        del markets
    report["targets"] = _targets(report["cases"])
    report["python"] = sys.version.split()[0]
    report["cpu_count"] = os.cpu_count()
    # Other work on the machine inflates wall-clock seconds; cpu_seconds is this process only.
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    report["note"] = (
        "seconds: best of --repeat wall-clock runs of the engine only (reading or generating "
        "the market excluded); rows: all output rows handed on, none kept"
    )
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
