"""One test (or a few) per rule of docs/model.md, on hand-made markets with numbers worked out
independently of the engine.

Configurations name the side model and entry price they assume (the v2 spec's `candle` and
`vwap`), so the numbers do not move with the validated defaults."""

from __future__ import annotations

import json
import math
import re

import duckdb
import numpy as np
import pandas as pd
import pytest

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.engine.liquidation import liquidation_price
from liqheat_pipeline.lib.engine.run import MarketSeries, ModelInputError, run_model
from liqheat_pipeline.lib.engine.state import ModelState
from liqheat_pipeline_tests.helpers.model_builders import START, candle_frame, oi_frame, plain

TEN_X = ModelConfig(leverage_tiers=((10, 1.0),), side_model="candle", entry_price="close")
# The v1 closure rule (share of the modelled book), for the rules it alone can reach in a few
# candles: a full wipe-out and dust.
TEN_X_V1 = ModelConfig(
    side_model="candle",
    leverage_tiers=((10, 1.0),),
    entry_price="close",
    closure_model="modelled_share_net",
)
MMR = 0.004  # BTCUSDT first bracket in December 2025
BULL = (90_000.0, 90_100.0, 89_950.0, 90_050.0)  # opens longs (candle model), entry 90,050
BEAR = (90_000.0, 90_050.0, 89_900.0, 89_950.0)  # opens shorts, entry 89,950
FLAT = (90_000.0, 90_000.0, 90_000.0, 90_000.0)  # doji, no price move
LONG_LP = float(liquidation_price(90_050.0, 10, "long", MMR, 0.0, 10_000.0))
SHORT_LP = float(liquidation_price(89_950.0, 10, "short", MMR, 0.0, 10_000.0))


def run(ohlc, oi, config=TEN_X, symbol="BTCUSDT", marks=None, state=None, **candles):
    frame = candle_frame(ohlc, interval_minutes=config.interval_minutes, **candles)
    market = MarketSeries.from_frames(
        frame, oi_frame(oi, interval_minutes=config.interval_minutes), marks
    )
    return run_model(symbol, market, config, state)


def ledger(output, side):
    frame = plain(output.candle_ledger)
    return frame[frame["side"] == side].reset_index(drop=True)


def candle_through(low=None, high=None):
    """A candle around 90,000 reaching down to ``low`` or up to ``high``."""
    if low is not None:
        return (90_000.0, 90_000.0, low, 90_000.0)
    return (90_000.0, high, 90_000.0, 90_000.0)


# -- Step 2: opening from base-unit open-interest changes ------------------------------------


def test_levels_open_from_base_unit_oi_change_times_entry_price():
    output = run([BULL, FLAT], [100.0, 101.5, 101.5])
    openings = plain(output.level_openings)
    assert len(openings) == 1
    assert openings["notional_usd"][0] == pytest.approx(1.5 * 90_050.0, rel=1e-15)
    assert openings["entry_price"][0] == 90_050.0
    assert ledger(output, "long")["opened_usd"].tolist() == pytest.approx([1.5 * 90_050.0, 0.0])


def test_the_usd_value_column_never_opens_anything():
    # Open interest stays at 100 BTC while its USD value rises with the price: nothing opens.
    candles = candle_frame([BULL, BULL])
    open_interest = oi_frame([100.0, 100.0, 100.0])
    open_interest["open_interest_value"] = [9.0e6, 9.2e6, 9.4e6]
    output = run_model("BTCUSDT", MarketSeries.from_frames(candles, open_interest), TEN_X)
    assert output.level_openings.empty
    assert (output.candle_ledger["opened_usd"] == 0).all()


# -- Step 3: side models ------------------------------------------------------------------------


def test_candle_side_model_bullish_long_bearish_short_doji_nothing():
    output = run([BULL, BEAR, FLAT], [100.0, 101.0, 102.0, 103.0])
    openings = plain(output.level_openings)
    assert openings["side"].tolist() == ["long", "short"]
    assert openings["created_at"].tolist() == [START, START + pd.Timedelta(minutes=5)]
    assert ledger(output, "long")["opened_usd"][2] == 0
    assert ledger(output, "short")["opened_usd"][2] == 0


