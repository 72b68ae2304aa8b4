"""The strict archive readers: every parsing rule, and a clear error for every bad input."""

from __future__ import annotations

import random
import zipfile
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqheat_pipeline.lib.archive.plausibility import PlausibilityLimits
from liqheat_pipeline.lib.archive.readers import (
    LABEL_AT_SNAPSHOT,
    LABEL_BEFORE_SNAPSHOT,
    ArchiveFormatError,
    PreviousRow,
    read_klines,
    read_metrics,
)
from liqheat_pipeline_tests.helpers.archive_fixtures import (
    KLINE_HEADER,
    METRICS_HEADER,
    csv_bytes,
    kline_rows,
    klines_path,
    metrics_path,
    metrics_rows,
    midnight,
    write_file,
)

DAY = date(2025, 12, 1)
AFTER_SWITCH = date(2026, 7, 1)
KLINE_COLUMNS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
]


def klines_file(root: Path, rows, header=KLINE_HEADER, suffix=".csv", day=DAY) -> Path:
    return write_file(klines_path(root, "BTCUSDT", day, suffix), csv_bytes(rows, header))


def metrics_file(root: Path, rows, header=METRICS_HEADER, suffix=".csv", day=DAY) -> Path:
    return write_file(metrics_path(root, "BTCUSDT", day, suffix), csv_bytes(rows, header))


def format_error(call, path: Path, line: int | None, *fragments: str) -> ArchiveFormatError:
    """Run ``call``; assert it raised ArchiveFormatError naming the file, the line and fragments."""
    with pytest.raises(ArchiveFormatError) as caught:
        call()
    message = str(caught.value)
    assert path.name in message
    assert caught.value.line == line
    if line is not None:
        assert f"line {line}:" in message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


# ---- klines: the good paths -------------------------------------------------------------------


def test_klines_give_contract_columns_in_naive_utc_with_the_file_values(tmp_path):
    rows = kline_rows(DAY)
    result = read_klines(klines_file(tmp_path, rows))
    frame = result.frame
    assert list(frame.columns) == KLINE_COLUMNS
    assert frame["open_time"].dtype == np.dtype("datetime64[ns]")
    assert frame["open_time"].iloc[0] == pd.Timestamp("2025-12-01 00:00")
    assert frame["open_time"].iloc[-1] == pd.Timestamp("2025-12-01 23:55")
    for index, column in enumerate(["open", "high", "low", "close", "volume"], start=1):
        assert frame[column].tolist() == [float(row[index]) for row in rows]
    assert (result.rows_read, result.expected_slots, result.present_slots) == (288, 288, 288)
    assert (result.missing_slots, result.duplicates_dropped) == ((), 0)


def test_empty_optional_columns_are_missing_values_and_filled_ones_are_parsed(tmp_path):
    empty = read_klines(klines_file(tmp_path / "a", kline_rows(DAY))).frame
    assert empty["quote_volume"].isna().all() and empty["taker_buy_volume"].isna().all()
    assert empty["trades"].dtype == "Int64" and empty["trades"].isna().all()

    rows = kline_rows(DAY, full_volumes=True)
    full = read_klines(klines_file(tmp_path / "b", rows)).frame
    assert full["trades"].tolist() == [int(row[8]) for row in rows]
    assert full["quote_volume"].tolist() == [float(row[7]) for row in rows]
    assert full["taker_buy_quote_volume"].tolist() == [float(row[10]) for row in rows]


@pytest.mark.parametrize("suffix", [".csv.gz", ".zip"])
@pytest.mark.parametrize("header", [KLINE_HEADER, None])
def test_klines_read_the_same_with_or_without_header_from_every_encoding(tmp_path, suffix, header):
    rows = kline_rows(DAY, full_volumes=True)
    baseline = read_klines(klines_file(tmp_path / "plain", rows)).frame
    other = read_klines(klines_file(tmp_path / "other", rows, header=header, suffix=suffix))
    pd.testing.assert_frame_equal(other.frame, baseline)


