"""Where daily files live in a local mirror of the Binance public data archive.

The layout is the archive's own (``data.binance.vision/data/<relative path>``)::

    futures/um/daily/klines/<SYM>/<interval>/<SYM>-<interval>-<YYYY-MM-DD>.zip
    futures/um/daily/markPriceKlines/<SYM>/<interval>/<SYM>-<interval>-<YYYY-MM-DD>.zip
    futures/um/daily/metrics/<SYM>/<SYM>-metrics-<YYYY-MM-DD>.zip
    futures/um/daily/liquidationSnapshot/<SYM>/<SYM>-liquidationSnapshot-<YYYY-MM-DD>.zip

A local mirror may hold the same files unzipped (``.csv``) or gzipped (``.csv.gz``).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

from liqheat_pipeline.lib.symbols import SYMBOL_RULE, is_symbol

# The public archive; a local mirror holds the same relative paths.
PUBLIC_ARCHIVE_URL = "https://data.binance.vision/data/"

KLINES = "klines"
MARK_PRICE_KLINES = "markPriceKlines"
METRICS = "metrics"
LIQUIDATION_SNAPSHOT = "liquidationSnapshot"
DATASETS = (KLINES, MARK_PRICE_KLINES, METRICS, LIQUIDATION_SNAPSHOT)
# Kline-shaped datasets are split by interval; metrics has one fixed 5-minute cadence.
INTERVAL_DATASETS = (KLINES, MARK_PRICE_KLINES)
# Preference order when several encodings of one file exist: the archive's own zip first.
SUFFIXES = (".zip", ".csv.gz", ".csv")
UM_DAILY = "futures/um/daily"

_INTERVAL = re.compile(r"^(\d+)([mhd])$")
# <SYM>-<tag>-<YYYY-MM-DD><suffix>; the symbol (up to the first "-") is checked by ``is_symbol``.
_DAILY_NAME = re.compile(r"^([^-\s]+)-(\w+)-(\d{4}-\d{2}-\d{2})(?:\.zip|\.csv\.gz|\.csv)$")
_INTERVAL_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


def interval_duration(interval: str) -> timedelta:
    """``"5m"`` → 5 minutes; archive interval names use m (minutes), h (hours) and d (days)."""
    match = _INTERVAL.match(interval)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"interval={interval!r}: expected an archive interval such as 1m, 5m, 1h")
    return int(match.group(1)) * _INTERVAL_UNITS[match.group(2)]


def dataset_directory(dataset: str, symbol: str, interval: str = "5m") -> str:
    """The POSIX path, relative to the mirror root, of one symbol's folder of daily files."""
    _validate(dataset, symbol, interval)
    folder = f"{UM_DAILY}/{dataset}/{symbol}"
    return f"{folder}/{interval}" if dataset in INTERVAL_DATASETS else folder


def daily_relative_path(
    dataset: str, symbol: str, day: date, interval: str = "5m", suffix: str = ".zip"
) -> str:
    """The POSIX path of one daily file relative to the mirror root (and to the archive's URL)."""
    if suffix not in SUFFIXES:
        raise ValueError(f"suffix={suffix!r}: expected one of {', '.join(SUFFIXES)}")
    tag = interval if dataset in INTERVAL_DATASETS else dataset
    directory = dataset_directory(dataset, symbol, interval)
    return f"{directory}/{symbol}-{tag}-{day.isoformat()}{suffix}"


def find_daily_file(
    root: str | Path, dataset: str, symbol: str, day: date, interval: str = "5m"
) -> Path | None:
    """The local file for (dataset, symbol, day), trying .zip, .csv.gz then .csv; None if absent."""
    for suffix in SUFFIXES:
        candidate = Path(root) / daily_relative_path(dataset, symbol, day, interval, suffix)
        if candidate.is_file():
            return candidate
    return None


def parse_daily_file_name(name: str) -> tuple[str, str, date] | None:
    """``BTCUSDT-5m-2025-12-01.csv.gz`` → (``"BTCUSDT"``, ``"5m"``, 2025-12-01), else None."""
    match = _DAILY_NAME.match(name)
    if not match or not is_symbol(match.group(1)):
        return None
    try:
        day = date.fromisoformat(match.group(3))
    except ValueError:
        return None
    return match.group(1), match.group(2), day


def has_dataset(root: str | Path, dataset: str, symbol: str, interval: str = "5m") -> bool:
    """Whether the mirror has a folder for this symbol's dataset (files may still be missing)."""
    return (Path(root) / dataset_directory(dataset, symbol, interval)).is_dir()


def _validate(dataset: str, symbol: str, interval: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"dataset={dataset!r}: expected one of {', '.join(DATASETS)}")
    if not is_symbol(symbol):
        raise ValueError(f"symbol={symbol!r}: expected {SYMBOL_RULE}, e.g. BTCUSDT")
    interval_duration(interval)