def test_taker_side_model_splits_by_taker_buy_share():
    config = ModelConfig(leverage_tiers=((10, 1.0),), entry_price="close", side_model="taker")
    output = run([BEAR], [100.0, 102.0], config, volume=40.0, taker_buy_volume=30.0)
    long, short = ledger(output, "long"), ledger(output, "short")
    assert long["opened_usd"][0] == pytest.approx(2 * 89_950.0 * 0.75, rel=1e-15)
    assert short["opened_usd"][0] == pytest.approx(2 * 89_950.0 * 0.25, rel=1e-15)
    assert output.stats["taker_fallbacks"] == 0


@pytest.mark.parametrize(
    ("volume", "taker"), [(40.0, math.nan), (math.nan, 10.0), (0.0, 0.0)], ids=str
)
def test_taker_side_model_falls_back_to_candle_colour_and_counts(volume, taker):
    config = ModelConfig(leverage_tiers=((10, 1.0),), entry_price="close", side_model="taker")
    output = run([BULL, BULL], [100.0, 101.0, 100.0], config, volume=volume, taker_buy_volume=taker)
    assert plain(output.level_openings)["side"].tolist() == ["long"]
    # Counted once: the second candle closes positions and needs no side split.
    assert output.stats["taker_fallbacks"] == 1


def test_symmetric_side_model_opens_both_sides_in_full():
    config = ModelConfig(leverage_tiers=((10, 1.0),), entry_price="close", side_model="symmetric")
    output = run([FLAT], [100.0, 101.0], config)
    assert ledger(output, "long")["opened_usd"][0] == 90_000.0
    assert ledger(output, "short")["opened_usd"][0] == 90_000.0


# -- Step 2: entry prices ---------------------------------------------------------------------


def test_vwap_entry_is_quote_volume_over_volume():
    config = ModelConfig(side_model="candle", entry_price="vwap", leverage_tiers=((10, 1.0),))
    output = run([BULL], [100.0, 101.0], config, volume=4.0, quote_volume=360_100.0)
    assert plain(output.level_openings)["entry_price"][0] == 90_025.0
    assert output.stats["entry_price_fallbacks"] == 0


@pytest.mark.parametrize(
    ("volume", "quote_volume"), [(math.nan, 1e6), (4.0, math.nan), (0.0, 0.0)], ids=str
)
def test_vwap_falls_back_to_hlc3(volume, quote_volume):
    config = ModelConfig(side_model="candle", entry_price="vwap", leverage_tiers=((10, 1.0),))
    output = run([BULL], [100.0, 101.0], config, volume=volume, quote_volume=quote_volume)
    hlc3 = (90_100.0 + 89_950.0 + 90_050.0) / 3
    assert plain(output.level_openings)["entry_price"][0] == pytest.approx(hlc3, rel=1e-15)
    assert output.stats["entry_price_fallbacks"] == 1


@pytest.mark.parametrize(("model", "expected"), [("hlc3", 90_033.333333333), ("close", 90_050.0)])
def test_hlc3_and_close_entries(model, expected):
    config = ModelConfig(side_model="candle", leverage_tiers=((10, 1.0),), entry_price=model)
    output = run([BULL], [100.0, 101.0], config, volume=4.0, quote_volume=1.0)
    assert plain(output.level_openings)["entry_price"][0] == pytest.approx(expected, rel=1e-12)


# -- Step 5: liquidation price, level id, bucket, leverage cap ----------------------------------