def test_microsecond_epochs_are_detected_per_file(tmp_path):
    baseline = read_klines(klines_file(tmp_path / "ms", kline_rows(DAY))).frame
    micro = read_klines(klines_file(tmp_path / "us", kline_rows(DAY, microseconds=True))).frame
    pd.testing.assert_frame_equal(micro, baseline)


def test_unsorted_rows_are_sorted(tmp_path):
    rows = kline_rows(DAY)
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    baseline = read_klines(klines_file(tmp_path / "a", rows)).frame
    pd.testing.assert_frame_equal(
        read_klines(klines_file(tmp_path / "b", shuffled)).frame, baseline
    )


def test_identical_duplicates_are_dropped_and_counted(tmp_path):
    rows = kline_rows(DAY)
    baseline = read_klines(klines_file(tmp_path / "a", rows)).frame
    result = read_klines(klines_file(tmp_path / "b", [rows[20], *rows, rows[10], rows[10]]))
    pd.testing.assert_frame_equal(result.frame, baseline)
    assert (result.rows_read, result.duplicates_dropped) == (291, 3)


def test_a_partial_day_counts_its_gaps_and_invents_nothing(tmp_path):
    kept = [slot for slot in range(288) if slot not in {5, 100, 101, 102}]
    result = read_klines(str(klines_file(tmp_path, [kline_rows(DAY)[slot] for slot in kept])))
    assert result.present_slots == 284 and len(result.frame) == 284
    assert result.missing_slots == tuple(
        midnight(DAY) + timedelta(minutes=5 * slot) for slot in (5, 100, 101, 102)
    )


def test_one_minute_klines(tmp_path):
    rows = kline_rows(DAY, interval=timedelta(minutes=1))
    result = read_klines(klines_file(tmp_path, rows), interval=timedelta(minutes=1))
    assert (result.expected_slots, result.present_slots, result.missing_slots) == (1440, 1440, ())


# ---- klines: bad input ------------------------------------------------------------------------


def test_conflicting_duplicates_name_the_timestamp_and_both_lines(tmp_path):
    rows = kline_rows(DAY)
    changed = [*rows[10][:4], "102.5", *rows[10][5:]]
    path = klines_file(tmp_path, [*rows, changed])
    format_error(
        lambda: read_klines(path), path, 290, "conflicting rows", "00:50:00", "lines 12 and 290"
    )


@pytest.mark.parametrize(
    ("column", "value", "fragments"),
    [
        (1, "abc", ("open", "'abc'", "not a number")),
        (2, "0", ("high", "not positive")),
        (3, "-4.5", ("low", "not positive")),
        (4, "", ("close is empty",)),
        (5, "-1", ("volume", "negative")),
        (8, "2.5", ("count", "not a whole number")),
        (0, "17645472x0000", ("open_time", "not a number")),
    ],
)
def test_bad_values_name_the_line_and_the_column(tmp_path, column, value, fragments):
    rows = kline_rows(DAY)
    rows[6][column] = value
    path = klines_file(tmp_path, rows)
    format_error(lambda: read_klines(path), path, 8, *fragments)


def test_rows_outside_the_file_day_are_errors(tmp_path):
    rows = kline_rows(DAY)
    next_day = kline_rows(DAY + timedelta(days=1), slots=range(1))
    path = klines_file(tmp_path, [*rows[:50], *next_day, *rows[50:]])
    format_error(lambda: read_klines(path), path, 52, "2025-12-02 00:00:00", "outside")


def test_open_times_off_the_interval_grid_are_errors(tmp_path):
    rows = kline_rows(DAY)
    rows[3][0] = str(int(rows[3][0]) + 60_000)
    path = klines_file(tmp_path, rows)
    format_error(lambda: read_klines(path), path, 5, "00:16:00", "not on the 5m grid")


