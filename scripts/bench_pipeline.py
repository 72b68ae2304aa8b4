"""Benchmark the pipeline as users run it; prints one JSON object.

1. The 30-day range for BTCUSDT and ETHUSDT in a fresh DuckDB file through the real CLI
   (`dagster asset materialize --select '*' --partition-range ...`): process start, Dagster,
   ingest, model, checks, realized liquidations, skill, pages and DuckDB writes (target <= 30 s).
2. One incremental daily partition for one symbol, the day after an existing range, through the
   same CLI including process start (issue 10: <= 3 s).
3. p95 latency of the README heatmap query (200 intervals x 100 price buckets) on the result of
   (1) (target <= 20 ms).

Runs use the CLI's default in-memory Dagster instance, like the README command;
--dagster-home records them in a temporary DAGSTER_HOME (SQLite), as `make dev` does.
The machine's load average is reported: other processes on the host skew every figure.

Usage: python scripts/bench_pipeline.py [--data-dir DIR] [--queries N] [--dagster-home]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.heatmap import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "binance"
# Realized liquidations for the realized_liquidations and model_skill assets (absent: 0 rows).
LIQUIDATIONS_DIR = REPO_ROOT.parent / "shared" / "data" / "liquidations"
FIRST_DAY, LAST_DAY = "2025-12-01", "2025-12-30"
HEATMAP_INTERVALS, HEATMAP_BUCKETS, HEATMAP_INTERVAL_MINUTES = 200, 100, 60
HEATMAP_SYMBOL = "BTCUSDT"
QUERY_WARMUP = 20


_STEP_DONE = re.compile(r'Finished execution of step "(\w+)" in ([0-9.]+)(m?s)')


def step_seconds(log: str) -> dict[str, float]:
    """Seconds per step of a run's log, summed over symbols (`btcusdt_model` -> `model`)."""
    totals: dict[str, float] = {}
    for step, value, unit in _STEP_DONE.findall(log):
        kind = step.split("_", 1)[1].lstrip("_")
        seconds = float(value) / (1000 if unit == "ms" else 1)
        totals[kind] = round(totals.get(kind, 0.0) + seconds, 2)
    return totals


def _materialize(env: dict[str, str], partition_args: list[str]) -> tuple[float, dict]:
    """Wall time of one `dagster asset materialize` process over every asset, and the seconds
    its steps took by kind."""
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
    return elapsed, step_seconds(completed.stdout + completed.stderr)


def _env(
    work: Path, name: str, data_dir: Path, symbols: str, *, persistent: bool
) -> dict[str, str]:
    """The README command's environment; ``persistent`` adds a DAGSTER_HOME (SQLite run and
    event storage, as under `make dev`) instead of the CLI's default in-memory instance."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("LIQHEAT_") and k != "DAGSTER_HOME"
    }
    if persistent:
        home = work / f"dagster_home_{name}"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env["DAGSTER_HOME"] = str(home)
    return {
        **env,
        "LIQHEAT_DATA_DIR": str(data_dir),
        "LIQHEAT_LIQUIDATIONS_DIR": str(LIQUIDATIONS_DIR),
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
            return sql.heatmap(
                conn, HEATMAP_SYMBOL, start, end, HEATMAP_INTERVAL_MINUTES,
                price_low=low, price_high=high,
            )  # fmt: skip

        for _ in range(QUERY_WARMUP):
            frame = run()
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
    parser.add_argument(
        "--dagster-home",
        action="store_true",
        help="record runs in a temporary DAGSTER_HOME (SQLite) instead of in memory",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    if not (args.data_dir / "futures").is_dir():
        raise SystemExit(f"no Binance sample at {args.data_dir} (use --data-dir)")

    with tempfile.TemporaryDirectory(prefix="liqheat-bench-") as tmp:
        work = Path(tmp)
        full = _env(work, "full", args.data_dir, "BTCUSDT,ETHUSDT", persistent=args.dagster_home)
        range_seconds, range_steps = _materialize(
            full, ["--partition-range", f"{FIRST_DAY}...{LAST_DAY}"]
        )
        with warehouse.connect(full["LIQHEAT_DB"], read_only=True) as conn:
            (snapshot_rows,) = conn.execute("SELECT count(*) FROM heatmap_snapshots").fetchone()
            size_mb = Path(full["LIQHEAT_DB"]).stat().st_size / 1e6

        single = _env(work, "incremental", args.data_dir, "BTCUSDT", persistent=args.dagster_home)
        previous_day = (datetime.fromisoformat(LAST_DAY) - timedelta(days=1)).date().isoformat()
        _materialize(single, ["--partition-range", f"{FIRST_DAY}...{previous_day}"])
        incremental_seconds, incremental_steps = _materialize(single, ["--partition", LAST_DAY])

        heatmap = _heatmap_latencies(Path(full["LIQHEAT_DB"]), args.queries)

    print(
        json.dumps(
            {
                "range_30_days_2_symbols": {
                    "seconds": round(range_seconds, 2),
                    "target_seconds": 30,
                    "days": f"{FIRST_DAY}...{LAST_DAY}",
                    "step_seconds": range_steps,
                    "heatmap_snapshot_rows": snapshot_rows,
                    "database_mb": round(size_mb, 1),
                },
                "incremental_1_day_1_symbol": {
                    "seconds": round(incremental_seconds, 2),
                    "target_seconds": 3,
                    "day": LAST_DAY,
                    "step_seconds": incremental_steps,
                },
                "heatmap_query": {**heatmap, "target_p95_ms": 20},
                "dagster_instance": "DAGSTER_HOME (SQLite)" if args.dagster_home else "in-memory",
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_average_1m_before": round(load_before, 2),
                    "python": sys.version.split()[0],
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
