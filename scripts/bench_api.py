"""Latency of GET /liquidations/heatmap-timeseries over a real `liqheat serve` on 127.0.0.1.

Asks for 200 five-minute timestamps ending at the symbol's last snapshot, with a price bin
chosen so each timestamp carries about 100 bins, and prints JSON with p50/p95/max latency
(target: p95 <= 50 ms). Without --db it first builds a database with the real pipeline on the
synthetic DEMOUSDT market (`liqheat demo --days 3`) in a temporary directory.

    python scripts/bench_api.py [--db data/liqheat.duckdb] [--symbol BTCUSDT] [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.days import day_end
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.window import IntervalWindow
from liqheat_pipeline_tests.helpers.api_server import client, running_server

TIMESTAMPS = 200
BINS_PER_TIMESTAMP = 100
TARGET_P95_MS = 50.0
DEMO_START = date(2025, 12, 1)


def build_demo_database(directory: Path) -> Path:
    db_path = directory / "liqheat.duckdb"
    env = {
        **os.environ,
        "LIQHEAT_DB": str(db_path),
        "LIQHEAT_DATA_DIR": str(directory / "binance"),
    }
    command = [sys.executable, "-m", "liqheat_pipeline.cli", "demo", "--days", "3"]
    command += ["--start", DEMO_START.isoformat()]
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        sys.exit(f"building the demo database failed:\n{run.stdout}\n{run.stderr}")
    return db_path


def request_parameters(db_path: Path, symbol: str | None) -> dict[str, object]:
    """200 five-minute intervals ending at the last snapshot, bins merged to ~100 per step."""
    with warehouse.connect(db_path, read_only=True) as conn:
        symbol = symbol or queries.known_symbols(conn)[0]
        info = queries.symbol_info(conn, symbol)
        last = queries.snapshot_at(conn, symbol, day_end(info.last_day) - timedelta.resolution)
        end = last + timedelta(minutes=5)
        window = IntervalWindow(end - TIMESTAMPS * timedelta(minutes=5), end, 5)
        cells = queries.heatmap_cells(conn, symbol, window, queries.PriceBins(info.bucket_size))
    active = cells[(cells["long_active"] > 0) | (cells["short_active"] > 0)]
    index = np.rint(active["price"] / info.bucket_size).astype(np.int64)

    def mean_bins(multiple: int) -> float:
        return active.assign(bin=index // multiple).groupby("ts")["bin"].nunique().mean()

    # The coarsest merge that still leaves at least ~100 non-empty bins per timestamp.
    multiple = 1
    while mean_bins(multiple + 1) >= BINS_PER_TIMESTAMP:
        multiple += 1
    return {
        "symbol": symbol,
        "start_time": window.start.isoformat(),
        "end_time": window.end.isoformat(),
        "interval": "5m",
        "price_bin_size": round(info.bucket_size * multiple, 10),
    }


def measure(http: httpx.Client, params: dict[str, object], count: int) -> tuple[list, dict]:
    for _ in range(5):  # warm-up: imports, first connection, OS page cache
        http.get("/liquidations/heatmap-timeseries", params=params).raise_for_status()
    latencies = []
    body: dict = {}
    for _ in range(count):
        started = time.perf_counter()
        response = http.get("/liquidations/heatmap-timeseries", params=params)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        body = response.json()
    return latencies, body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="DuckDB file (default: build a demo one)")
    parser.add_argument("--symbol", help="symbol (default: the first one in the database)")
    parser.add_argument("--requests", type=int, default=200)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="liqheat-bench-api-") as scratch:
        db_path = arguments.db or build_demo_database(Path(scratch))
        params = request_parameters(db_path, arguments.symbol)
        with running_server(db_path) as base_url, client(base_url) as http:
            latencies, body = measure(http, params, arguments.requests)
    levels = [len(point["levels"]) for point in body["data"]]
    latencies.sort()
    p95 = latencies[math.ceil(0.95 * len(latencies)) - 1]
    print(
        json.dumps(
            {
                "benchmark": "api_heatmap_timeseries",
                "database": "demo (built)" if arguments.db is None else str(db_path),
                "params": params,
                "timestamps": len(body["data"]),
                "mean_bins_per_timestamp": round(statistics.fmean(levels), 1) if levels else 0,
                "response_bytes": len(json.dumps(body)),
                "requests": len(latencies),
                "p50_ms": round(statistics.median(latencies), 2),
                "p95_ms": round(p95, 2),
                "max_ms": round(latencies[-1], 2),
                "target_p95_ms": TARGET_P95_MS,
                "meets_target": p95 <= TARGET_P95_MS,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