def test_close_times_of_another_interval_are_errors(tmp_path):
    path = klines_file(tmp_path, kline_rows(DAY))
    format_error(
        lambda: read_klines(path, interval=timedelta(minutes=1)),
        path,
        2,
        "close_time",
        "is the interval right?",
    )


def test_mixed_epoch_units_are_errors(tmp_path):
    rows = kline_rows(DAY)
    rows[40] = kline_rows(DAY, slots=range(40, 41), microseconds=True)[0]
    path = klines_file(tmp_path, rows)
    format_error(lambda: read_klines(path), path, 42, "in microseconds while line 2", "millisec")


def test_blank_lines_keep_line_numbers_true(tmp_path):
    rows = kline_rows(DAY)
    rows[3][2] = "oops"
    lines = [KLINE_HEADER, "", *(",".join(row) for row in rows)]
    path = write_file(klines_path(tmp_path, "BTCUSDT", DAY), ("\n".join(lines) + "\n").encode())
    format_error(lambda: read_klines(path), path, 6, "'oops'")


def test_a_row_with_too_many_fields_is_an_error_naming_its_line(tmp_path):
    rows = kline_rows(DAY)
    rows[8] = [*rows[8], "extra"]
    path = klines_file(tmp_path, rows)
    format_error(lambda: read_klines(path), path, 10, "not a readable CSV")


def test_a_header_without_the_needed_columns_is_an_error(tmp_path):
    path = klines_file(tmp_path, kline_rows(DAY), header=KLINE_HEADER.replace("high", "hi"))
    format_error(lambda: read_klines(path), path, 1, "header lacks", "high")


def test_empty_files_and_damaged_archives_are_errors(tmp_path):
    empty = write_file(klines_path(tmp_path, "BTCUSDT", DAY), b"")
    format_error(lambda: read_klines(empty), empty, None, "empty")

    gz = klines_path(tmp_path, "BTCUSDT", DAY, ".csv.gz")
    write_file(gz, csv_bytes(kline_rows(DAY), KLINE_HEADER))
    gz.write_bytes(gz.read_bytes()[:200])
    format_error(lambda: read_klines(gz), gz, None, "damaged or truncated")

    zipped = klines_path(tmp_path, "BTCUSDT", DAY, ".zip")
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("a.csv", csv_bytes(kline_rows(DAY), KLINE_HEADER))
        archive.writestr("b.csv", b"")
    format_error(lambda: read_klines(zipped), zipped, None, "a.csv, b.csv", "exactly one CSV")


@pytest.mark.parametrize("suffix", [".csv", ".zip"])
@pytest.mark.parametrize("dataset", ["klines", "markPriceKlines", "metrics"])
def test_a_header_only_file_is_an_error_like_an_empty_one(tmp_path, dataset, suffix):
    """A day without rows would replace the stored day with nothing (issue 9, defect 4)."""
    if dataset == "metrics":
        path = metrics_path(tmp_path, "BTCUSDT", DAY, suffix)
        write_file(path, csv_bytes([], METRICS_HEADER) + b"\n\n")
        read = read_metrics
    else:
        path = klines_path(tmp_path, "BTCUSDT", DAY, suffix, dataset)
        write_file(path, csv_bytes([], KLINE_HEADER))
        read = read_klines
    format_error(lambda: read(path), path, None, "a header but no data rows")


@pytest.mark.parametrize(
    ("prices", "fragment"),
    [
        (("100", "99", "101", "100"), "high 99 is below low 101"),
        (("100", "101", "100.5", "100.7"), "open 100 is outside low 100.5 … high 101"),
        (("100", "101", "99", "101.5"), "close 101.5 is outside low 99 … high 101"),
    ],
)
def test_impossible_candles_are_errors_naming_the_line(tmp_path, prices, fragment):
    rows = kline_rows(DAY, base_price=100.0)
    rows[40][1:5] = prices
    path = klines_file(tmp_path, rows)
    format_error(lambda: read_klines(path), path, 42, fragment)