def test_level_record_carries_binance_price_id_and_bucket():
    config = ModelConfig(
        side_model="candle", leverage_tiers=((5, 0.5), (10, 0.5)), entry_price="close"
    )
    output = run([FLAT, BEAR], [100.0, 100.0, 102.0], config)
    openings = plain(output.level_openings)
    created = START + pd.Timedelta(minutes=5)
    minutes = int(created.value // 60_000_000_000)
    assert openings["level_id"].tolist() == [minutes * 1000 + 100, minutes * 1000 + 101]
    expected_lp = [89_950.0 * (1 + 1 / 5) / 1.004, 89_950.0 * (1 + 1 / 10) / 1.004]
    assert openings["liq_price"].tolist() == pytest.approx(expected_lp, rel=1e-15)
    assert openings["price_bucket"].tolist() == [107_500.0, 98_500.0]
    assert openings["mmr"].tolist() == [MMR, MMR]
    assert openings["maint_amount"].tolist() == [0.0, 0.0]
    assert openings["tier_leverage"].tolist() == openings["leverage"].tolist() == [5, 10]


def test_leverage_above_the_bracket_maximum_is_capped_and_counted():
    # DEMOUSDT uses the generic table: 75x at most for a 10,000 USDT position, MMR 0.65 %.
    config = ModelConfig(
        side_model="candle", leverage_tiers=((50, 0.5), (100, 0.5)), entry_price="close"
    )
    output = run([(1.0, 1.1, 0.9, 1.05)], [1000.0, 1100.0], config, symbol="DEMOUSDT")
    openings = plain(output.level_openings)
    assert openings["tier_leverage"].tolist() == [50, 100]
    assert openings["leverage"].tolist() == [50, 75]
    assert openings["liq_price"][1] == pytest.approx(1.05 * (1 - 1 / 75) / (1 - 0.0065), rel=1e-15)
    assert output.stats["leverage_capped"] == 1
    assert output.state.bucket_size == 0.001  # 0.1 % of the first price on a 1-2-5 step


# -- Step 1: consumption ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("second", "consumed"),
    [
        (candle_through(low=LONG_LP), True),  # exact touch
        ((90_000.0, 90_000.0, LONG_LP - 1, 89_990.0), True),  # wick only
        ((LONG_LP - 500, LONG_LP - 400, LONG_LP - 600, LONG_LP - 450), True),  # gap through
        (candle_through(low=round(LONG_LP + 0.1, 1)), False),  # one tick short
        (candle_through(low=float(np.nextafter(LONG_LP, math.inf))), False),
    ],
    ids=["touch", "wick", "gap", "tick-short", "ulp-short"],
)
def test_long_level_is_consumed_by_the_first_low_at_or_below_it(second, consumed):
    output = run([BULL, second], [100.0, 101.0, 101.0])
    consumptions = plain(output.level_consumptions)
    assert len(consumptions) == int(consumed)
    if consumed:
        assert consumptions["consumed_at"][0] == START + pd.Timedelta(minutes=5)
        assert consumptions["consumed_usd"][0] == 90_050.0
        assert ledger(output, "long")["consumed_usd"].tolist() == [0.0, 90_050.0]
        assert len(output.state) == 0


@pytest.mark.parametrize(
    ("second", "consumed"),
    [
        (candle_through(high=SHORT_LP), True),
        ((SHORT_LP + 500, SHORT_LP + 600, SHORT_LP + 400, SHORT_LP + 450), True),
        (candle_through(high=float(np.nextafter(SHORT_LP, -math.inf))), False),
    ],
    ids=["touch", "gap", "ulp-short"],
)
def test_short_level_is_consumed_by_the_first_high_at_or_above_it(second, consumed):
    output = run([BEAR, second], [100.0, 101.0, 101.0])
    assert len(output.level_consumptions) == int(consumed)


def test_never_consumed_in_its_creation_candle():
    # The creation candle's own low is far below the level; the next candle stays above it.
    creation = (90_000.0, 90_100.0, 80_000.0, 90_050.0)
    output = run([creation, FLAT], [100.0, 101.0, 101.0])
    assert output.level_consumptions.empty
    assert len(output.state) == 1
    assert output.state.liq_price[0] == LONG_LP


def test_consumption_takes_the_first_crossing_only():
    output = run(
        [BULL, FLAT, candle_through(low=LONG_LP - 10), candle_through(low=LONG_LP - 20)],
        [100.0, 101.0, 101.0, 101.0, 101.0],
    )
    assert plain(output.level_consumptions)["consumed_at"].tolist() == [
        START + pd.Timedelta(minutes=10)
    ]


