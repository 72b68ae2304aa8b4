"""Archive layout: the relative paths match data.binance.vision; local lookup by encoding."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from liqheat_pipeline.lib.archive.layout import (
    daily_relative_path,
    find_daily_file,
    has_dataset,
    interval_duration,
    parse_daily_file_name,
)
from liqheat_pipeline.lib.symbols import SYMBOL_RULE

DAY = date(2025, 12, 1)


@pytest.mark.parametrize(
    ("dataset", "interval", "expected"),
    [
        # As published under https://data.binance.vision/data/
        ("klines", "5m", "futures/um/daily/klines/BTCUSDT/5m/BTCUSDT-5m-2025-12-01.zip"),
        ("klines", "1m", "futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2025-12-01.zip"),
        (
            "markPriceKlines",
            "5m",
            "futures/um/daily/markPriceKlines/BTCUSDT/5m/BTCUSDT-5m-2025-12-01.zip",
        ),
        ("metrics", "5m", "futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2025-12-01.zip"),
    ],
)
def test_daily_relative_paths_follow_the_archive(dataset, interval, expected):
    assert daily_relative_path(dataset, "BTCUSDT", DAY, interval=interval) == expected


def test_suffixes_change_only_the_extension():
    zipped = daily_relative_path("metrics", "ETHUSDT", DAY)
    assert daily_relative_path("metrics", "ETHUSDT", DAY, suffix=".csv.gz") == (
        zipped.removesuffix(".zip") + ".csv.gz"
    )


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"dataset": "trades"}, "dataset='trades'"),
        ({"symbol": "btc/usdt"}, "symbol='btc/usdt'"),
        ({"interval": "5x"}, "interval='5x'"),
        ({"interval": "0m"}, "interval='0m'"),
        ({"suffix": ".tar"}, "suffix='.tar'"),
    ],
)
def test_invalid_arguments_are_named(arguments, named):
    call = {"dataset": "klines", "symbol": "BTCUSDT", "day": DAY, **arguments}
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        daily_relative_path(**call)


def test_find_daily_file_prefers_zip_then_gz_then_csv(tmp_path):
    assert find_daily_file(tmp_path, "klines", "BTCUSDT", DAY) is None
    found = []
    for suffix in (".csv", ".csv.gz", ".zip"):
        path = tmp_path / daily_relative_path("klines", "BTCUSDT", DAY, suffix=suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        found.append(find_daily_file(tmp_path, "klines", "BTCUSDT", DAY))
    assert [path.name for path in found] == [
        "BTCUSDT-5m-2025-12-01.csv",
        "BTCUSDT-5m-2025-12-01.csv.gz",
        "BTCUSDT-5m-2025-12-01.zip",
    ]
    assert find_daily_file(tmp_path, "klines", "BTCUSDT", DAY + timedelta(days=1)) is None
    assert find_daily_file(tmp_path, "klines", "BTCUSDT", DAY, interval="1m") is None


def test_has_dataset_looks_for_the_symbol_folder(tmp_path):
    assert not has_dataset(tmp_path, "markPriceKlines", "BTCUSDT")
    (tmp_path / "futures/um/daily/markPriceKlines/BTCUSDT/5m").mkdir(parents=True)
    assert has_dataset(tmp_path, "markPriceKlines", "BTCUSDT")
    assert not has_dataset(tmp_path, "markPriceKlines", "ETHUSDT")
    assert not has_dataset(tmp_path, "markPriceKlines", "BTCUSDT", interval="1m")


@pytest.mark.parametrize("dataset", ["klines", "markPriceKlines", "metrics"])
@pytest.mark.parametrize("suffix", [".zip", ".csv.gz", ".csv"])
def test_file_names_parse_back(dataset, suffix):
    name = daily_relative_path(dataset, "ETHUSDT", DAY, suffix=suffix).rsplit("/", 1)[1]
    tag = "metrics" if dataset == "metrics" else "5m"
    assert parse_daily_file_name(name) == ("ETHUSDT", tag, DAY)


@pytest.mark.parametrize(
    "name",
    [
        "BTCUSDT-5m-2025-13-01.csv",
        "BTCUSDT-5m-2025-12-01.txt",
        "notes.csv",
        "x-5m-1.csv",
        # not a symbol: lower case, one character, 21 characters, a separator inside
        "btcusdt-5m-2025-12-01.csv",
        "B-5m-2025-12-01.csv",
        f"{'B' * 21}-5m-2025-12-01.csv",
        "BTC-USDT-5m-2025-12-01.csv",
        "BTC\nUSDT-5m-2025-12-01.csv",
    ],
)
def test_other_names_do_not_parse(name):
    assert parse_daily_file_name(name) is None


@pytest.mark.parametrize(
    ("interval", "duration"),
    [("1m", timedelta(minutes=1)), ("5m", timedelta(minutes=5)), ("4h", timedelta(hours=4))],
)
def test_interval_durations(interval, duration):
    assert interval_duration(interval) == duration


def test_a_bad_symbol_is_refused_with_the_symbol_rule():
    with pytest.raises(ValueError, match=re.escape(f"symbol='btcusdt': expected {SYMBOL_RULE}")):
        daily_relative_path("klines", "btcusdt", DAY)