def test_a_candle_spanning_far_beyond_the_previous_close_is_an_error(tmp_path):
    rows = kline_rows(DAY, base_price=100.0)
    rows[40][2] = "1000000"
    path = klines_file(tmp_path, rows)
    format_error(
        lambda: read_klines(path),
        path,
        42,
        "high 1000000",
        "previous close 109.875 (line 41)",
        "LIQHEAT_MAX_CANDLE_RANGE_PCT=50",
    )


def test_the_first_candle_of_a_file_is_measured_against_its_own_open(tmp_path):
    rows = kline_rows(DAY, base_price=100.0)
    rows[0][2] = "151"
    path = klines_file(tmp_path, rows)
    format_error(lambda: read_klines(path), path, 2, "its open 100", "51%")  # (151 - 99.75) / 100
    rows[0][2] = "149"
    assert read_klines(klines_file(tmp_path / "ok", rows)).frame["high"].iloc[0] == 149


def test_the_candle_range_limit_is_configurable(tmp_path):
    rows = kline_rows(DAY, base_price=100.0)
    rows[100][2] = "140"  # 15 % above the previous close 124.875
    path = klines_file(tmp_path, rows)
    assert read_klines(path).frame["high"].iloc[100] == 140
    format_error(
        lambda: read_klines(path, limits=PlausibilityLimits(max_candle_range=0.1)),
        path,
        102,
        "LIQHEAT_MAX_CANDLE_RANGE_PCT=10",
    )


def test_a_whole_day_at_another_scale_is_judged_against_the_day_before(tmp_path):
    rows = kline_rows(DAY, base_price=100_000.0)
    path = klines_file(tmp_path, rows)
    assert len(read_klines(path).frame) == 288  # every candle is plausible beside the others
    before = PreviousRow(datetime(2025, 11, 30, 23, 55), {"close": 100.0}, "the stored row")
    format_error(
        lambda: read_klines(path, previous=before),
        path,
        2,
        "of the previous close 100 (the stored row)",
    )
    # Only the candle right after it is judged against it: after a gap, the open is the reference.
    read_klines(klines_file(tmp_path / "gap", rows[1:]), previous=before)
    assert len(read_klines(path, previous=replace(before, values={"close": 99_999.0})).frame)


@pytest.mark.parametrize(
    ("columns", "value"),
    [((1, 2, 3, 4), "2e15"), ((2,), "1e300"), ((5,), "2e15"), ((7,), "2e15"), ((10,), "inf")],
)
def test_values_beyond_any_real_amount_are_errors(tmp_path, columns, value):
    """A high of 1e300 consumed every short level before (issue 9, defect 5)."""
    rows = kline_rows(DAY, base_price=100.0, full_volumes=True)
    for column in columns:
        rows[7][column] = value
    path = klines_file(tmp_path, rows)
    fragment = "not a number" if value == "inf" else "LIQHEAT_MAX_VALUE=1e+15"
    format_error(lambda: read_klines(path), path, 9, fragment)


def test_a_file_whose_name_has_no_day_needs_an_explicit_day(tmp_path):
    path = write_file(tmp_path / "candles.csv", csv_bytes(kline_rows(DAY), KLINE_HEADER))
    format_error(lambda: read_klines(path), path, None, "cannot tell the file's day")
    assert len(read_klines(path, day=DAY).frame) == 288


# ---- metrics ----------------------------------------------------------------------------------


def test_metrics_give_snapshot_instants_and_values(tmp_path):
    rows = metrics_rows(DAY)
    result = read_metrics(metrics_file(tmp_path, rows))
    frame = result.frame
    assert list(frame.columns) == ["ts", "open_interest", "open_interest_value"]
    assert frame["ts"].dtype == np.dtype("datetime64[ns]")
    assert frame["ts"].iloc[0] == pd.Timestamp("2025-12-01 00:05")
    assert frame["ts"].iloc[-1] == pd.Timestamp("2025-12-02 00:00")
    assert frame["open_interest"].tolist() == [float(row[2]) for row in rows]
    assert frame["open_interest_value"].tolist() == [float(row[3]) for row in rows]
    assert (result.expected_slots, result.present_slots, result.missing_slots) == (288, 288, ())
    assert (result.label_convention, result.convention_from_content) == (LABEL_AT_SNAPSHOT, True)


