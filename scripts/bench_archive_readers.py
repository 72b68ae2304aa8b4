"""Time the archive readers over a local mirror (default: the real 30-day sample); prints JSON.

python scripts/bench_archive_readers.py [--data-dir DIR] [--symbols BTCUSDT,ETHUSDT]
    [--first 2025-12-01] [--days 30] [--repeat 5]
"""

import argparse
import json
import statistics
import time
from datetime import date, timedelta
from pathlib import Path

from liqheat_pipeline.lib.archive.layout import find_daily_file
from liqheat_pipeline.lib.archive.readers import read_klines, read_metrics

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "binance"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT")
    parser.add_argument("--first", type=date.fromisoformat, default=date(2025, 12, 1))
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    files = []
    for symbol in args.symbols.split(","):
        for offset in range(args.days):
            day = args.first + timedelta(days=offset)
            for dataset in ("klines", "metrics"):
                path = find_daily_file(args.data_dir, dataset, symbol, day)
                if path is None:
                    raise SystemExit(f"missing {dataset} {symbol} {day} under {args.data_dir}")
                files.append((dataset, path, day))

    timings, rows = [], 0
    for _ in range(args.repeat):
        started = time.perf_counter()
        rows = sum(
            len((read_metrics(path, day) if dataset == "metrics" else read_klines(path)).frame)
            for dataset, path, day in files
        )
        timings.append(time.perf_counter() - started)

    print(
        json.dumps(
            {
                "benchmark": "archive_readers",
                "files": len(files),
                "rows": rows,
                "repeat": args.repeat,
                "seconds_median": round(statistics.median(timings), 4),
                "seconds_min": round(min(timings), 4),
                "ms_per_file_median": round(1000 * statistics.median(timings) / len(files), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