def _marks(rows):
    times = START + pd.to_timedelta(np.arange(len(rows)) * 5, unit="min")
    frame = pd.DataFrame(rows, columns=["high", "low"])
    frame.insert(0, "open_time", times)
    return frame.dropna()


def test_mark_price_candles_take_precedence_over_last_price():
    # Candle 1: last price wicks through the level, mark price does not -> kept.
    # Candle 2: last price stays above, mark price touches -> consumed in candle 2.
    marks = _marks([(90_100.0, 89_950.0), (90_000.0, LONG_LP + 5), (90_000.0, LONG_LP)])
    candles = [BULL, candle_through(low=LONG_LP - 100), FLAT]
    output = run(candles, [100.0, 101.0, 101.0, 101.0], marks=marks)
    assert plain(output.level_consumptions)["consumed_at"].tolist() == [
        START + pd.Timedelta(minutes=10)
    ]
    assert output.stats["mark_fallbacks"] == 0


def test_missing_mark_candle_falls_back_to_last_price_and_counts():
    marks = _marks([(90_100.0, 89_950.0), (math.nan, math.nan)])
    output = run([BULL, candle_through(low=LONG_LP)], [100.0, 101.0, 101.0], marks=marks)
    assert len(output.level_consumptions) == 1
    assert output.stats["mark_fallbacks"] == 1


# -- Step 6: closures --------------------------------------------------------------------------


def test_oi_share_closure_scales_every_level_by_the_closed_share_of_open_interest():
    # 0.5 BTC of 103 BTC open interest closes: every level, long or short, loses 0.5 / 103,
    # however small the modelled book is (entry = close = 90,000 in the closing candle).
    config = ModelConfig(
        side_model="candle",
        leverage_tiers=((10, 1.0),),
        entry_price="close",
        closure_model="oi_share",
    )
    output = run([BULL, BEAR, FLAT], [100.0, 102.0, 103.0, 102.5], config)
    long_notional, short_notional = 2 * 90_050.0, 89_950.0
    share = (0.5 * 90_000.0) / (103.0 * 90_000.0)
    remaining = sorted(output.state.remaining_usd)
    assert remaining == pytest.approx(
        sorted([long_notional * (1 - share), short_notional * (1 - share)]), rel=1e-14
    )
    assert ledger(output, "long")["closed_usd"][2] == pytest.approx(long_notional * share)
    assert ledger(output, "short")["closed_usd"][2] == pytest.approx(short_notional * share)


def test_oi_share_net_subtracts_this_candles_consumption_first():
    output = _consume_and_close("oi_share_net", 1.5)
    consumed = 90_050.0  # the 100x half of 2 BTC at 90,050
    share = (1.5 * 90_000.0 - consumed) / (102.0 * 90_000.0)
    assert ledger(output, "long")["consumed_usd"][1] == consumed
    assert ledger(output, "long")["closed_usd"][1] == pytest.approx(90_050.0 * share, rel=1e-14)
    assert output.state.remaining_usd.tolist() == pytest.approx([90_050.0 * (1 - share)], rel=1e-14)


def test_oi_share_closes_everything_only_when_open_interest_is_gone():
    output = run([BULL, BEAR, FLAT], [100.0, 101.0, 102.0, 0.0])
    assert len(output.state) == 0
    almost = run([BULL, BEAR, FLAT], [100.0, 101.0, 102.0, 10.0])
    assert output.stats["full_closures"] == 1
    assert almost.stats["full_closures"] == 0
    assert almost.state.remaining_usd.tolist() == pytest.approx(
        [90_050.0 * 10 / 102, 89_950.0 * 10 / 102], rel=1e-12
    )