@pytest.mark.parametrize("day", [DAY, AFTER_SWITCH])
def test_both_label_conventions_normalise_to_the_same_snapshots(tmp_path, day):
    earlier = read_metrics(metrics_file(tmp_path / "a", metrics_rows(day), day=day))
    later_rows = metrics_rows(day, later_labels=True)
    later = read_metrics(metrics_file(tmp_path / "b", later_rows, day=day))
    pd.testing.assert_frame_equal(later.frame, earlier.frame)
    assert later.frame["ts"].iloc[0] == pd.Timestamp(midnight(day) + timedelta(minutes=5))
    assert later_rows[0][0] == f"{day} 00:00:00"
    assert (earlier.label_convention, later.label_convention) == (
        LABEL_AT_SNAPSHOT,
        LABEL_BEFORE_SNAPSHOT,
    )
    assert earlier.convention_from_content and later.convention_from_content


@pytest.mark.parametrize(
    ("day", "later_labels", "convention"),
    [(DAY, False, LABEL_AT_SNAPSHOT), (AFTER_SWITCH, True, LABEL_BEFORE_SNAPSHOT)],
)
def test_without_boundary_rows_the_switch_date_decides(tmp_path, day, later_labels, convention):
    rows = metrics_rows(day, later_labels=later_labels, slots=range(2, 288))
    result = read_metrics(metrics_file(tmp_path, rows, day=day))
    assert (result.label_convention, result.convention_from_content) == (convention, False)
    first_snapshot = midnight(day) + timedelta(minutes=10)
    assert result.frame["ts"].iloc[0] == pd.Timestamp(first_snapshot)
    assert len(result.missing_slots) == 2


def test_labels_a_few_seconds_off_the_grid_are_snapped_and_counted(tmp_path):
    rows = metrics_rows(DAY)
    baseline = read_metrics(metrics_file(tmp_path / "a", rows)).frame
    rows[10][0] = rows[10][0][:-2] + "03"
    rows[200][0] = "2025-12-01 16:44:31"  # slot 201 is 16:45:00
    result = read_metrics(metrics_file(tmp_path / "b", rows))
    pd.testing.assert_frame_equal(result.frame, baseline)
    assert result.snapped_timestamps == 2


def test_labels_far_off_the_grid_are_errors(tmp_path):
    rows = metrics_rows(DAY)
    rows[10][0] = rows[10][0][:-2] + "31"
    path = metrics_file(tmp_path, rows)
    format_error(lambda: read_metrics(path), path, 12, "+31 s off the 5-minute grid")


def test_a_file_with_both_boundary_labels_is_an_error(tmp_path):
    rows = [*metrics_rows(DAY, later_labels=True, slots=range(1, 2)), *metrics_rows(DAY)]
    path = metrics_file(tmp_path, rows)
    format_error(lambda: read_metrics(path), path, 290, "both appear", "line 2")


def test_metrics_rows_outside_the_file_day_are_errors(tmp_path):
    stray = metrics_rows(DAY + timedelta(days=1), slots=range(1, 2))
    path = metrics_file(tmp_path, [*metrics_rows(DAY), *stray])
    format_error(lambda: read_metrics(path), path, 290, "2025-12-02 00:05:00", "outside")


