"""Benchmark the synthetic DEMOUSDT generator and archive writer; prints one JSON object."""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date

import numpy as np

from liqheat_pipeline.lib.demo.market import generate_demo_market, write_demo_archive

START = date(2025, 12, 1)
REPEATS = 7


def _median_seconds(action: Callable[[], object], repeats: int = REPEATS) -> float:
    action()  # warm-up: imports, allocator, page cache
    timings = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        timings.append(time.perf_counter() - began)
    return statistics.median(timings)


def main() -> None:
    results: dict[str, object] = {
        "benchmark": "demo_market",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "repeats": REPEATS,
    }
    for days in (30, 365):
        seconds = _median_seconds(lambda days=days: generate_demo_market(START, days))
        results[f"generate_{days}d_seconds"] = round(seconds, 4)
        results[f"generate_{days}d_candles_per_second"] = round(days * 288 / seconds)
    with tempfile.TemporaryDirectory() as root:
        results["write_archive_30d_seconds"] = round(
            _median_seconds(lambda: write_demo_archive(root, START, 30), repeats=3), 4
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
