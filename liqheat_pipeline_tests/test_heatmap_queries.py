"""The read-side SQL against expectations recomputed from the fixture's explicit levels."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.liquidation_map import liquidated_if_reached
from liqheat_pipeline.lib.heatmap.window import (
    INTERVAL_MINUTES,
    IntervalWindow,
    WindowError,
    WindowTooLargeError,
    align_window,
)
from liqheat_pipeline_tests.helpers.heatmap_fixture import (
    Fixture,
    active_after,
    make_fixture,
    write_fixture,
)


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Fixture, Path]:
    fixture = make_fixture(days=2)
    path = tmp_path_factory.mktemp("heatmap") / "fixture.duckdb"
    write_fixture(fixture, path)
    return fixture, path


def _bin_of(frame: pd.DataFrame, fixture: Fixture, multiple: int) -> np.ndarray:
    index = np.floor(np.rint(frame["price_bucket"] / fixture.bucket_size) / multiple)
    return np.round(index * multiple * fixture.bucket_size, 10)


def expected_cells(
    fixture: Fixture, window: IntervalWindow, multiple: int, leverage: int | None = None
) -> pd.DataFrame:
    """Per interval: the levels active after its last candle, and those consumed inside it."""
    levels = fixture.levels
    if leverage is not None:
        levels = levels[levels["leverage"] == leverage]
    per_slot = window.interval_minutes // fixture.interval_minutes
    first = (window.start - fixture.start) // timedelta(minutes=fixture.interval_minutes)
    rows = []
    for slot in range(window.slots):
        lo, hi = first + slot * per_slot, first + (slot + 1) * per_slot  # candle indices
        hi = min(hi, len(fixture.candles))
        if lo >= hi:
            continue
        active = active_after(fixture, hi - 1)
        active = active[active.index.isin(levels.index)]
        consumed = levels[(levels["consumed"] >= lo) & (levels["consumed"] < hi)]
        for frame, column in ((active, "active"), (consumed, "consumed")):
            for (price, side), usd in (
                frame.assign(price=_bin_of(frame, fixture, multiple))
                .groupby(["price", "side"])["notional_usd"]
                .sum()
                .items()
            ):
                rows.append(
                    {
                        "ts": window.start + slot * window.interval,
                        "price": price,
                        "key": f"{side}_{column}",
                        "usd": usd,
                    }
                )
    expected = pd.DataFrame(rows).pivot_table(
        index=["ts", "price"], columns="key", values="usd", aggfunc="sum", fill_value=0.0
    )
    for column in ("long_active", "short_active", "long_consumed", "short_consumed"):
        if column not in expected:
            expected[column] = 0.0
    return expected.reset_index()


def _compare(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    columns = ["long_active", "short_active", "long_consumed", "short_consumed"]
    actual = actual.sort_values(["ts", "price"]).reset_index(drop=True)
    expected = expected.sort_values(["ts", "price"]).reset_index(drop=True)
    assert len(actual) == len(expected)
    assert (pd.to_datetime(actual["ts"]) == pd.to_datetime(expected["ts"])).all()
    np.testing.assert_allclose(actual["price"], expected["price"])
    np.testing.assert_allclose(actual[columns], expected[columns], rtol=1e-9)


@pytest.mark.parametrize(
    ("interval", "multiple", "hours"), [("5m", 1, 3), ("15m", 2, 6), ("1h", 3, 30), ("4h", 1, 48)]
)
def test_heatmap_cells_match_levels(fixture_db, interval, multiple, hours):
    fixture, path = fixture_db
    start = fixture.start + timedelta(hours=5)
    window = align_window(
        start, start + timedelta(hours=hours), INTERVAL_MINUTES[interval], max_slots=10_000
    )
    with warehouse.connect(path, read_only=True) as conn:
        bins = queries.PriceBins(fixture.bucket_size, multiple)
        actual = queries.heatmap_cells(conn, fixture.symbol, window, bins)
    expected = expected_cells(fixture, window, multiple)
    assert expected["long_consumed"].sum() > 0 or interval == "5m"
    _compare(actual, expected)


@pytest.mark.parametrize("leverage", [10, 50])
def test_leverage_filter_keeps_one_tier(fixture_db, leverage):
    fixture, path = fixture_db
    window = IntervalWindow(
        fixture.start + timedelta(hours=20), fixture.start + timedelta(hours=32), 60
    )
    with warehouse.connect(path, read_only=True) as conn:
        bins = queries.PriceBins(fixture.bucket_size, 2)
        actual = queries.heatmap_cells(conn, fixture.symbol, window, bins, leverage=leverage)
        split = queries.heatmap_cells(conn, fixture.symbol, window, bins, by_leverage=True)
    _compare(actual, expected_cells(fixture, window, 2, leverage))
    tier = split[split["leverage"] == leverage].drop(columns="leverage")
    _compare(tier, expected_cells(fixture, window, 2, leverage))


@pytest.mark.parametrize("leverage", [None, 10])
def test_timeseries_body_groups_the_cells_per_interval(fixture_db, leverage):
    fixture, path = fixture_db
    # Starts before the history: intervals without candles are absent, not empty.
    window = IntervalWindow(
        fixture.start - timedelta(hours=8), fixture.start + timedelta(hours=16), 240
    )
    bins = queries.PriceBins(fixture.bucket_size, 5)
    with warehouse.connect(path, read_only=True) as conn:
        body = queries.timeseries_body(conn, fixture.symbol, window, bins, leverage=leverage)
        cells = queries.heatmap_cells(conn, fixture.symbol, window, bins, leverage=leverage)
    points = json.loads(body.data_json)
    assert [point["timestamp"] for point in points] == [
        f"2025-12-01T{hour:02d}:00:00Z" for hour in (0, 4, 8, 12)
    ]
    assert body.points == 4
    for point in points:
        rows = cells[cells["ts"] == pd.Timestamp(point["timestamp"]).tz_localize(None)]
        active = rows[(rows["long_active"] > 0) | (rows["short_active"] > 0)]
        assert [level["price"] for level in point["levels"]] == active["price"].tolist()
        assert [level["long_density"] for level in point["levels"]] == pytest.approx(
            active["long_active"].tolist()
        )
        assert point["consumed_short"] == pytest.approx(rows["short_consumed"].sum())
    last = cells[cells["ts"] == cells["ts"].max()]
    assert body.long_at_end == pytest.approx(last["long_active"].sum())
    assert body.consumed_total == pytest.approx(
        cells["long_consumed"].sum() + cells["short_consumed"].sum()
    )
    active = cells[(cells["long_active"] > 0) | (cells["short_active"] > 0)]
    assert (body.price_min, body.price_max) == (active["price"].min(), active["price"].max())


def test_empty_window_gives_an_empty_body(fixture_db):
    fixture, path = fixture_db
    window = IntervalWindow(fixture.end + timedelta(days=1), fixture.end + timedelta(days=2), 60)
    with warehouse.connect(path, read_only=True) as conn:
        body = queries.timeseries_body(conn, fixture.symbol, window, queries.PriceBins(10.0))
    assert body == queries.TimeseriesBody("[]", 0, None, None, 0.0, 0.0, 0.0)


def test_symbol_info_reads_the_model_run(fixture_db):
    fixture, path = fixture_db
    with warehouse.connect(path, read_only=True) as conn:
        info = queries.symbol_info(conn, fixture.symbol)
        assert queries.symbol_info(conn, "NOPEUSDT") is None
        assert queries.known_symbols(conn) == [fixture.symbol]
        assert queries.leverage_tiers(conn, fixture.symbol) == [10, 50]
    assert info.bucket_size == fixture.bucket_size
    assert info.first_day == fixture.start.date()
    assert info.last_day == (fixture.end - timedelta(days=1)).date()
    assert info.assumptions == {"leverage_tiers": [10, 50]}


@pytest.mark.parametrize("multiple", [1, 4])
@pytest.mark.parametrize("leverage", [None, 50])
def test_map_sql_matches_the_levels(fixture_db, multiple, leverage):
    fixture, path = fixture_db
    index = 300
    bins = queries.PriceBins(fixture.bucket_size, multiple)
    with warehouse.connect(path, read_only=True) as conn:
        sql = queries.liquidation_map_rows(
            conn, fixture.symbol, fixture.time(index), bins, leverage=leverage
        )
    active = active_after(fixture, index)
    if leverage is not None:
        active = active[active["leverage"] == leverage]
    price = _bin_of(active, fixture, multiple)
    per_bin = active.assign(price=price).groupby(["side", "price"])["notional_usd"].sum()
    assert len(sql) == len(per_bin) > 0
    assert list(zip(sql["side"], sql["price"], strict=True)) == list(per_bin.index)
    np.testing.assert_allclose(sql["active_usd"], per_bin.to_numpy(), rtol=1e-9)
    # Each bin's cumulative, straight from the levels: a fall to a long bin's lower edge
    # liquidates the longs priced at or above it, a rise to a short bin's upper edge the shorts
    # at or below it.
    for side, bin_price, reach, cumulative in sql[
        ["side", "price", "reach_price", "cumulative_usd"]
    ].itertuples(index=False):
        if side == "long":
            assert reach == bin_price
            expected = active[(active["side"] == "long") & (price >= bin_price)]
        else:
            assert reach == pytest.approx(bin_price + bins.size, abs=1e-9)
            expected = active[(active["side"] == "short") & (price <= bin_price)]
        assert cumulative == pytest.approx(expected["notional_usd"].sum(), rel=1e-9)
    for reach in sql["reach_price"]:
        fall = active[(active["side"] == "long") & (price >= reach)]
        rise = active[(active["side"] == "short") & (price + bins.size <= reach)]
        assert liquidated_if_reached(sql, reach, "long") == pytest.approx(
            fall["notional_usd"].sum()
        )
        assert liquidated_if_reached(sql, reach, "short") == pytest.approx(
            rise["notional_usd"].sum()
        )


@pytest.mark.parametrize("multiple", [1, 4])
def test_map_of_bins_already_read_is_the_map_sql(fixture_db, multiple):
    """The same curve from display bins at hand (the preview's way) as from the table."""
    fixture, path = fixture_db
    bins = queries.PriceBins(fixture.bucket_size, multiple)
    window = IntervalWindow(fixture.time(300), fixture.time(301), 5)
    with warehouse.connect(path, read_only=True) as conn:
        sql = queries.liquidation_map_rows(conn, fixture.symbol, fixture.time(300), bins)
        cells = queries.heatmap_cells(conn, fixture.symbol, window, bins, by_leverage=True)
    binned = pd.concat(
        [
            pd.DataFrame(
                {"side": side, "price": cells["price"], "active_usd": cells[f"{side}_active"]}
            )
            for side in ("long", "short")
        ]
    )
    assert cells["leverage"].nunique() > 1  # the tiers are summed per bin
    at_hand = queries.binned_liquidation_map(binned, bins.size)
    pd.testing.assert_frame_equal(at_hand, sql, check_exact=False, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(
        st.tuples(
            st.sampled_from(["long", "short"]),
            st.integers(0, 40),
            st.floats(0, 1e7, allow_nan=False),
        ),
        max_size=30,
    ),
    bin_size=st.sampled_from([0.01, 0.5, 5.0, 100.0]),
    probe=st.integers(-2, 42),
)
def test_cumulative_map_matches_its_definition(cells, bin_size, probe):
    frame = pd.DataFrame(cells, columns=["side", "index", "active_usd"]).astype(
        {"side": str, "index": int, "active_usd": float}
    )
    frame["price"] = np.round(frame["index"] * bin_size, 10)
    curve = queries.binned_liquidation_map(frame[["side", "price", "active_usd"]], bin_size)
    assert (curve["active_usd"] > 0).all()
    price = probe * bin_size
    longs = frame[(frame["side"] == "long") & (frame["index"] >= probe)]["active_usd"].sum()
    shorts = frame[(frame["side"] == "short") & (frame["index"] + 1 <= probe)]["active_usd"].sum()
    assert liquidated_if_reached(curve, price, "long") == pytest.approx(longs, rel=1e-12)
    assert liquidated_if_reached(curve, price, "short") == pytest.approx(shorts, rel=1e-12)


_MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))


@settings(max_examples=200)
@given(
    start=_MOMENTS,
    length=st.timedeltas(timedelta(seconds=1), timedelta(days=40)),
    interval=st.sampled_from(sorted(INTERVAL_MINUTES)),
)
def test_aligned_window_covers_the_request_on_the_utc_grid(start, length, interval):
    minutes = INTERVAL_MINUTES[interval]
    window = align_window(start, start + length, minutes, max_slots=10**9)
    step = timedelta(minutes=minutes)
    assert window.start <= start < window.start + step
    assert window.end - step < start + length <= window.end
    for edge in (window.start, window.end):
        assert (edge - datetime(2000, 1, 1)) % step == timedelta(0)


def test_window_errors_name_the_parameter():
    start = datetime(2025, 12, 1)
    with pytest.raises(WindowError) as reversed_error:
        align_window(start, start - timedelta(hours=1), 5, max_slots=100)
    assert reversed_error.value.parameter == "end_time"
    with pytest.raises(WindowError) as ancient:
        align_window(datetime(1900, 1, 1), start, 5, max_slots=100)
    assert ancient.value.parameter == "start_time"
    with pytest.raises(WindowTooLargeError):
        align_window(start, start + timedelta(days=1), 5, max_slots=100)