@pytest.mark.parametrize(
    ("column", "value", "fragments"),
    [
        (2, "0", ("sum_open_interest", "not positive")),
        (2, "-3", ("sum_open_interest", "not positive")),
        (3, "n/a", ("sum_open_interest_value", "'n/a'", "not a number")),
        (2, "", ("sum_open_interest is empty",)),
        (0, "2025-12-01T00:30", ("create_time", "'YYYY-MM-DD HH:MM:SS'")),
        (1, "ETHUSDT", ("'ETHUSDT'", "named for BTCUSDT")),
    ],
)
def test_bad_metrics_values_name_the_line(tmp_path, column, value, fragments):
    rows = metrics_rows(DAY)
    rows[5][column] = value
    path = metrics_file(tmp_path, rows)
    format_error(lambda: read_metrics(path), path, 7, *fragments)


@pytest.mark.parametrize("column", [2, 3])
def test_an_open_interest_jump_within_five_minutes_is_an_error(tmp_path, column):
    """One row ×1000 passed every check before (issue 9, defect 5)."""
    rows = metrics_rows(DAY)
    before, jumped = float(rows[99][column]), float(rows[100][column]) * 1000
    rows[100][column] = str(jumped)
    path = metrics_file(tmp_path, rows)
    format_error(
        lambda: read_metrics(path),
        path,
        102,
        f"{METRICS_HEADER.split(',')[column]} {jumped:.15g} is "
        f"{jumped / before - 1:+.0%} in 5 minutes from {before:.15g} (line 101)",
        "LIQHEAT_MAX_OI_CHANGE_PCT=50",
    )


def test_open_interest_changes_across_a_gap_are_not_judged_as_five_minute_ones(tmp_path):
    rows = metrics_rows(DAY)
    raised = rows[:100] + [[*row[:2], str(float(row[2]) * 1.6), *row[3:]] for row in rows[100:]]
    path = metrics_file(tmp_path / "a", raised)
    format_error(lambda: read_metrics(path), path, 102, "+60%")
    with_gap = raised[:100] + raised[101:]
    assert len(read_metrics(metrics_file(tmp_path / "b", with_gap)).frame) == 287


def test_the_real_sample_passes_the_default_limits_and_fails_limits_below_its_extremes(
    real_binance_dir,
):
    """The defaults leave a wide margin over the sample's largest real moves (1.8 % OI change and
    2.8 % candle range in 5 minutes, ETHUSDT December 2025)."""
    daily = real_binance_dir / "futures" / "um" / "daily"
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for path in sorted((daily / "metrics" / symbol).iterdir()):
            read_metrics(path)
        for path in sorted((daily / "klines" / symbol / "5m").iterdir()):
            read_klines(path)
    eth_oi = daily / "metrics" / "ETHUSDT" / "ETHUSDT-metrics-2025-12-03.csv.gz"
    with pytest.raises(ArchiveFormatError, match=r"open_interest .* in 5 minutes"):
        read_metrics(eth_oi, limits=PlausibilityLimits(max_oi_change=0.017))
    tight = PlausibilityLimits(max_candle_range=0.02)
    failing = 0
    for path in sorted((daily / "klines" / "ETHUSDT" / "5m").iterdir()):
        try:
            read_klines(path, limits=tight)
        except ArchiveFormatError as error:
            assert "LIQHEAT_MAX_CANDLE_RANGE_PCT=2" in str(error)
            failing += 1
    assert failing > 0


def test_the_first_snapshot_is_judged_against_the_one_at_midnight(tmp_path):
    path = metrics_file(tmp_path, metrics_rows(DAY))  # the first snapshot, 00:05, holds 1001.5
    midnight_oi = PreviousRow(
        midnight(DAY), {"open_interest": 1.0, "open_interest_value": 90.5}, "the last row of D-1"
    )
    format_error(
        lambda: read_metrics(path, previous=midnight_oi),
        path,
        2,
        "sum_open_interest 1001.5 is +100050% in 5 minutes from 1 (the last row of D-1)",
    )
    plausible = replace(midnight_oi, values={"open_interest": 1000, "open_interest_value": 90500})
    assert len(read_metrics(path, previous=plausible).frame) == 288


