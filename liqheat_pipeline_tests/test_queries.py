"""The README example queries on real model output, each against an independent recomputation."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.heatmap import history, sql
from liqheat_pipeline_tests.helpers.pipeline_runs import (
    MODEL_ASSETS,
    RAW_ASSETS,
    load_definitions,
    materialize,
    pipeline_env,
)

SYMBOL = "BTCUSDT"
START, END = datetime(2025, 12, 1, 6), datetime(2025, 12, 2, 18)
AT = datetime(2025, 12, 2, 12, 2)  # between candles: the state of the 12:00 candle
pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def conn(tmp_path_factory, real_binance_dir, real_liquidations_dir):
    db_path = tmp_path_factory.mktemp("queries") / "liqheat.duckdb"
    env = pipeline_env(
        real_binance_dir, db_path, LIQHEAT_LIQUIDATIONS_DIR=str(real_liquidations_dir)
    )
    definitions = load_definitions(env)
    with dg.instance_for_test() as instance:
        assets = (*RAW_ASSETS, *MODEL_ASSETS, "realized_liquidations")
        assert materialize(definitions, instance, "2025-12-01", "2025-12-02", assets=assets).success
    with warehouse.connect(db_path, read_only=True) as conn:
        yield conn


def _frame(conn, sql: str, *params) -> pd.DataFrame:
    return conn.execute(sql, list(params)).fetchdf()


def _expected_heatmap(conn, minutes: int, step: float | None) -> pd.DataFrame:
    """Recompute the coarse heatmap in pandas from the raw snapshot and ledger rows."""
    snapshots = _frame(
        conn,
        "SELECT * FROM heatmap_snapshots WHERE symbol = ? AND ts >= ? AND ts < ?",
        SYMBOL,
        START,
        END,
    )
    candles = _frame(
        conn,
        "SELECT DISTINCT ts FROM candle_ledger WHERE symbol = ? AND ts >= ? AND ts < ?",
        SYMBOL,
        START,
        END,
    )
    width = pd.Timedelta(minutes=minutes)
    for frame in (snapshots, candles):
        frame["interval"] = START + (frame["ts"] - START) // width * width
    last_candles = set(candles.groupby("interval")["ts"].max())
    if step is not None:
        merged = np.floor(snapshots["price_bucket"] / step + 1e-9) * step
        snapshots["price_bucket"] = merged.round(10)
    keys = ["interval", "price_bucket", "side"]
    consumed = snapshots.groupby(keys)["consumed_usd"].sum()
    active = snapshots[snapshots["ts"].isin(last_candles)].groupby(keys)["active_usd"].sum()
    frame = pd.concat([active, consumed], axis=1).fillna({"active_usd": 0.0}).reset_index()
    frame = frame[(frame["active_usd"] > 0) | (frame["consumed_usd"] > 0)]
    return frame.sort_values(keys, ignore_index=True).rename(columns={"interval": "ts"})


@pytest.mark.parametrize(("minutes", "step"), [(60, None), (15, None), (240, 500.0)])
def test_heatmap_is_the_state_at_each_interval_end_and_the_consumption_within(conn, minutes, step):
    result = sql.heatmap(conn, SYMBOL, START, END, minutes, price_step=step)
    expected = _expected_heatmap(conn, minutes, step)
    assert len(result) > 100
    pd.testing.assert_frame_equal(
        result[["ts", "price_bucket", "side", "active_usd", "consumed_usd"]],
        expected[["ts", "price_bucket", "side", "active_usd", "consumed_usd"]],
        check_exact=False,
        rtol=1e-12,
        check_dtype=False,
    )


def test_heatmap_price_range_keeps_only_buckets_inside_it(conn):
    everything = sql.heatmap(conn, SYMBOL, START, END, 60)
    low, high = everything["price_bucket"].quantile([0.25, 0.75])
    inside = sql.heatmap(conn, SYMBOL, START, END, 60, price_low=low, price_high=high)
    expected = everything[(everything["price_bucket"] >= low) & (everything["price_bucket"] < high)]
    assert len(inside) == len(expected) > 0


def _state_at(conn, moment: datetime) -> pd.DataFrame:
    return _frame(
        conn,
        "SELECT * FROM heatmap_snapshots WHERE symbol = ? AND active_usd > 0 AND ts = "
        "(SELECT max(open_time) FROM candles WHERE symbol = ? AND open_time <= ?)",
        SYMBOL,
        SYMBOL,
        moment,
    )


def test_largest_clusters_are_the_top_buckets_of_the_state_at_that_time(conn):
    result = warehouse.execute(conn, sql.LARGEST_CLUSTERS, {"symbol": SYMBOL, "at": AT, "limit": 5})
    state = _state_at(conn, AT)
    assert list(result["active_usd"]) == sorted(state["active_usd"], reverse=True)[:5]
    assert (result["ts"] == datetime(2025, 12, 2, 12, 0)).all()
    assert result["reference_price"].notna().all()


def test_cumulative_curve_ends_at_the_ledger_active_totals(conn):
    result = warehouse.execute(conn, sql.CUMULATIVE_LIQUIDATION_CURVE, {"symbol": SYMBOL, "at": AT})
    ledger = dict(
        conn.execute(
            "SELECT side, active_usd FROM candle_ledger WHERE symbol = ? AND ts = ?",
            [SYMBOL, datetime(2025, 12, 2, 12, 0)],
        ).fetchall()
    )
    longs = result[result["side"] == "long"].sort_values("price_bucket")
    shorts = result[result["side"] == "short"].sort_values("price_bucket")
    # Falling prices liquidate more and more longs; rising prices more and more shorts.
    assert longs["cumulative_usd"].is_monotonic_decreasing
    assert shorts["cumulative_usd"].is_monotonic_increasing
    assert longs["cumulative_usd"].iloc[0] == pytest.approx(ledger["long"], rel=1e-9)
    assert shorts["cumulative_usd"].iloc[-1] == pytest.approx(ledger["short"], rel=1e-9)


def test_liquidation_flow_per_hour_adds_up_to_the_ledger(conn):
    result = warehouse.execute(
        conn,
        sql.LIQUIDATION_FLOW_PER_HOUR,
        {"symbol": SYMBOL, "start": START, "end": END},
    )
    ledger = dict(
        conn.execute(
            "SELECT side, sum(consumed_usd) FROM candle_ledger WHERE symbol = ? "
            "AND ts >= ? AND ts < ? GROUP BY side",
            [SYMBOL, START, END],
        ).fetchall()
    )
    totals = result.groupby("side")["liquidated_usd"].sum()
    assert totals["long"] == pytest.approx(ledger["long"], rel=1e-9)
    assert totals["short"] == pytest.approx(ledger["short"], rel=1e-9)
    assert (result["hour"] == result["hour"].dt.floor("h")).all()


def test_modelled_beside_observed_pairs_each_observed_hour_with_its_candles(
    conn, real_liquidations_dir
):
    result = warehouse.execute(
        conn, sql.MODELLED_BESIDE_OBSERVED, {"symbol": SYMBOL, "start": START, "end": END}
    )
    # Every hour of the window, observed figures straight from the CoinGlass CSV.
    raw = pd.read_csv(next((real_liquidations_dir / "coinglass" / "BTC").glob("*.csv")))
    raw["hour"] = pd.to_datetime(raw["timestamp"], unit="ms")
    raw = raw[(raw["hour"] >= START) & (raw["hour"] < END)].reset_index(drop=True)
    assert result["bucket_start"].tolist() == raw["hour"].tolist()
    np.testing.assert_allclose(result["observed_long_usd"], raw["longUsd"], rtol=1e-12)
    np.testing.assert_allclose(result["observed_short_usd"], raw["shortUsd"], rtol=1e-12)
    # Modelled figures: the ledger's consumed USD of the hour's candles.
    ledger = _frame(
        conn,
        "SELECT date_trunc('hour', ts) AS hour, side, sum(consumed_usd) AS usd FROM candle_ledger "
        "WHERE symbol = ? AND ts >= ? AND ts < ? GROUP BY ALL",
        SYMBOL,
        START,
        END,
    ).pivot(index="hour", columns="side", values="usd")
    np.testing.assert_allclose(result["modelled_long_usd"], ledger.loc[raw["hour"], "long"])
    np.testing.assert_allclose(result["modelled_short_usd"], ledger.loc[raw["hour"], "short"])
    assert set(result["scope"]) == {"BTC all contracts; Binance+Bybit+OKX (CoinGlass aggregate)"}


def test_every_example_query_runs_and_missing_parameters_are_named(conn):
    parameters = {
        "symbol": SYMBOL, "start": START, "end": END, "at": AT, "limit": 5,
        "interval_minutes": 60, "price_low": None, "price_high": None, "price_step": None,
    }  # fmt: skip
    for name, query in sql.EXAMPLE_QUERIES.items():
        assert len(warehouse.execute(conn, query, parameters)) > 0, name
    with pytest.raises(KeyError, match="at, limit"):
        warehouse.execute(conn, sql.LARGEST_CLUSTERS, {"symbol": SYMBOL})


@settings(max_examples=40, deadline=None)
@given(
    start_minutes=st.integers(-60, 2 * 1440),
    length_minutes=st.one_of(st.integers(1, 120), st.integers(1, 3 * 1440)),
    band=st.one_of(
        st.none(), st.tuples(st.integers(0, 400), st.integers(0, 400)).map(sorted).map(tuple)
    ),
)
def test_page_bucket_range_is_the_snapshot_views(conn, start_minutes, length_minutes, band):
    # The page's price rows come from the segments; they must be the view's rows' buckets for
    # any window (segments begun before its start included) and price band.
    start = datetime(2025, 12, 1) + timedelta(minutes=start_minutes)
    low, high = (None, None) if band is None else (80_000.0 + 50 * band[0], 80_050.0 + 50 * band[1])
    parameters = {
        "symbol": SYMBOL,
        "start": start,
        "end": start + timedelta(minutes=length_minutes),
        "price_low": low,
        "price_high": high,
    }
    from_segments = conn.execute(history._BUCKET_RANGE, parameters).fetchone()
    from_view = conn.execute(
        "SELECT min(price_bucket), max(price_bucket) FROM heatmap_snapshots "
        "WHERE symbol = $symbol AND ts >= $start AND ts < $end "
        "AND ($price_low IS NULL OR price_bucket >= $price_low) "
        "AND ($price_high IS NULL OR price_bucket < $price_high)",
        parameters,
    ).fetchone()
    assert from_segments == from_view
