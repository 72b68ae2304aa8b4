"""The engine on the real 30-day BTCUSDT and ETHUSDT sample, run day by day like the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqheat_pipeline.lib.archive.readers import read_klines, read_metrics
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.engine.market import split_by_day
from liqheat_pipeline.lib.engine.run import MarketSeries, run_model
from liqheat_pipeline_tests.conftest import REAL_SYMBOLS
from liqheat_pipeline_tests.helpers.model_builders import (
    Combined,
    combine,
    views_minus_engine_cells,
)

pytestmark = pytest.mark.real_data


@dataclass
class RealRun:
    candles: pd.DataFrame
    frames: dict[str, pd.DataFrame]
    state: object
    stats: dict
    run: Combined


def _read(root: Path, symbol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = root / "futures" / "um" / "daily"
    candles = pd.concat(
        [read_klines(p).frame for p in sorted((base / "klines" / symbol / "5m").glob("*"))],
        ignore_index=True,
    )
    open_interest = pd.concat(
        [read_metrics(p).frame for p in sorted((base / "metrics" / symbol).glob("*"))],
        ignore_index=True,
    )
    return candles, open_interest


@pytest.fixture(scope="module", params=REAL_SYMBOLS)
def real_run(request, real_binance_dir) -> RealRun:
    symbol = request.param
    candles, open_interest = _read(real_binance_dir, symbol)
    state, outputs = None, []
    for _, market in split_by_day(candles, open_interest):
        output = run_model(symbol, market, ModelConfig(), state)
        outputs.append(output)
        state = output.state
    run = combine(outputs)
    return RealRun(candles=candles, frames=run.frames, state=run.state, stats=run.stats, run=run)


def _positions(run: RealRun, times: pd.Series) -> np.ndarray:
    return np.searchsorted(run.candles["open_time"].to_numpy(), times.to_numpy())


def test_every_consumption_is_the_first_crossing_after_creation(real_run):
    lows = real_run.candles["low"].to_numpy()
    highs = real_run.candles["high"].to_numpy()
    levels = real_run.frames["level_openings"].set_index("level_id")
    consumed = real_run.frames["level_consumptions"]
    assert len(consumed) > 1000
    created = _positions(real_run, levels.loc[consumed["level_id"], "created_at"])
    at = _positions(real_run, consumed["consumed_at"])
    prices = levels.loc[consumed["level_id"], "liq_price"].to_numpy()
    is_long = (levels.loc[consumed["level_id"], "side"] == "long").to_numpy()
    for first, crossing, price, long in zip(created, at, prices, is_long, strict=True):
        assert crossing > first
        if long:
            assert lows[crossing] <= price < lows[first + 1 : crossing].min(initial=np.inf)
        else:
            assert highs[crossing] >= price > highs[first + 1 : crossing].max(initial=-np.inf)


def test_no_active_level_has_been_crossed(real_run):
    lows = real_run.candles["low"].to_numpy()
    highs = real_run.candles["high"].to_numpy()
    # Lowest low / highest high from each candle to the end.
    lowest = np.minimum.accumulate(lows[::-1])[::-1]
    highest = np.maximum.accumulate(highs[::-1])[::-1]
    state = real_run.state.levels_frame()
    assert len(state) > 100
    after = _positions(real_run, state["created_at"]) + 1
    later = after < len(lows)
    long = (state["side"] == "long").to_numpy() & later
    short = (state["side"] == "short").to_numpy() & later
    assert (lowest[after[long]] > state["liq_price"].to_numpy()[long]).all()
    assert (highest[after[short]] < state["liq_price"].to_numpy()[short]).all()


def test_counters_match_the_sample(real_run):
    stats = real_run.stats
    assert stats["candles"] == 30 * 288
    # The first file starts at 00:05 (label convention before 2026-06-25): one gap, first candle.
    assert stats["oi_gaps"] == 1
    # The default entry is the close, which every candle has.
    assert stats["entry_price_fallbacks"] == 0
    assert stats["levels_opened"] == len(real_run.frames["level_openings"])
    assert stats["levels_consumed"] == len(real_run.frames["level_consumptions"])
    assert stats["leverage_capped"] == 0
    opened_minus_gone = (
        stats["levels_opened"] - stats["levels_consumed"] - stats["levels_dust_closed"]
    )
    assert opened_minus_gone == len(real_run.state)


def test_conservation_on_real_data(real_run):
    ledger = real_run.frames["candle_ledger"].sort_values(["side", "ts"])
    scale = real_run.frames["level_openings"]["notional_usd"].sum()
    for _, rows in ledger.groupby("side", observed=True):
        previous = np.concatenate([[0.0], rows["active_usd"].to_numpy()[:-1]])
        expected = previous + rows["opened_usd"] - rows["consumed_usd"] - rows["closed_usd"]
        np.testing.assert_allclose(rows["active_usd"], expected, rtol=1e-9, atol=1e-9 * scale)
    snapshots = real_run.frames["heatmap_snapshots"]
    cells = snapshots.groupby(["ts", "side"], observed=True)["active_usd"].sum()
    aligned = ledger.set_index(["ts", "side"])["active_usd"]
    aligned = aligned[aligned > 0]
    np.testing.assert_allclose(cells.loc[aligned.index], aligned, rtol=1e-9)


def test_the_snapshot_views_return_exactly_the_engines_cells(real_run, tmp_path):
    """30 real days stored as segments: the views hold every engine cell, bit for bit, and no
    other row; the segments are far fewer than the cells."""
    run = real_run.run
    assert views_minus_engine_cells(run.outputs, tmp_path / "real.duckdb") == {
        "heatmap_snapshots": 0,
        "heatmap_snapshots_by_leverage": 0,
    }
    segments = sum(len(output.snapshot_segments_by_leverage) for output in run.outputs)
    assert segments * 20 < len(real_run.frames["heatmap_snapshots_by_leverage"])


def test_one_pass_equals_day_by_day(real_run, real_binance_dir):
    symbol = real_run.frames["level_openings"]["symbol"].iloc[0]
    candles, open_interest = _read(real_binance_dir, symbol)
    one_pass = run_model(
        symbol, MarketSeries.from_frames(candles, open_interest), ModelConfig(), None
    )
    scale = real_run.frames["level_openings"]["notional_usd"].sum()
    # Same rows in the same order (ts, then bucket, side, leverage), values within 1e-9.
    for table, keys in (
        ("level_consumptions", ["level_id", "consumed_at", "side"]),
        ("candle_ledger", ["ts", "side"]),
        ("heatmap_snapshots_by_leverage", ["ts", "price_bucket", "side", "leverage"]),
    ):
        whole, daily = getattr(one_pass, table), real_run.frames[table]
        assert len(whole) == len(daily), table
        for key in keys:
            np.testing.assert_array_equal(whole[key].to_numpy(), daily[key].to_numpy(), key)
        for column in [c for c in whole.columns if c.endswith("_usd")]:
            np.testing.assert_allclose(
                whole[column], daily[column], rtol=1e-9, atol=1e-9 * scale, err_msg=column
            )


@pytest.mark.parametrize("symbol", REAL_SYMBOLS)
def test_vwap_falls_back_to_hlc3_wherever_open_interest_moved(real_binance_dir, symbol):
    """The sample has no quote volume, so every VWAP entry is an hlc3 fallback, counted."""
    candles, open_interest = _read(real_binance_dir, symbol)
    _, market = next(iter(split_by_day(candles, open_interest)))
    vwap = run_model(symbol, market, ModelConfig(entry_price="vwap"), None)
    hlc3 = run_model(symbol, market, ModelConfig(entry_price="hlc3"), None)
    ledger = vwap.candle_ledger
    moved = ledger.groupby("ts", observed=True)[["opened_usd", "closed_usd"]].sum().gt(0)
    assert vwap.stats["entry_price_fallbacks"] >= moved.any(axis=1).sum() > 0
    pd.testing.assert_frame_equal(vwap.level_openings, hlc3.level_openings)