def test_the_open_interest_change_limit_is_configurable(tmp_path):
    rows = metrics_rows(DAY)
    rows[200][2] = str(float(rows[200][2]) * 1.2)
    path = metrics_file(tmp_path, rows)
    assert len(read_metrics(path).frame) == 288
    format_error(
        lambda: read_metrics(path, limits=PlausibilityLimits(max_oi_change=0.1)),
        path,
        202,
        "LIQHEAT_MAX_OI_CHANGE_PCT=10",
    )


def test_open_interest_beyond_any_real_notional_is_an_error(tmp_path):
    rows = metrics_rows(DAY)
    rows[0][2:4] = ["1e305", "1e305"]
    path = metrics_file(tmp_path, rows)
    format_error(
        lambda: read_metrics(path), path, 2, "sum_open_interest 1e+305", "LIQHEAT_MAX_VALUE"
    )


def test_metrics_duplicates_identical_dropped_conflicting_raised(tmp_path):
    rows = metrics_rows(DAY)
    baseline = read_metrics(metrics_file(tmp_path / "a", rows)).frame
    result = read_metrics(metrics_file(tmp_path / "b", [*rows, rows[3]]))
    pd.testing.assert_frame_equal(result.frame, baseline)
    assert result.duplicates_dropped == 1

    conflicting = [*rows[:3], [*rows[3][:2], "1.5", *rows[3][3:]], *rows[3:]]
    path = metrics_file(tmp_path / "c", conflicting)
    format_error(
        lambda: read_metrics(path), path, 6, "conflicting rows", "00:20:00", "lines 5 and 6"
    )


@pytest.mark.parametrize("suffix", [".csv.gz", ".zip"])
def test_metrics_without_header_from_archives(tmp_path, suffix):
    rows = metrics_rows(DAY)
    baseline = read_metrics(metrics_file(tmp_path / "a", rows)).frame
    other = read_metrics(metrics_file(tmp_path / "b", rows, header=None, suffix=suffix)).frame
    pd.testing.assert_frame_equal(other, baseline)


# ---- properties -------------------------------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    removed=st.sets(st.integers(0, 287), max_size=40),
    repeated=st.lists(st.integers(0, 287), max_size=10),
    seed=st.integers(0, 2**16),
    later_labels=st.booleans(),
)
def test_any_shuffle_with_gaps_and_repeats_reads_back_to_the_remaining_slots(
    tmp_path, removed, repeated, seed, later_labels
):
    """Oracle: the file is built from known slots, so the result must be exactly those slots."""
    klines = kline_rows(DAY)
    metrics = metrics_rows(DAY, later_labels=later_labels)
    kept = [slot for slot in range(288) if slot not in removed]
    extra = [slot for slot in repeated if slot not in removed]
    order = kept + extra
    random.Random(seed).shuffle(order)

    candles = read_klines(klines_file(tmp_path, [klines[slot] for slot in order]))
    oi = read_metrics(metrics_file(tmp_path, [metrics[slot] for slot in order]))

    start = midnight(DAY)
    assert candles.frame["open_time"].tolist() == [
        pd.Timestamp(start + timedelta(minutes=5 * slot)) for slot in kept
    ]
    assert candles.missing_slots == tuple(
        start + timedelta(minutes=5 * slot) for slot in sorted(removed)
    )
    assert candles.duplicates_dropped == oi.duplicates_dropped == len(extra)
    if later_labels and 0 in removed:
        # No boundary label left: the documented fallback is the date, and Dec 2025 is earlier.
        assert (oi.label_convention, oi.convention_from_content) == (LABEL_AT_SNAPSHOT, False)
        return
    # Metrics row k holds the snapshot at (k + 1) × 5 min in both label conventions.
    assert oi.frame["ts"].tolist() == [
        pd.Timestamp(start + timedelta(minutes=5 * (slot + 1))) for slot in kept
    ]
    assert oi.missing_slots == tuple(
        start + timedelta(minutes=5 * (slot + 1)) for slot in sorted(removed)
    )