def test_modelled_share_closure_scales_every_active_level():
    config = ModelConfig(
        side_model="candle",
        leverage_tiers=((10, 1.0),),
        entry_price="close",
        closure_model="modelled_share",
    )
    output = run([BULL, BEAR, FLAT], [100.0, 102.0, 103.0, 102.5], config)
    long_notional, short_notional = 2 * 90_050.0, 89_950.0
    closed = 0.5 * 90_000.0
    share = closed / (long_notional + short_notional)
    remaining = sorted(output.state.remaining_usd)
    assert remaining == pytest.approx(
        sorted([long_notional * (1 - share), short_notional * (1 - share)]), rel=1e-14
    )
    assert ledger(output, "long")["closed_usd"][2] == pytest.approx(long_notional * share)
    assert ledger(output, "short")["closed_usd"][2] == pytest.approx(short_notional * share)


def _consume_and_close(closure_model, close_units):
    """Two long levels (10x, 100x) open in candle 0; candle 1 crosses the 100x level only and
    open interest falls by ``close_units`` BTC (entry = close = 90,000)."""
    config = ModelConfig(
        side_model="candle",
        leverage_tiers=((10, 0.5), (100, 0.5)),
        entry_price="close",
        closure_model=closure_model,
    )
    lp_100x = float(liquidation_price(90_050.0, 100, "long", MMR, 0.0, 10_000.0))
    second = (90_000.0, 90_000.0, lp_100x - 1, 90_000.0)
    return run([BULL, second], [100.0, 102.0, 102.0 - close_units], config)


def test_modelled_share_net_subtracts_this_candles_consumption_first():
    output = _consume_and_close("modelled_share_net", 1.5)
    consumed = 90_050.0  # the 100x half of 2 BTC at 90,050
    closed = 1.5 * 90_000.0 - consumed
    assert ledger(output, "long")["consumed_usd"][1] == consumed
    assert ledger(output, "long")["closed_usd"][1] == pytest.approx(closed, rel=1e-14)
    assert output.state.remaining_usd.tolist() == pytest.approx([90_050.0 - closed], rel=1e-14)


def test_modelled_share_without_net_closes_the_full_decrease_again():
    output = _consume_and_close("modelled_share", 0.5)
    closed = 0.5 * 90_000.0
    assert ledger(output, "long")["closed_usd"][1] == pytest.approx(closed, rel=1e-14)
    assert output.state.remaining_usd.tolist() == pytest.approx([90_050.0 - closed], rel=1e-14)


@pytest.mark.parametrize("closure_model", ["oi_share_net", "modelled_share_net"])
def test_net_closure_is_zero_when_consumption_explains_the_decrease(closure_model):
    output = _consume_and_close(closure_model, 0.5)
    assert ledger(output, "long")["closed_usd"][1] == 0.0
    assert output.state.remaining_usd.tolist() == [90_050.0]


def test_full_wipe_out_closes_everything():
    output = run([BULL, BEAR, FLAT], [100.0, 101.0, 102.0, 10.0], TEN_X_V1)
    assert len(output.state) == 0
    assert ledger(output, "long")["closed_usd"][2] == 90_050.0
    assert ledger(output, "short")["closed_usd"][2] == 89_950.0
    assert ledger(output, "long")["active_usd"][2] == ledger(output, "short")["active_usd"][2] == 0
    assert output.stats["full_closures"] == 1
    assert output.stats["levels_dust_closed"] == 2


@pytest.mark.parametrize(("left_share", "dust"), [(0.6e-9, True), (1.5e-9, False)])
def test_a_level_below_the_dust_share_is_closed_with_its_remnant(left_share, dust):
    # 1 BTC opened at 90,050, then open interest falls by almost 1 BTC, closing at 90,050 too.
    end_oi = 101.0 - (1.0 - left_share)
    output = run([BULL, (90_050.0,) * 4], [100.0, 101.0, end_oi], TEN_X_V1)
    left = 90_050.0 - (101.0 - end_oi) * 90_050.0  # what the float OI values leave
    assert output.stats["levels_dust_closed"] == int(dust)
    assert len(output.state) == int(not dust)
    closed = ledger(output, "long")["closed_usd"][1]
    assert closed == pytest.approx(90_050.0 if dust else 90_050.0 - left, rel=1e-12)
    active = ledger(output, "long")["active_usd"][1]
    assert active == (0.0 if dust else pytest.approx(left, rel=1e-6))


