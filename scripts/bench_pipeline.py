"""Benchmark the pipeline as users run it; prints one JSON object.

1. The 30-day range for BTCUSDT and ETHUSDT in a fresh DuckDB file through the real CLI
   (`dagster asset materialize --select '*' --partition-range ...`): process start, Dagster,
   ingest, model, checks and DuckDB writes (target <= 30 s).
2. One incremental daily partition for one symbol, the day after an existing range, through the
   same CLI including process start (target <= 5 s).
3. p95 latency of the README heatmap query (200 intervals x 100 price buckets) on the result of
   (1) (target <= 20 ms).

Usage: python scripts/bench_pipeline.py [--data-dir DIR] [--queries N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from liqheat_pipeline.lib import queries, warehouse

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "binance"
FIRST_DAY, LAST_DAY = "2025-12-01", "2025-12-30"
HEATMAP_INTERVALS, HEATMAP_BUCKETS, HEATMAP_INTERVAL_MINUTES = 200, 100, 60
HEATMAP_SYMBOL = "BTCUSDT"


def _materialize(env: dict[str, str], partition_args: list[str]) -> float:
    """Wall time of one `dagster asset materialize` process over every asset."""
    command = [
        str(Path(sys.executable).with_name("dagster")),
        "asset",
        "materialize",
        "-m",
        "liqheat_pipeline.definitions",
        "--select",
        "*",
        *partition_args,
    ]
    started = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-5000:])
        raise SystemExit(f"benchmark run failed: {' '.join(command)}")
    return elapsed


def _env(work: Path, name: str, data_dir: Path, symbols: str) -> dict[str, str]:
    home = work / f"dagster_home_{name}"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQHEAT_")}
    return {
        **env,
        "DAGSTER_HOME": str(home),
        "LIQHEAT_DATA_DIR": str(data_dir),
        "LIQHEAT_DB": str(work / f"{name}.duckdb"),
        "LIQHEAT_SYMBOLS": symbols,
        "LIQHEAT_START_DATE": FIRST_DAY,
    }


def _heatmap_latencies(db_path: Path, repeats: int) -> dict[str, float | int]:
    """Time the HEATMAP query over 200 hourly intervals and 100 buckets around the price."""
    start = datetime.fromisoformat("2025-12-10")
    end = start + timedelta(minutes=HEATMAP_INTERVALS * HEATMAP_INTERVAL_MINUTES)
    with warehouse.connect(db_path, read_only=True) as conn:
        (price,) = conn.execute(
            "SELECT median(close) FROM candles WHERE symbol = ? AND open_time >= ? "
            "AND open_time < ?",
            [HEATMAP_SYMBOL, start, end],
        ).fetchone()
        (bucket,) = conn.execute(
            "SELECT bucket_size FROM model_runs WHERE symbol = ? LIMIT 1", [HEATMAP_SYMBOL]
        ).fetchone()
        low = (price // bucket - HEATMAP_BUCKETS // 2) * bucket
        high = low + HEATMAP_BUCKETS * bucket

        def run():
            return queries.heatmap(
                conn, HEATMAP_SYMBOL, start, end, HEATMAP_INTERVAL_MINUTES,
                price_low=low, price_high=high,
            )  # fmt: skip

        frame = run()  # warm-up
        latencies = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "repeats": repeats,
        "intervals": int(frame["ts"].nunique()),
        "buckets": int(frame["price_bucket"].nunique()),
        "cells": len(frame),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    if not (args.data_dir / "futures").is_dir():
        raise SystemExit(f"no Binance sample at {args.data_dir} (use --data-dir)")

    with tempfile.TemporaryDirectory(prefix="liqheat-bench-") as tmp:
        work = Path(tmp)
        full = _env(work, "full", args.data_dir, "BTCUSDT,ETHUSDT")
        range_seconds = _materialize(full, ["--partition-range", f"{FIRST_DAY}...{LAST_DAY}"])
        with warehouse.connect(full["LIQHEAT_DB"], read_only=True) as conn:
            (snapshot_rows,) = conn.execute("SELECT count(*) FROM heatmap_snapshots").fetchone()
            size_mb = Path(full["LIQHEAT_DB"]).stat().st_size / 1e6

        single = _env(work, "incremental", args.data_dir, "BTCUSDT")
        previous_day = (datetime.fromisoformat(LAST_DAY) - timedelta(days=1)).date().isoformat()
        _materialize(single, ["--partition-range", f"{FIRST_DAY}...{previous_day}"])
        incremental_seconds = _materialize(single, ["--partition", LAST_DAY])

        heatmap = _heatmap_latencies(Path(full["LIQHEAT_DB"]), args.queries)

    print(
        json.dumps(
            {
                "range_30_days_2_symbols": {
                    "seconds": round(range_seconds, 2),
                    "target_seconds": 30,
                    "days": f"{FIRST_DAY}...{LAST_DAY}",
                    "heatmap_snapshot_rows": snapshot_rows,
                    "database_mb": round(size_mb, 1),
                },
                "incremental_1_day_1_symbol": {
                    "seconds": round(incremental_seconds, 2),
                    "target_seconds": 5,
                    "day": LAST_DAY,
                },
                "heatmap_query": {**heatmap, "target_p95_ms": 20},
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
