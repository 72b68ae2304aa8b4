"""Realized-liquidation readers: the real CoinGlass file, every rule, and the source precedence."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqheat_pipeline.lib.archive.readers import ArchiveFormatError
from liqheat_pipeline.lib.realized.readers import (
    base_asset,
    read_coinglass_directory,
    read_coinglass_file,
    read_liquidation_snapshot,
    read_realized,
)
from liqheat_pipeline_tests.conftest import REAL_COINGLASS_FILE, SHARED_LIQUIDATIONS
from liqheat_pipeline_tests.helpers.archive_fixtures import csv_bytes, write_file

REAL_FILE = REAL_COINGLASS_FILE
# Written out from SOURCES.md, not taken from the code under test.
COINGLASS_HEADER = "timestamp,datetime_utc,longUsd,shortUsd,totalUsd"
SNAPSHOT_HEADER = (
    "time,side,order_type,time_in_force,original_quantity,price,average_price,order_status,"
    "last_fill_quantity,accumulated_fill_quantity"
)
COLUMNS = ["bucket_start", "bucket_minutes", "long_usd", "short_usd", "source", "scope"]
HOUR = timedelta(hours=1)
DAY = date(2025, 12, 1)
MIDNIGHT = datetime(2025, 12, 1)
BTC_SCOPE = "BTC all contracts; Binance+Bybit+OKX (CoinGlass aggregate)"
SNAPSHOT_SCOPE = "BTCUSDT only; Binance USDⓈ-M (archive liquidationSnapshot)"


def ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def coinglass_row(moment: datetime, long_usd: float, short_usd: float) -> list[str]:
    iso = f"{moment:%Y-%m-%dT%H:%M:%S}.000Z"
    return [str(ms(moment)), iso, repr(long_usd), repr(short_usd), repr(long_usd + short_usd)]


def hourly_rows(hours, start: datetime = MIDNIGHT) -> list[list[str]]:
    """CoinGlass rows at the given hour offsets, values derived from the offset."""
    return [coinglass_row(start + h * HOUR, 1000.0 + h, 10.5 * h) for h in hours]


def coinglass_file(root: Path, rows, name="BTC-1h.csv", header=COINGLASS_HEADER) -> Path:
    return write_file(root / "coinglass" / "BTC" / name, csv_bytes(rows, header))


def snapshot_path(root: Path, day: date = DAY, suffix: str = ".csv") -> Path:
    name = f"BTCUSDT-liquidationSnapshot-{day.isoformat()}{suffix}"
    return root / "futures/um/daily/liquidationSnapshot/BTCUSDT" / name


def order(moment: datetime, side: str, average_price: float, filled: float) -> list[str]:
    return [
        str(ms(moment)),
        side,
        "LIMIT",
        "IOC",
        repr(filled),
        repr(average_price * 0.99),
        repr(average_price),
        "FILLED",
        repr(filled),
        repr(filled),
    ]


def snapshot_file(root: Path, orders, day=DAY, suffix=".csv", header=SNAPSHOT_HEADER) -> Path:
    return write_file(snapshot_path(root, day, suffix), csv_bytes(orders, header))


def format_error(call, path: Path, line: int | None, *fragments: str) -> ArchiveFormatError:
    """Run ``call``; assert it raised ArchiveFormatError naming the file, the line and fragments."""
    with pytest.raises(ArchiveFormatError) as caught:
        call()
    message = str(caught.value)
    assert path.name in message
    assert caught.value.line == line
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


# ---- the real CoinGlass export ----------------------------------------------------------------


@pytest.mark.usefixtures("real_liquidations_dir")
def test_real_file_reads_as_hourly_buckets_with_its_one_gap():
    read = read_coinglass_file(REAL_FILE, "BTC")
    raw = pd.read_csv(REAL_FILE)
    assert list(read.frame.columns) == COLUMNS
    assert len(read.frame) == read.rows_read == len(raw) == 930
    assert read.duplicates_dropped == 0
    assert read.missing_buckets == (datetime(2025, 12, 27, 2),)
    assert read.frame["bucket_start"].dtype == "datetime64[ns]"
    assert read.frame["bucket_start"].iloc[0] == pd.Timestamp("2025-11-23 05:00")
    assert read.frame["bucket_start"].is_monotonic_increasing
    assert set(read.frame["bucket_minutes"]) == {60}
    np.testing.assert_array_equal(read.frame["long_usd"], raw["longUsd"])
    np.testing.assert_array_equal(read.frame["short_usd"], raw["shortUsd"])
    assert read.sources == (REAL_FILE.name,)
    assert read.scopes == (BTC_SCOPE,)


@pytest.mark.usefixtures("real_liquidations_dir")
def test_real_december_has_719_buckets_and_eth_has_none(tmp_path):
    btc = read_realized(SHARED_LIQUIDATIONS, tmp_path, "BTCUSDT", MIDNIGHT, datetime(2025, 12, 31))
    assert len(btc.frame) == 719
    assert btc.missing_buckets == (datetime(2025, 12, 27, 2),)
    assert pd.Timestamp("2025-12-27 02:00") not in set(btc.frame["bucket_start"])
    eth = read_realized(SHARED_LIQUIDATIONS, tmp_path, "ETHUSDT", MIDNIGHT, datetime(2025, 12, 31))
    assert eth.frame.empty and list(eth.frame.columns) == COLUMNS
    assert eth.missing_buckets == () and eth.rows_read == 0


# ---- CoinGlass rules --------------------------------------------------------------------------


def test_a_gap_stays_missing_and_is_not_a_zero(tmp_path):
    path = coinglass_file(tmp_path, hourly_rows([0, 1, 2, 5, 6]))
    read = read_coinglass_file(path, "BTC")
    assert list(read.frame["bucket_start"]) == [MIDNIGHT + h * HOUR for h in (0, 1, 2, 5, 6)]
    assert read.missing_buckets == (MIDNIGHT + 3 * HOUR, MIDNIGHT + 4 * HOUR)
    assert read.frame["long_usd"].tolist() == [1000.0, 1001.0, 1002.0, 1005.0, 1006.0]


def test_identical_duplicates_are_dropped_and_counted(tmp_path):
    rows = hourly_rows(range(4))
    path = coinglass_file(tmp_path, [*rows, rows[1], rows[3]])
    read = read_coinglass_file(path, "BTC")
    assert (read.rows_read, read.duplicates_dropped, len(read.frame)) == (6, 2, 4)


def test_identical_duplicates_across_files_are_dropped_and_counted(tmp_path):
    coinglass_file(tmp_path, hourly_rows(range(6)), name="a.csv")
    coinglass_file(tmp_path, hourly_rows(range(4, 10)), name="b.csv")
    read = read_coinglass_directory(tmp_path / "coinglass" / "BTC")
    assert len(read.frame) == 10 and read.duplicates_dropped == 2 and read.rows_read == 12
    # the overlap is kept once, from the first file by name
    assert read.frame["source"].tolist() == ["a.csv"] * 6 + ["b.csv"] * 4


def test_conflicting_duplicates_name_the_lines_and_the_time(tmp_path):
    rows = hourly_rows(range(3))
    path = coinglass_file(tmp_path, [*rows, coinglass_row(MIDNIGHT + HOUR, 5.0, 6.0)])
    format_error(
        lambda: read_coinglass_file(path, "BTC"), path, 5, "2025-12-01 01:00:00", "lines 3 and 5"
    )


def test_conflicting_duplicates_across_files_name_both_files_and_the_time(tmp_path):
    coinglass_file(tmp_path, hourly_rows(range(3)), name="a.csv")
    conflicting = [coinglass_row(MIDNIGHT + 2 * HOUR, 1.0, 2.0), *hourly_rows([3])]
    second = coinglass_file(tmp_path, conflicting, name="b.csv")
    error = format_error(
        lambda: read_coinglass_directory(tmp_path / "coinglass" / "BTC"),
        second,
        None,
        "a.csv",
        "2025-12-01 02:00:00",
    )
    assert "conflicting" in str(error)


def test_files_with_different_bucket_lengths_in_one_folder_are_an_error(tmp_path):
    coinglass_file(tmp_path, hourly_rows(range(3)), name="a.csv")
    four_hourly = [coinglass_row(datetime(2025, 12, 2) + 4 * h * HOUR, 1.0, 1.0) for h in range(3)]
    second = coinglass_file(tmp_path, four_hourly, name="b.csv")
    format_error(
        lambda: read_coinglass_directory(tmp_path / "coinglass" / "BTC"),
        second,
        None,
        "240-minute buckets",
        "a.csv has 60-minute",
    )


@pytest.mark.parametrize("name", ["BTC-4h.csv", "export.csv"])
def test_other_bucket_lengths_come_from_the_name_or_the_steps(tmp_path, name):
    rows = [coinglass_row(MIDNIGHT + 4 * h * HOUR, 1.0, 2.0) for h in (0, 1, 3)]
    read = read_coinglass_file(coinglass_file(tmp_path, rows, name=name), "BTC")
    assert set(read.frame["bucket_minutes"]) == {240}
    assert read.missing_buckets == (MIDNIGHT + 8 * HOUR,)


def test_the_named_interval_wins_over_sparse_steps(tmp_path):
    """Hours 0, 1, 3, 5: the most common step is 2 h, but the name says 1 h buckets."""
    read = read_coinglass_file(coinglass_file(tmp_path, hourly_rows([0, 1, 3, 5])), "BTC")
    assert set(read.frame["bucket_minutes"]) == {60}
    assert read.missing_buckets == (MIDNIGHT + 2 * HOUR, MIDNIGHT + 4 * HOUR)


@pytest.mark.parametrize(
    ("name", "origin"), [("BTC-1h.csv", "named in the file name"), ("x.csv", "most common step")]
)
def test_a_bucket_length_that_changes_is_an_error(tmp_path, name, origin):
    half_hour = coinglass_row(MIDNIGHT + 2.5 * HOUR, 1.0, 1.0)
    rows = [*hourly_rows(range(3)), half_hour, *hourly_rows(range(3, 6))]
    path = coinglass_file(tmp_path, rows, name=name)
    format_error(
        lambda: read_coinglass_file(path, "BTC"),
        path,
        5,
        "2025-12-01 02:30:00 is 30 minutes after the bucket 2025-12-01 02:00:00",
        "60 minutes grid",
        origin,
    )


def test_a_timestamp_off_the_grid_is_an_error_even_after_a_gap(tmp_path):
    rows = [*hourly_rows(range(3)), coinglass_row(MIDNIGHT + 5 * HOUR + timedelta(minutes=1), 1, 1)]
    path = coinglass_file(tmp_path, [*rows, *hourly_rows(range(7, 9))])
    format_error(lambda: read_coinglass_file(path, "BTC"), path, 5, "181 minutes after")


def test_a_single_bucket_needs_the_interval_in_the_name(tmp_path):
    assert len(read_coinglass_file(coinglass_file(tmp_path, hourly_rows([0])), "BTC").frame) == 1
    path = coinglass_file(tmp_path, hourly_rows([0]), name="export.csv")
    format_error(lambda: read_coinglass_file(path, "BTC"), path, None, "bucket length")


def _with_cell(row: list[str], column: int, value: str) -> list[str]:
    return [*row[:column], value, *row[column + 1 :]]


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        (2, "-5.0", "longUsd -5.0 is negative"),
        (3, "lots", "shortUsd 'lots' is not a number"),
        (4, "2000.0", "totalUsd 2000.0 is not longUsd + shortUsd = 1034.5"),
        (1, "2025-12-01T04:00:00.000Z", "disagrees with timestamp 1764558000000"),
        (1, "yesterday", "datetime_utc 'yesterday' is not an ISO 8601 time"),
        (0, "1.5", "timestamp 1.5 is not a whole number"),
        (2, "", "longUsd is empty"),
    ],
)
def test_bad_values_name_file_line_and_problem(tmp_path, column, value, fragment):
    rows = hourly_rows(range(5))
    rows[3] = _with_cell(rows[3], column, value)
    path = coinglass_file(tmp_path, rows)
    format_error(lambda: read_coinglass_file(path, "BTC"), path, 5, fragment)


def test_total_within_float_rounding_is_accepted(tmp_path):
    rows = hourly_rows(range(3))
    rows[1] = _with_cell(rows[1], 4, repr(float(rows[1][4]) * (1 + 1e-12)))
    assert len(read_coinglass_file(coinglass_file(tmp_path, rows), "BTC").frame) == 3


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("timestamp,datetime_utc,long,short,total", "header 'timestamp,datetime_utc,long"),
        ("timestamp,datetime_utc,shortUsd,longUsd,totalUsd", "expected timestamp,datetime_utc"),
        (None, "header '1764547200000,"),
    ],
)
def test_a_wrong_or_missing_header_is_an_error(tmp_path, header, fragment):
    path = coinglass_file(tmp_path, hourly_rows(range(3)), header=header)
    format_error(lambda: read_coinglass_file(path, "BTC"), path, 1, fragment)


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        (b"", None, "the file is empty"),
        (b"\n \n", None, "the file is empty"),
        (f"{COINGLASS_HEADER}\n".encode(), 1, "no data rows"),
    ],
)
def test_an_empty_file_is_an_error(tmp_path, content, line, fragment):
    path = write_file(tmp_path / "coinglass" / "BTC" / "x.csv", content)
    format_error(lambda: read_coinglass_file(path, "BTC"), path, line, fragment)


@given(
    present=st.sets(st.integers(0, 95), min_size=1),
    noise=st.lists(st.floats(0, 1e9, allow_nan=False), min_size=96, max_size=96),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_subset_of_hours_reads_back_exactly_with_the_rest_missing(tmp_path, present, noise):
    """Oracle: the rows written are the rows read; the hours between them are the gaps."""
    hours = sorted(present)
    rows = [coinglass_row(MIDNIGHT + h * HOUR, noise[h], noise[-1 - h]) for h in hours]
    read = read_coinglass_file(coinglass_file(tmp_path, rows), "BTC")
    assert list(read.frame["bucket_start"]) == [MIDNIGHT + h * HOUR for h in hours]
    # pandas' fast float parser may land one ulp off the written decimal
    np.testing.assert_allclose(read.frame["long_usd"], [noise[h] for h in hours], rtol=1e-15)
    np.testing.assert_allclose(read.frame["short_usd"], [noise[-1 - h] for h in hours], rtol=1e-15)
    gaps = sorted(set(range(hours[0], hours[-1] + 1)) - set(hours))
    assert read.missing_buckets == tuple(MIDNIGHT + h * HOUR for h in gaps)


# ---- Binance archive liquidationSnapshot ------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".zip"])
def test_snapshot_orders_sum_into_24_hourly_buckets(tmp_path, suffix):
    orders = [
        order(MIDNIGHT + timedelta(minutes=5), "SELL", 90_000.0, 0.5),
        order(MIDNIGHT + timedelta(minutes=59, seconds=59), "SELL", 90_100.0, 0.25),
        order(MIDNIGHT + timedelta(minutes=30), "BUY", 91_000.0, 2.0),
        order(MIDNIGHT + timedelta(hours=23, minutes=59), "BUY", 92_000.0, 0.001),
    ]
    read = read_liquidation_snapshot(snapshot_file(tmp_path, orders, suffix=suffix), "BTCUSDT")
    frame = read.frame
    assert list(frame.columns) == COLUMNS
    assert list(frame["bucket_start"]) == [MIDNIGHT + h * HOUR for h in range(24)]
    assert set(frame["bucket_minutes"]) == {60}
    assert frame["long_usd"][0] == pytest.approx(90_000.0 * 0.5 + 90_100.0 * 0.25)
    assert frame["short_usd"][0] == pytest.approx(91_000.0 * 2.0)
    assert frame["short_usd"][23] == pytest.approx(92.0)
    # hours without orders are 0: the file covers its whole day
    assert frame["long_usd"][1:].sum() == 0 and frame["short_usd"][1:23].sum() == 0
    assert read.missing_buckets == ()
    assert read.scopes == (SNAPSHOT_SCOPE,)
    assert read.sources == (f"BTCUSDT-liquidationSnapshot-2025-12-01{suffix}",)


def test_snapshot_without_header_and_with_identical_orders(tmp_path):
    once = order(MIDNIGHT + 3 * HOUR, "SELL", 100.0, 3.0)
    path = snapshot_file(tmp_path, [once, once, order(MIDNIGHT, "BUY", 1.0, 1.0)], header=None)
    read = read_liquidation_snapshot(path, "BTCUSDT")
    assert (read.rows_read, read.duplicates_dropped) == (3, 1)
    assert read.frame["long_usd"][3] == 300.0 and read.frame["long_usd"].sum() == 300.0


def test_a_header_only_snapshot_is_a_day_of_zeros(tmp_path):
    read = read_liquidation_snapshot(snapshot_file(tmp_path, []), "BTCUSDT")
    assert len(read.frame) == 24 and read.frame[["long_usd", "short_usd"]].sum().sum() == 0


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        (order(MIDNIGHT - HOUR, "SELL", 1.0, 1.0), "outside the file's day 2025-12-01"),
        (order(MIDNIGHT + 25 * HOUR, "SELL", 1.0, 1.0), "outside the file's day 2025-12-01"),
        (order(MIDNIGHT, "LONG", 1.0, 1.0), "side 'LONG' is neither SELL"),
        (order(MIDNIGHT, "BUY", -1.0, 1.0), "average_price -1.0 is negative"),
        ([*order(MIDNIGHT, "BUY", 1.0, 1.0)[:9], "x"], "accumulated_fill_quantity 'x'"),
    ],
)
def test_bad_snapshot_rows_name_file_line_and_problem(tmp_path, row, fragment):
    path = snapshot_file(tmp_path, [order(MIDNIGHT, "SELL", 1.0, 1.0), row])
    format_error(lambda: read_liquidation_snapshot(path, "BTCUSDT"), path, 3, fragment)


def test_snapshot_of_another_symbol_and_empty_snapshot_are_errors(tmp_path):
    path = snapshot_file(tmp_path, [order(MIDNIGHT, "SELL", 1.0, 1.0)])
    format_error(
        lambda: read_liquidation_snapshot(path, "ETHUSDT"), path, None, "named for BTCUSDT"
    )
    empty = write_file(snapshot_path(tmp_path, DAY + timedelta(days=1)), b"")
    format_error(lambda: read_liquidation_snapshot(empty, "BTCUSDT"), empty, None, "empty")


@given(
    orders=st.lists(
        st.tuples(
            st.integers(0, 86_400_000 - 1),
            st.sampled_from(["SELL", "BUY"]),
            st.floats(0.01, 200_000.0),
            st.floats(0.0, 50.0),
        ),
        max_size=60,
    )
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_hourly_sums_match_a_plain_oracle(tmp_path, orders):
    rows = [order(MIDNIGHT + timedelta(milliseconds=t), s, p, q) for t, s, p, q in orders]
    read = read_liquidation_snapshot(snapshot_file(tmp_path, rows), "BTCUSDT")
    unique = {tuple(row) for row in rows}
    expected = {"SELL": [0.0] * 24, "BUY": [0.0] * 24}
    for t, side, price, quantity in dict.fromkeys(orders):
        expected[side][t // 3_600_000] += price * quantity
    assert read.duplicates_dropped == len(rows) - len(unique)
    np.testing.assert_allclose(read.frame["long_usd"], expected["SELL"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(read.frame["short_usd"], expected["BUY"], rtol=1e-12, atol=1e-9)


# ---- one function, both sources ---------------------------------------------------------------


def test_archive_day_takes_precedence_and_no_bucket_appears_twice(tmp_path):
    liquidations, mirror = tmp_path / "liquidations", tmp_path / "binance"
    coinglass_file(liquidations, hourly_rows(range(72)))  # Dec 1-3 hourly
    snapshot_file(
        mirror, [order(datetime(2025, 12, 2, 7), "BUY", 10.0, 1.0)], day=date(2025, 12, 2)
    )
    read = read_realized(liquidations, mirror, "BTCUSDT", MIDNIGHT, datetime(2025, 12, 4))
    frame = read.frame
    assert len(frame) == 72 and frame["bucket_start"].is_unique
    assert frame["bucket_start"].is_monotonic_increasing
    by_day = frame.groupby(frame["bucket_start"].dt.day)["source"].unique()
    assert by_day[1].tolist() == by_day[3].tolist() == ["BTC-1h.csv"]
    assert by_day[2].tolist() == ["BTCUSDT-liquidationSnapshot-2025-12-02.csv"]
    assert frame.loc[frame["bucket_start"] == datetime(2025, 12, 2, 7), "short_usd"].item() == 10.0
    assert read.sources == ("BTC-1h.csv", "BTCUSDT-liquidationSnapshot-2025-12-02.csv")
    assert read.scopes == (BTC_SCOPE, SNAPSHOT_SCOPE)
    assert read.missing_buckets == ()


def test_a_coinglass_bucket_reaching_into_an_archive_day_is_left_out(tmp_path):
    liquidations, mirror = tmp_path / "liquidations", tmp_path / "binance"
    # 16:00-aligned daily buckets: each one straddles two UTC days.
    rows = [coinglass_row(datetime(2025, 11, 30, 16) + d * 24 * HOUR, 1.0, 2.0) for d in range(4)]
    coinglass_file(liquidations, rows, name="BTC-1d.csv")
    snapshot_file(mirror, [], day=date(2025, 12, 2))
    read = read_realized(liquidations, mirror, "BTCUSDT", MIDNIGHT, datetime(2025, 12, 4))
    coinglass = read.frame[read.frame["source"] == "BTC-1d.csv"]
    # Dec 1 16:00 reaches into Dec 2, Dec 2 16:00 starts in it: only Dec 3 16:00 is kept.
    assert coinglass["bucket_start"].tolist() == [pd.Timestamp("2025-12-03 16:00")]
    assert read.frame["bucket_start"].is_unique


def test_rows_are_limited_to_the_range_and_a_day_without_data_is_not_an_error(tmp_path):
    liquidations = tmp_path / "liquidations"
    coinglass_file(liquidations, hourly_rows(range(30)))  # Dec 1 00:00 .. Dec 2 05:00
    read = read_realized(
        liquidations, tmp_path / "binance", "BTCUSDT", MIDNIGHT + 20 * HOUR, datetime(2025, 12, 3)
    )
    assert read.frame["bucket_start"].min() == MIDNIGHT + 20 * HOUR
    assert len(read.frame) == 10
    # the rest of Dec 2 has no data: its hours are missing, not zero
    assert read.missing_buckets == tuple(MIDNIGHT + h * HOUR for h in range(30, 48))
    nothing = read_realized(
        tmp_path / "none", tmp_path / "none", "BTCUSDT", MIDNIGHT, MIDNIGHT + HOUR
    )
    assert nothing.frame.empty and nothing.missing_buckets == ()


def test_a_bad_file_outside_the_range_still_fails_the_read(tmp_path):
    liquidations = tmp_path / "liquidations"
    coinglass_file(liquidations, hourly_rows(range(3)), name="good.csv")
    bad = coinglass_file(liquidations, hourly_rows(range(100, 103)), name="old.csv", header="x,y")
    format_error(
        lambda: read_realized(liquidations, tmp_path, "BTCUSDT", MIDNIGHT, MIDNIGHT + HOUR),
        bad,
        1,
        "header",
    )


@pytest.mark.parametrize(
    ("symbol", "base"),
    [("BTCUSDT", "BTC"), ("ETHUSDC", "ETH"), ("BTCFDUSD", "BTC"), ("1000PEPEUSDT", "1000PEPE")],
)
def test_base_asset_strips_the_quote(symbol, base):
    assert base_asset(symbol) == base


@pytest.mark.parametrize("symbol", ["BTCEUR", "USDT"])
def test_unknown_quote_is_an_error_naming_the_symbol(symbol):
    with pytest.raises(ValueError, match=symbol):
        base_asset(symbol)