def test_consumed_notional_is_what_remains_after_earlier_closures():
    output = run([BULL, FLAT, candle_through(low=LONG_LP)], [100.0, 101.0, 100.75, 100.75])
    remaining = 90_050.0 * (1 - 0.25 / 101.0)
    assert plain(output.level_consumptions)["consumed_usd"][0] == pytest.approx(remaining)


# -- OI gaps -------------------------------------------------------------------------------


def test_missing_oi_at_either_end_opens_and_closes_nothing():
    # Candle 1 lacks its end snapshot (would open), candle 2 its start snapshot (would close).
    with_gap = run([BULL, BULL, BULL], [100.0, 101.0, math.nan, 95.0])
    assert ledger(with_gap, "long")["opened_usd"].tolist() == [90_050.0, 0.0, 0.0]
    assert ledger(with_gap, "long")["closed_usd"].tolist() == [0.0, 0.0, 0.0]
    assert ledger(with_gap, "long")["active_usd"].tolist() == [90_050.0] * 3
    assert with_gap.stats["oi_gaps"] == 2
    control = run([BULL, BULL, BULL], [100.0, 101.0, 102.0, 95.0])
    assert ledger(control, "long")["opened_usd"][1] == 90_050.0
    assert ledger(control, "long")["closed_usd"][2] > 0
    assert control.stats["oi_gaps"] == 0


# -- Intervals, state, inputs -------------------------------------------------------------------


def test_one_minute_candles_work():
    config = ModelConfig(
        side_model="candle", leverage_tiers=((10, 1.0),), entry_price="close", interval_minutes=1
    )
    output = run([BULL, candle_through(low=LONG_LP)], [100.0, 101.0, 101.0], config)
    assert plain(output.level_consumptions)["consumed_at"].tolist() == [
        START + pd.Timedelta(minutes=1)
    ]


def test_a_quiet_stretch_longer_than_a_snapshot_block_keeps_the_levels():
    """1-minute candles: a level opened, then 300 candles (more than one 288-candle snapshot
    block) in which nothing opens, closes or crosses; the level stays in every snapshot."""
    config = ModelConfig(
        side_model="candle", leverage_tiers=((10, 1.0),), entry_price="close", interval_minutes=1
    )
    quiet = 300
    output = run([BULL] + [FLAT] * quiet, [100.0, 101.0] + [101.0] * quiet, config)
    snapshots = plain(output.heatmap_snapshots)
    assert len(snapshots) == quiet + 1
    assert snapshots["active_usd"].tolist() == pytest.approx([90_050.0] * (quiet + 1), rel=1e-12)
    assert (snapshots["side"] == "long").all()


def test_state_carries_levels_and_refuses_overlapping_or_foreign_runs():
    first = run([BULL], [100.0, 101.0])
    state = first.state
    assert state.last_candle_time == START
    later = candle_frame([candle_through(low=LONG_LP)], start=START + pd.Timedelta(minutes=5))
    oi = oi_frame([101.0, 101.0], start=START + pd.Timedelta(minutes=5))
    second = run_model("BTCUSDT", MarketSeries.from_frames(later, oi), TEN_X, state)
    assert plain(second.level_consumptions)["level_id"].tolist() == state.level_id.tolist()

    same_day = MarketSeries.from_frames(candle_frame([FLAT]), oi_frame([101.0, 101.0]))
    with pytest.raises(ModelInputError, match="overlaps or precedes"):
        run_model("BTCUSDT", same_day, TEN_X, state)
    with pytest.raises(ModelInputError, match="model configuration"):
        run_model(
            "BTCUSDT",
            MarketSeries.from_frames(later, oi),
            ModelConfig(side_model="candle", entry_price="vwap"),
            state,
        )
    with pytest.raises(ModelInputError, match="belongs to BTCUSDT"):
        run_model("ETHUSDT", MarketSeries.from_frames(later, oi), TEN_X, state)


