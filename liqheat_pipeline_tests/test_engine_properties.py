"""Property tests: on random small markets the engine equals the simple oracle, chunked runs
with carried state equal one pass, and the conservation identities hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.engine.config import CLOSURE_MODELS, ModelConfig
from liqheat_pipeline.lib.engine.replay import StateReplayError, remaining_at_end
from liqheat_pipeline.lib.engine.run import MarketSeries, run_model
from liqheat_pipeline_tests.helpers.model_builders import (
    OUTPUT_TABLES,
    candle_frame,
    day_starts,
    oi_frame,
    plain,
    run_in_chunks,
    views_minus_engine_cells,
)
from liqheat_pipeline_tests.helpers.model_oracle import run_oracle

SETTINGS = settings(
    max_examples=75,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Engine running sums and the oracle's per-level products round differently; differences stay
# within 1e-9 of the value or of the market's notional scale (the largest sum involved).
RTOL = 1e-9
PRICE = {"BTCUSDT": 90_000.0, "ETHUSDT": 3_000.0, "DEMOUSDT": 1.2345}
# Day starts around bracket-table changes (BTCUSDT 2024-07-01 and 2025-01-01).
STARTS = ("2025-12-01 00:00", "2024-12-31 23:30", "2024-06-30 23:40")
TIERS = (1, 2, 3, 5, 10, 20, 25, 50, 75, 100, 125)


@st.composite
def markets(draw, *, max_candles: int = 40):
    symbol = draw(st.sampled_from(sorted(PRICE)))
    interval = draw(st.sampled_from([5, 5, 1]))
    n = draw(st.integers(1, max_candles))
    start = pd.Timestamp(draw(st.sampled_from(STARTS)))
    sigma = draw(st.sampled_from([0.001, 0.005, 0.02, 0.08]))
    decimals = 4 if symbol == "DEMOUSDT" else 1
    moves = draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n))
    wicks = draw(st.lists(st.tuples(st.floats(0, 3), st.floats(0, 3)), min_size=n, max_size=n))
    close = PRICE[symbol] * np.exp(np.cumsum(np.array(moves) * sigma))
    open_ = np.concatenate([[PRICE[symbol]], close[:-1]])
    upper = np.maximum(open_, close) * (1 + np.array([w[0] for w in wicks]) * sigma)
    lower = np.minimum(open_, close) * (1 - np.array([w[1] for w in wicks]) * sigma / 2)
    ohlc = np.round(np.column_stack([open_, upper, lower, close]), decimals)
    ohlc[:, 1] = ohlc.max(axis=1)
    ohlc[:, 2] = ohlc.min(axis=1)
    volume = np.array(
        draw(st.lists(st.sampled_from([np.nan, 0.0, 1.0, 7.5, 300.0]), min_size=n, max_size=n))
    )
    vwap_shift = np.array(draw(st.lists(st.floats(-0.5, 0.5), min_size=n, max_size=n)))
    vwap = ohlc[:, 2] + (ohlc[:, 1] - ohlc[:, 2]) * (0.5 + vwap_shift)
    quote_volume = np.where(draw(st.booleans()), volume * vwap, np.nan)
    buy_share = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    taker = np.where(draw(st.booleans()), volume * buy_share, np.nan)
    candles = candle_frame(
        ohlc,
        start=start,
        interval_minutes=interval,
        volume=volume,
        quote_volume=quote_volume,
        taker_buy_volume=taker,
    )
    kept = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    kept[0] = True
    candles = candles[np.array(kept) | (draw(st.integers(0, 3)) == 0)].reset_index(drop=True)

    steps = draw(
        st.lists(
            st.one_of(st.floats(-0.9, 0.9), st.sampled_from([-1.0, 0.0, 0.5, np.nan])),
            min_size=n,
            max_size=n,
        )
    )
    oi = [draw(st.sampled_from([10.0, 250.0, 4_000.0]))]
    for step in steps:
        oi.append(
            np.nan
            if np.isnan(step)
            else max(0.0, (oi[-1] if oi[-1] == oi[-1] else 50.0) * (1 + step))
        )
    open_interest = oi_frame(oi, start=start, interval_minutes=interval)

    marks = None
    if draw(st.booleans()):
        noise = np.array(
            draw(st.lists(st.floats(-1, 1), min_size=len(candles), max_size=len(candles)))
        )
        present = np.array(
            draw(st.lists(st.booleans(), min_size=len(candles), max_size=len(candles)))
        )
        mark_high = candles["high"].to_numpy() * (1 + noise * sigma / 4)
        mark_low = np.minimum(candles["low"].to_numpy() * (1 + noise * sigma / 4), mark_high)
        marks = pd.DataFrame(
            {"open_time": candles["open_time"], "high": mark_high, "low": mark_low}
        )[present]

    chosen = draw(st.lists(st.sampled_from(TIERS), min_size=1, max_size=5, unique=True))
    parts = draw(st.lists(st.integers(1, 9), min_size=len(chosen), max_size=len(chosen)))
    config = ModelConfig(
        leverage_tiers=tuple(zip(chosen, (p / sum(parts) for p in parts), strict=True)),
        side_model=draw(st.sampled_from(["candle", "taker", "symmetric"])),
        entry_price=draw(st.sampled_from(["vwap", "hlc3", "close"])),
        closure_model=draw(st.sampled_from(list(CLOSURE_MODELS))),
        bucket_sizes=draw(
            st.sampled_from([(("BTCUSDT", 100.0), ("ETHUSDT", 5.0)), (("BTCUSDT", 37.5),), ()])
        ),
        interval_minutes=interval,
    )
    splits = sorted(draw(st.sets(st.integers(1, max(1, len(candles) - 1)), max_size=4)))
    return symbol, candles, open_interest, marks, config, splits


def _close(actual, expected, scale) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, float), np.asarray(expected, float), rtol=RTOL, atol=RTOL * scale
    )


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return plain(frame).sort_values(keys).reset_index(drop=True)


def assert_matches_oracle(frames, oracle) -> None:
    scale = max(1.0, float(oracle.level_openings["notional_usd"].sum()))
    engine = _sorted(frames["level_openings"], ["level_id"])
    expected = _sorted(oracle.level_openings, ["level_id"])
    assert engine["level_id"].tolist() == expected["level_id"].tolist()
    for column in ("created_at", "side", "leverage", "tier_leverage"):
        assert engine[column].tolist() == expected[column].tolist(), column
    for column in ("entry_price", "liq_price", "notional_usd", "mmr", "maint_amount"):
        _close(engine[column], expected[column], 0.0)
    assert engine["price_bucket"].tolist() == expected["price_bucket"].tolist()

    engine = _sorted(frames["level_consumptions"], ["level_id"])
    expected = _sorted(oracle.level_consumptions, ["level_id"])
    assert engine["level_id"].tolist() == expected["level_id"].tolist()
    assert engine["consumed_at"].tolist() == expected["consumed_at"].tolist()
    assert engine["side"].tolist() == expected["side"].tolist()
    _close(engine["consumed_usd"], expected["consumed_usd"], scale)

    for table, keys in (
        ("candle_ledger", ["ts", "side"]),
        ("heatmap_snapshots", ["ts", "price_bucket", "side"]),
        ("heatmap_snapshots_by_leverage", ["ts", "price_bucket", "side", "leverage"]),
    ):
        engine = _sorted(frames[table], keys)
        expected = _sorted(getattr(oracle, table), keys)
        for key in keys:
            assert engine[key].tolist() == expected[key].tolist(), (table, key)
        for column in expected.columns:
            if column.endswith("_usd"):
                _close(engine[column], expected[column], scale)
    # Coverage = active / OI notional: the ledger's absolute tolerance, relative to that notional.
    engine = _sorted(frames["candle_ledger"], ["ts", "side"])
    expected = _sorted(oracle.candle_ledger, ["ts", "side"])
    oi_usd = expected["open_interest_usd"].to_numpy(float)
    positive = oi_usd[oi_usd > 0]
    smallest = float(positive.min()) if len(positive) else 1.0
    np.testing.assert_allclose(
        engine["coverage"].to_numpy(float),
        expected["coverage"].to_numpy(float),
        rtol=RTOL,
        atol=RTOL * scale / smallest,
    )


@SETTINGS
@given(markets())
def test_engine_equals_the_oracle(case):
    symbol, candles, open_interest, marks, config, _ = case
    oracle = run_oracle(symbol, candles, open_interest, config, marks)
    engine = run_in_chunks(symbol, candles, open_interest, config, marks=marks)
    assert_matches_oracle(engine.frames, oracle)
    assert engine.stats["oi_gaps"] == oracle.stats["oi_gaps"]
    assert engine.stats["taker_fallbacks"] == oracle.stats["taker_fallbacks"]
    assert engine.stats["mark_fallbacks"] == oracle.stats["mark_fallbacks"]
    assert engine.stats["leverage_capped"] == oracle.stats["leverage_capped"]
    assert engine.stats["levels_dust_closed"] == oracle.stats["dust_closed"]
    assert len(engine.state) == len(oracle.active_levels)


@SETTINGS
@given(markets())
def test_chunks_with_carried_state_equal_one_pass(case):
    symbol, candles, open_interest, marks, config, splits = case
    one_pass = run_in_chunks(symbol, candles, open_interest, config, marks=marks)
    chunked = run_in_chunks(symbol, candles, open_interest, config, marks=marks, splits=splits)
    scale = max(1.0, float(one_pass.frames["level_openings"]["notional_usd"].sum()))
    _assert_same_outputs(chunked.frames, one_pass.frames, scale)
    np.testing.assert_array_equal(chunked.state.level_id, one_pass.state.level_id)
    _close(chunked.state.remaining_usd, one_pass.state.remaining_usd, scale)


@settings(SETTINGS, max_examples=25)
@given(markets(max_candles=24))
def test_state_rebuilt_from_duckdb_keeps_results(tmp_path_factory, case):
    """Day by day as the pipeline runs, the state rebuilt from the stored rows is the engine's
    own, bit for bit, and so is everything computed from it."""
    symbol, candles, open_interest, marks, config, _ = case
    store = tmp_path_factory.mktemp("state") / "state.duckdb"
    days = day_starts(candles)
    in_memory = run_in_chunks(symbol, candles, open_interest, config, marks=marks, splits=days)
    stored = run_in_chunks(symbol, candles, open_interest, config, marks=marks, store=store)
    for table in OUTPUT_TABLES:
        pd.testing.assert_frame_equal(
            plain(stored.frames[table]), plain(in_memory.frames[table]), check_exact=True
        )
    pd.testing.assert_frame_equal(
        stored.state.levels_frame(), in_memory.state.levels_frame(), check_exact=True
    )
    assert_view_state_is_the_engines(store, in_memory.state)


def assert_view_state_is_the_engines(path, state) -> None:
    """The view model_state at the last stored day holds the engine's levels, with its remaining
    notional to 1e-12 relative (the view sums logarithms of the scales)."""
    with warehouse.connect(path, read_only=True) as conn:
        view = conn.execute(
            "SELECT level_id, remaining_usd FROM model_state "
            "WHERE day = (SELECT max(day) FROM model_runs) ORDER BY level_id"
        ).fetchnumpy()
    np.testing.assert_array_equal(view["level_id"], state.level_id)
    np.testing.assert_allclose(view["remaining_usd"], state.remaining_usd, rtol=1e-12, atol=0)


@settings(SETTINGS, max_examples=25)
@given(markets(max_candles=24))
def test_the_snapshot_views_return_exactly_the_engines_cells(tmp_path_factory, case):
    """The views over the stored segments and ledger, bit for bit (docs/model.md §4)."""
    symbol, candles, open_interest, marks, config, splits = case
    run = run_in_chunks(symbol, candles, open_interest, config, marks=marks, splits=splits)
    path = tmp_path_factory.mktemp("views") / "views.duckdb"
    assert views_minus_engine_cells(run.outputs, path) == dict.fromkeys(
        ("heatmap_snapshots", "heatmap_snapshots_by_leverage"), 0
    )


def _assert_same_outputs(actual, expected, scale) -> None:
    for table, keys in (
        ("level_openings", ["level_id"]),
        ("level_consumptions", ["level_id"]),
        ("candle_ledger", ["ts", "side"]),
        ("heatmap_snapshots", ["ts", "price_bucket", "side"]),
        ("heatmap_snapshots_by_leverage", ["ts", "price_bucket", "side", "leverage"]),
    ):
        left, right = _sorted(actual[table], keys), _sorted(expected[table], keys)
        assert list(left.columns) == list(right.columns)
        for column in left.columns:
            if column == "closure_scale":
                continue  # relative to each run's start (1 there), so chunking changes it
            if left[column].dtype.kind == "f":
                _close(left[column], right[column], scale if column.endswith("_usd") else 0.0)
            else:
                assert left[column].tolist() == right[column].tolist(), (table, column)


@SETTINGS
@given(markets())
def test_same_inputs_give_identical_outputs(case):
    symbol, candles, open_interest, marks, config, splits = case
    first = run_in_chunks(symbol, candles, open_interest, config, marks=marks, splits=splits)
    second = run_in_chunks(symbol, candles, open_interest, config, marks=marks, splits=splits)
    for table in OUTPUT_TABLES:
        pd.testing.assert_frame_equal(first.frames[table], second.frames[table])
    assert first.stats == second.stats


@SETTINGS
@given(markets())
def test_ledger_identity_and_snapshot_sums(case):
    symbol, candles, open_interest, marks, config, splits = case
    run = run_in_chunks(symbol, candles, open_interest, config, marks=marks, splits=splits)
    frames = {table: plain(frame) for table, frame in run.frames.items()}
    scale = max(1.0, float(frames["level_openings"]["notional_usd"].sum()))
    ledger = frames["candle_ledger"].sort_values(["side", "ts"])
    for _, rows in ledger.groupby("side"):
        previous = np.concatenate([[0.0], rows["active_usd"].to_numpy()[:-1]])
        expected = previous + rows["opened_usd"] - rows["consumed_usd"] - rows["closed_usd"]
        _close(rows["active_usd"], expected, scale)
        assert (rows[["opened_usd", "consumed_usd", "closed_usd", "active_usd"]] >= 0).all().all()

    buckets = frames["heatmap_snapshots"]
    summed = buckets.groupby(["ts", "side"])[["active_usd", "consumed_usd"]].sum()
    joined = ledger.set_index(["ts", "side"])[["active_usd", "consumed_usd"]].join(
        summed, rsuffix="_cells"
    )
    joined = joined.fillna(0.0)
    _close(joined["active_usd_cells"], joined["active_usd"], scale)
    _close(joined["consumed_usd_cells"], joined["consumed_usd"], scale)
    assert ((buckets["active_usd"] > 0) | (buckets["consumed_usd"] > 0)).all()

    layers = frames["heatmap_snapshots_by_leverage"]
    per_bucket = layers.groupby(["ts", "price_bucket", "side"])[
        ["active_usd", "consumed_usd"]
    ].sum()
    aligned = buckets.set_index(["ts", "price_bucket", "side"]).sort_index()
    assert per_bucket.index.equals(aligned.index)
    _close(per_bucket["active_usd"], aligned["active_usd"], scale)
    _close(per_bucket["consumed_usd"], aligned["consumed_usd"], scale)


@pytest.mark.parametrize("closure_model", CLOSURE_MODELS)
def test_scale_renormalisation_keeps_matching_the_oracle(closure_model):
    """Opening and then closing 99.9 % (of the modelled book, or of open interest for the
    oi_share rules), 60 times over, pushes the closure scale below 1e-150 within one run; the
    engine cuts and continues the run."""
    n = 120
    ohlc = np.tile([90_000.0, 90_010.0, 89_990.0, 90_000.0], (n, 1))
    oi, active_units = [1e6], 0.0
    for k in range(n):
        if k % 2 == 0:
            oi.append(oi[-1] + 10.0)
            active_units += 20.0  # symmetric: both sides
        elif closure_model.startswith("oi_share"):
            oi.append(oi[-1] * 0.001)
        else:
            oi.append(oi[-1] - 0.999 * active_units)
            active_units *= 0.001
    candles, open_interest = candle_frame(ohlc), oi_frame(oi)
    config = ModelConfig(side_model="symmetric", entry_price="close", closure_model=closure_model)
    engine = run_in_chunks("BTCUSDT", candles, open_interest, config)
    assert engine.stats["renormalisations"] >= 1
    assert_matches_oracle(engine.frames, run_oracle("BTCUSDT", candles, open_interest, config))
    assert_replay_is_the_engines_state(engine)


def test_levels_carried_across_a_renormalisation_cut_are_rebuilt_exactly(tmp_path):
    """One-minute candles within one day: every other candle opens levels, the next halves the
    open interest (oi_share closes half of every level). The scale falls below 1e-150 after
    about 500 closes and the run is cut; the levels opened in the 30 closes before the cut are
    still active after it (they dust out at 1e-9 ≈ 2^-30 of their opening)."""
    n = 1_020
    ohlc = np.tile([90_000.0, 90_010.0, 89_990.0, 90_000.0], (n, 1))
    oi = [100.0]
    for k in range(n):
        oi.append(oi[-1] + 10.0 if k % 2 == 0 else oi[-1] * 0.5)
    candles = candle_frame(ohlc, interval_minutes=1)
    open_interest = oi_frame(oi, interval_minutes=1)
    config = ModelConfig(
        side_model="symmetric", entry_price="close", closure_model="oi_share", interval_minutes=1
    )
    engine = run_in_chunks("BTCUSDT", candles, open_interest, config)
    assert engine.stats["renormalisations"] >= 1
    longs = engine.frames["candle_ledger"].query("side == 'long'")
    scale = longs["closure_scale"].to_numpy()
    after_cut = longs["ts"].to_numpy()[1:][scale[1:] > scale[:-1]][0]
    assert (engine.state.created_at < after_cut).any()  # carried across the cut
    assert_replay_is_the_engines_state(engine)
    path = tmp_path / "cut.duckdb"
    stored = run_in_chunks("BTCUSDT", candles, open_interest, config, store=path)
    np.testing.assert_array_equal(stored.state.remaining_usd, engine.state.remaining_usd)
    assert_view_state_is_the_engines(path, engine.state)


def assert_replay_is_the_engines_state(run) -> None:
    longs = run.frames["candle_ledger"].query("side == 'long'")
    rebuilt = remaining_at_end(
        longs["ts"].to_numpy(),
        longs["closure_scale"].to_numpy(),
        run.state.created_at,
        run.state.notional_usd,
    )
    np.testing.assert_array_equal(rebuilt, run.state.remaining_usd)


@SETTINGS
@given(markets())
def test_the_replay_rebuilds_the_state_of_day_by_day_runs_bit_for_bit(case):
    symbol, candles, open_interest, marks, config, _ = case
    run = run_in_chunks(
        symbol, candles, open_interest, config, marks=marks, splits=day_starts(candles)
    )
    assert_replay_is_the_engines_state(run)


def test_the_replay_refuses_a_level_opened_off_the_stored_candles():
    times = pd.date_range("2025-12-01", periods=3, freq="5min").to_numpy()
    with pytest.raises(StateReplayError, match="2025-12-01 00:07:00"):
        remaining_at_end(
            times,
            np.ones(3),
            np.array(["2025-12-01 00:07"], dtype="datetime64[ns]"),
            np.ones(1),
        )


@SETTINGS
@given(markets())
def test_a_run_without_snapshots_differs_only_by_its_empty_snapshot_tables(case):
    symbol, candles, open_interest, marks, config, _ = case
    market = MarketSeries.from_frames(candles, open_interest, marks)
    full = run_model(symbol, market, config)
    lean = run_model(symbol, market, config, snapshots=False)
    for table in ("level_openings", "level_consumptions", "candle_ledger"):
        pd.testing.assert_frame_equal(getattr(lean, table), getattr(full, table))
    for table in ("heatmap_snapshots", "heatmap_snapshots_by_leverage"):
        assert getattr(lean, table).empty
        assert list(getattr(lean, table).columns) == list(getattr(full, table).columns)
    pd.testing.assert_frame_equal(lean.state.levels_frame(), full.state.levels_frame())
    assert lean.stats == full.stats