def test_state_metadata_and_levels_survive_a_duckdb_round_trip(db_path):
    state = run([BULL, BEAR], [100.0, 101.0 + 1 / 3, 102.0 + 1 / 7]).state
    metadata = json.loads(json.dumps(state.metadata()))
    with duckdb.connect(str(db_path)) as conn:
        conn.register("frame", state.levels_frame())
        conn.execute("CREATE TABLE levels AS SELECT * FROM frame")
    with duckdb.connect(str(db_path)) as conn:
        levels = conn.execute("SELECT * FROM levels ORDER BY level_id").df()
    restored = ModelState.restore(metadata, levels)
    pd.testing.assert_frame_equal(restored.levels_frame(), state.levels_frame())
    assert restored.metadata() == state.metadata()


def test_restore_refuses_an_inconsistent_state():
    state = run([BULL], [100.0, 101.0]).state
    with pytest.raises(ModelInputError, match="announces 1 active levels"):
        ModelState.restore(state.metadata(), state.levels_frame().iloc[:0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"open_time": START + pd.Timedelta(minutes=2)}, "not on the 5-minute grid"),
        ({"low": 90_060.0}, "low/high do not enclose open and close"),
        ({"high": math.nan}, "must be finite and > 0"),
        ({"taker_buy_volume": 5.0, "volume": 1.0}, "taker_buy_volume exceeds volume"),
    ],
)
def test_bad_candles_are_refused_with_their_time(change, message):
    candles = candle_frame([BULL])
    for column, value in change.items():
        candles[column] = value
    with pytest.raises(ModelInputError, match=re.escape(message)):
        run_model("BTCUSDT", MarketSeries.from_frames(candles, oi_frame([1.0, 2.0])), TEN_X)


def test_outputs_have_the_contract_columns_and_load_into_duckdb(db_path):
    output = run([BULL, BEAR, candle_through(low=LONG_LP)], [100.0, 101.0, 102.0, 101.5])
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        for table, ddl in warehouse.TABLE_DDL.items():
            if not hasattr(output, table):
                continue
            frame = getattr(output, table)
            expected = [part.split()[0] for part in re.split(r",\s*", ddl.strip())]
            assert list(frame.columns) == expected, table
            warehouse.replace_rows(
                conn,
                table,
                frame,
                symbol="BTCUSDT",
                start=START,
                end=START + pd.Timedelta(days=1),
            )
            stored = conn.execute(f"SELECT * FROM {table} ORDER BY ALL").df()
            assert len(stored) == len(frame)
        sides = conn.execute("SELECT DISTINCT side FROM heatmap_snapshots ORDER BY 1").fetchall()
        assert sides == [("long",), ("short",)]


# -- docs/model.md worked example ------------------------------------------------------------


def test_docs_worked_example_one_levels_life():
    """The 10x long level of docs/model.md, run one candle at a time with carried state."""
    candles = candle_frame(
        [
            (90_000.0, 90_200.0, 89_900.0, 90_150.0),
            (90_150.0, 90_160.0, 89_700.0, 89_800.0),
            (89_800.0, 89_850.0, 89_400.0, 89_500.0),
            (89_500.0, 89_550.0, 81_000.0, 82_000.0),
        ],
        volume=[1_000.0, 1_200.0, 900.0, 5_000.0],
        quote_volume=[90_050_000.0, 107_880_000.0, 80_640_000.0, 425_000_000.0],
    )
    open_interest = oi_frame([85_000.0, 85_010.0, 85_004.0, 85_001.0, 85_001.0])
    # The configuration the example states (the v2 spec's options), independent of the defaults.
    config = ModelConfig(
        leverage_tiers=((5, 0.15), (10, 0.30), (25, 0.25), (50, 0.20), (100, 0.10)),
        side_model="candle",
        entry_price="vwap",
        closure_model="oi_share_net",
    )
    level_id = 29_409_120 * 1000 + 0 * 100 + 1  # 2025-12-01 00:00, long, tier 1 (10x)
    state, remaining = None, []
    outputs = []
    for k in range(4):
        chunk = candles.iloc[k : k + 1]
        oi = open_interest.iloc[k : k + 2]
        output = run_model("BTCUSDT", MarketSeries.from_frames(chunk, oi), config, state)
        state = output.state
        outputs.append(output)
        ids = state.level_id.tolist()
        remaining.append(state.remaining_usd[ids.index(level_id)] if level_id in ids else None)

    opened = plain(outputs[0].level_openings).set_index("level_id").loc[level_id]
    entry = 90_050_000.0 / 1_000.0  # VWAP of candle A
    assert opened["entry_price"] == entry
    assert opened["notional_usd"] == pytest.approx(10 * entry * 0.30, rel=1e-15)
    assert round(opened["liq_price"], 2) == 81_370.48  # 90,050 × 0.9 / 0.996
    assert opened["price_bucket"] == 81_300.0

    # Candle B: nothing consumed; 6 BTC of the 85,010 BTC open interest closed (at VWAP 89,900),
    # so every level keeps 1 - 6 / 85,010.
    kept_b = 1 - (6 * 89_900.0) / (85_010.0 * 89_900.0)
    after_b = 270_150.0 * kept_b
    # Candle C: the 100x level (LP 89,507.53) is consumed with 90,050 × kept_b; the closure
    # nets it out: X' = 3 × 89,600 - consumed, a share of OI(t_C) × p_C = 85,004 × 89,600.
    consumed_100x = 90_050.0 * kept_b
    net = 3 * 89_600.0 - consumed_100x
    kept_c = 1 - net / (85_004.0 * 89_600.0)
    after_c = after_b * kept_c
    assert remaining[0] == pytest.approx(270_150.0, rel=1e-15)
    assert remaining[1] == pytest.approx(after_b, rel=1e-12)
    assert round(after_b, 2) == 270_130.93
    assert remaining[2] == pytest.approx(after_c, rel=1e-12)
    assert round(after_c, 2) == 270_124.59
    assert remaining[3] is None  # consumed in candle D (low 81,000 <= 81,370.48)
    consumptions = plain(outputs[3].level_consumptions).set_index("level_id")
    assert consumptions.loc[level_id, "consumed_usd"] == pytest.approx(after_c, rel=1e-12)
    assert consumptions.loc[level_id, "consumed_at"] == START + pd.Timedelta(minutes=15)
    assert len(consumptions) == 3  # 10x, 25x and 50x; the 5x level (72,329.32) survives
    long_ledger = ledger(outputs[3], "long")
    consumed_d = (180_100.0 + 225_125.0 + 270_150.0) * kept_b * kept_c
    assert long_ledger["consumed_usd"][0] == pytest.approx(consumed_d, rel=1e-12)
    assert round(consumed_d, 2) == 675_311.48
    assert state.remaining_usd.tolist() == pytest.approx([135_075.0 * kept_b * kept_c], rel=1e-12)
    assert round(135_075.0 * kept_b * kept_c, 2) == 135_062.30
    # Coverage after D: the 5x level over OI(t_D + 5 min) × close_D.
    assert ledger(outputs[3], "long")["coverage"][0] == pytest.approx(
        135_075.0 * kept_b * kept_c / (85_001.0 * 82_000.0), rel=1e-12
    )


# -- Step 7: coverage ------------------------------------------------------------------------


def test_coverage_is_active_over_open_interest_after_the_candle():
    output = run([BULL, BEAR, FLAT], [100.0, 101.0, 102.0, math.nan])
    long, short = ledger(output, "long"), ledger(output, "short")
    # After candle 0: 1 BTC long at 90,050 of 101 BTC × close 90,050.
    assert long["open_interest_usd"][0] == 101.0 * 90_050.0
    assert long["coverage"][0] == pytest.approx(1 / 101.0, rel=1e-14)
    assert short["coverage"][0] == 0.0
    assert short["coverage"][1] == pytest.approx(89_950.0 / (102.0 * 89_950.0), rel=1e-14)
    # Open interest after the last candle is unknown: so is its coverage.
    assert math.isnan(long["open_interest_usd"][2]) and math.isnan(long["coverage"][2])
