"""The time-evolving liquidation model (docs/model.md): one symbol, a run of candles, carried state.

Per run, everything that does not depend on notionals is vectorised over the whole run: entry
prices, open-interest changes, side split, level creation with liquidation prices, and every
level's first crossing candle. Only the closure recursion walks the candles (closures.py), and
snapshots come from difference arrays (snapshots.py). Cost is near-linear in candles + levels +
stored cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from liqheat_pipeline.lib.engine.brackets import bracket_for
from liqheat_pipeline.lib.engine.closures import run_closures
from liqheat_pipeline.lib.engine.config import (
    MODELLED_CLOSURE_MODELS,
    NET_CLOSURE_MODELS,
    ModelConfig,
    auto_bucket_size,
)
from liqheat_pipeline.lib.engine.crossing import first_crossings
from liqheat_pipeline.lib.engine.liquidation import liquidation_price_by_flag
from liqheat_pipeline.lib.engine.market import MarketSeries, ModelInputError
from liqheat_pipeline.lib.engine.snapshots import Segments, bucket_price, expand, snapshot_segments
from liqheat_pipeline.lib.engine.state import LONG, SHORT, SIDES, ModelState

__all__ = ["MarketSeries", "ModelInputError", "ModelOutput", "ModelState", "run_model"]

_NS_PER_MINUTE = 60_000_000_000
_NS_PER_DAY = 86_400_000_000_000
# level_id = epoch minutes × 1000 + side code × 100 + tier index
_ID_MINUTE, _ID_SIDE = 1000, 100


@dataclass
class ModelOutput:
    """Frames with exactly the columns of the stored tables (warehouse.TABLE_DDL); ``symbol``
    and ``side`` are pandas categoricals. ``state`` is the state after the last candle. The
    dense snapshot frames are what the heatmap_snapshots views return for these rows."""

    level_openings: pd.DataFrame
    level_consumptions: pd.DataFrame
    level_closeouts: pd.DataFrame
    candle_ledger: pd.DataFrame
    snapshot_segments: pd.DataFrame
    snapshot_segments_by_leverage: pd.DataFrame
    state: ModelState
    stats: dict[str, Any]

    @property
    def heatmap_snapshots(self) -> pd.DataFrame:
        return dense_snapshots(self.snapshot_segments, self.candle_ledger)

    @property
    def heatmap_snapshots_by_leverage(self) -> pd.DataFrame:
        return dense_snapshots(self.snapshot_segments_by_leverage, self.candle_ledger)


def run_model(
    symbol: str,
    market: MarketSeries,
    config: ModelConfig,
    state: ModelState | None = None,
    *,
    snapshots: bool = True,
) -> ModelOutput:
    """Run the model over ``market`` starting from ``state`` (None: empty start).

    ``snapshots=False`` leaves both snapshot frames empty (about half the engine's time):
    for callers that need only levels, ledger and state, such as ``liqheat evaluate``."""
    config_hash = config.config_hash(symbol)
    state = _starting_state(symbol, market, config, config_hash, state)
    _check_grid(market, config.interval_minutes)
    spans: list[_Span] = []
    start = 0
    while start < len(market) or not spans:
        span = _span_over(symbol, market.slice(start, len(market)), config, state, snapshots)
        if span.candles < len(market) - start:
            # The closure scale became tiny: redo the shorter span, continue from its state.
            span = _span_over(
                symbol, market.slice(start, start + span.candles), config, state, snapshots
            )
        spans.append(span)
        state = span.state
        start += span.candles
    return _joined(symbol, spans)


def _starting_state(
    symbol: str,
    market: MarketSeries,
    config: ModelConfig,
    config_hash: str,
    state: ModelState | None,
) -> ModelState:
    if state is None:
        state = ModelState.empty(symbol, config_hash, config.bucket_size_for(symbol))
    if state.symbol != symbol:
        raise ModelInputError(f"the state belongs to {state.symbol}, not to {symbol}")
    if state.config_hash != config_hash:
        raise ModelInputError(
            f"{symbol}: the state was computed with model configuration {state.config_hash}, "
            f"this run uses {config_hash}; recompute from the first day instead of mixing them"
        )
    if len(market) and state.last_candle_time is not None:
        first = pd.Timestamp(market.open_time[0])
        if first <= state.last_candle_time:
            raise ModelInputError(
                f"{symbol}: the candles start at {first}, not after the state's last candle "
                f"{state.last_candle_time} (the market overlaps or precedes the state)"
            )
    if state.bucket_size is None and len(market):
        state = ModelState.from_columns(
            symbol, config_hash, auto_bucket_size(float(market.open[0])), None, {}
        )
    return state


def _check_grid(market: MarketSeries, interval_minutes: int) -> None:
    off_grid = market.open_time.astype(np.int64) % (interval_minutes * _NS_PER_MINUTE) != 0
    if off_grid.any():
        raise ModelInputError(
            f"candle open_time {market.open_time[np.flatnonzero(off_grid)[0]]} is not on the "
            f"{interval_minutes}-minute grid (interval_minutes={interval_minutes})"
        )


@dataclass
class _Span:
    """One stretch of candles between closure-scale renormalisations (not a Dagster run)."""

    candles: int
    columns: dict[str, dict[str, np.ndarray]]
    bucket_segments: Segments | None
    leverage_segments: Segments | None
    state: ModelState
    stats: dict[str, int]


@dataclass
class _Candles:
    """Per-candle inputs derived from the market and the options."""

    opened_usd: np.ndarray
    closure_usd: np.ndarray
    # OI(t_k) × p_k: the market's open notional a closure takes its share of (step 6).
    market_notional: np.ndarray
    # OI(t_k + Δ) × close_k: what coverage (step 7) divides by; NaN where OI is missing.
    open_interest_usd: np.ndarray
    entry: np.ndarray
    side_weight: np.ndarray  # (candles, 2): long, short share of the opened notional
    lows: np.ndarray  # consumption prices: mark where present, else last
    highs: np.ndarray
    stats: dict[str, int]


def _candles(market: MarketSeries, config: ModelConfig) -> _Candles:
    step = config.interval_minutes * _NS_PER_MINUTE
    times = market.open_time.astype(np.int64)
    oi_start, oi_end = _oi_at(market, times), _oi_at(market, times + step)
    delta_oi = oi_end - oi_start
    known = ~np.isnan(delta_oi)
    moving = known & (delta_oi != 0)

    hlc3 = (market.high + market.low + market.close) / 3.0
    entry_fallback = np.zeros(len(market), dtype=bool)
    if config.entry_price == "close":
        entry = market.close
    elif config.entry_price == "hlc3":
        entry = hlc3
    else:
        usable = np.isfinite(market.quote_volume) & np.isfinite(market.volume) & (market.volume > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            entry = np.where(usable, market.quote_volume / market.volume, hlc3)
        entry_fallback = ~usable

    bullish = (market.close > market.open).astype(np.float64)
    bearish = (market.close < market.open).astype(np.float64)
    taker_fallback = np.zeros(len(market), dtype=bool)
    if config.side_model == "candle":
        long_share, short_share = bullish, bearish
    elif config.side_model == "symmetric":
        long_share = short_share = np.ones(len(market))
    else:
        usable = (
            np.isfinite(market.taker_buy_volume) & np.isfinite(market.volume) & (market.volume > 0)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            taker_share = market.taker_buy_volume / market.volume
        long_share = np.where(usable, taker_share, bullish)
        short_share = np.where(usable, 1.0 - taker_share, bearish)
        taker_fallback = ~usable

    if market.mark_high is not None:
        lows = np.where(np.isnan(market.mark_low), market.low, market.mark_low)
        highs = np.where(np.isnan(market.mark_high), market.high, market.mark_high)
        mark_fallbacks = int((np.isnan(market.mark_low) | np.isnan(market.mark_high)).sum())
    else:
        lows, highs, mark_fallbacks = market.low, market.high, 0

    opening = known & (delta_oi > 0)
    return _Candles(
        opened_usd=np.where(opening, delta_oi * entry, 0.0),
        closure_usd=np.where(known & (delta_oi < 0), -delta_oi * entry, 0.0),
        market_notional=oi_start * entry,
        open_interest_usd=oi_end * market.close,
        entry=entry,
        side_weight=np.column_stack([long_share, short_share]),
        lows=lows,
        highs=highs,
        stats={
            "candles": len(market),
            "oi_gaps": int((~known).sum()),
            # Counted where the fallback value was used: the split on opening candles, the entry
            # price wherever OI moved.
            "taker_fallbacks": int((taker_fallback & opening).sum()),
            "entry_price_fallbacks": int((entry_fallback & moving).sum()),
            "mark_fallbacks": mark_fallbacks,
        },
    )


def _oi_at(market: MarketSeries, instants: np.ndarray) -> np.ndarray:
    """Open interest at exactly these instants (ns), NaN where no snapshot exists."""
    times = market.oi_time.astype(np.int64)
    if not len(times):
        return np.full(len(instants), np.nan)
    position = np.minimum(np.searchsorted(times, instants), len(times) - 1)
    return np.where(times[position] == instants, market.oi[position], np.nan)


@dataclass
class _NewLevels:
    candle: np.ndarray
    side: np.ndarray
    tier_index: np.ndarray
    tier_leverage: np.ndarray
    leverage: np.ndarray
    entry_price: np.ndarray
    liq_price: np.ndarray
    notional_usd: np.ndarray
    mmr: np.ndarray
    maint_amount: np.ndarray
    level_id: np.ndarray
    capped: int


def _new_levels(
    symbol: str, times: np.ndarray, inputs: _Candles, config: ModelConfig
) -> _NewLevels:
    """One level per (candle, side, tier) with positive notional, in level_id order."""
    tier_leverage = np.array([leverage for leverage, _ in config.leverage_tiers], dtype=np.int64)
    tier_weight = np.array([weight for _, weight in config.leverage_tiers])
    notional = (inputs.opened_usd[:, None] * inputs.side_weight)[:, :, None] * tier_weight
    candle, side, tier = np.nonzero(notional > 0)

    day = times[candle] // _NS_PER_DAY
    days, day_index = np.unique(day, return_inverse=True)
    brackets = [
        bracket_for(symbol, date.fromordinal(date(1970, 1, 1).toordinal() + int(d)), config.n_rep)
        for d in days
    ]
    mmr = np.array([b.mmr for b in brackets])[day_index]
    maint_amount = np.array([b.maint_amount for b in brackets])[day_index]
    cap = np.array([b.max_leverage for b in brackets], dtype=np.int64)[day_index]
    leverage = np.minimum(tier_leverage[tier], cap)
    entry = inputs.entry[candle]
    return _NewLevels(
        candle=candle,
        side=side.astype(np.int8),
        tier_index=tier,
        tier_leverage=tier_leverage[tier],
        leverage=leverage,
        entry_price=entry,
        liq_price=liquidation_price_by_flag(
            entry, leverage, side == LONG, mmr, maint_amount, config.n_rep
        ),
        notional_usd=notional[candle, side, tier],
        mmr=mmr,
        maint_amount=maint_amount,
        level_id=(times[candle] // _NS_PER_MINUTE) * _ID_MINUTE + side * _ID_SIDE + tier,
        capped=int((leverage < tier_leverage[tier]).sum()),
    )


def _bucket_index(liq_price: np.ndarray, bucket_size: float) -> np.ndarray:
    return np.floor(liq_price / bucket_size).astype(np.int64)


def _span_over(
    symbol: str, market: MarketSeries, config: ModelConfig, state: ModelState, snapshots: bool
) -> _Span:
    times = market.open_time.astype(np.int64)
    candles = len(market)
    inputs = _candles(market, config)
    new = _new_levels(symbol, times, inputs, config)
    bucket_size = state.bucket_size

    carried = len(state)
    side = np.concatenate([state.side, new.side])
    opening = np.concatenate([state.notional_usd, new.notional_usd])
    liq_price = np.concatenate([state.liq_price, new.liq_price])
    created = np.concatenate([np.full(carried, -1), new.candle])
    crossing = first_crossings(inputs.lows, inputs.highs, liq_price, side == LONG, created + 1)
    carried_share = state.remaining_usd / state.notional_usd
    result = run_closures(
        candles=candles,
        closure_usd=inputs.closure_usd,
        subtract_consumed=config.closure_model in NET_CLOSURE_MODELS,
        market_notional=(
            None if config.closure_model in MODELLED_CLOSURE_MODELS else inputs.market_notional
        ),
        opened_usd=np.vstack(
            [
                np.bincount(new.candle[new.side == s], new.notional_usd[new.side == s], candles)
                for s in (LONG, SHORT)
            ]
        ),
        opened_levels=np.vstack(
            [np.bincount(new.candle[new.side == s], minlength=candles) for s in (LONG, SHORT)]
        ),
        side=side,
        opening=opening,
        created=created,
        crossing=crossing,
        carried_remaining=state.remaining_usd,
        dust_order=np.concatenate(
            [np.argsort(carried_share, kind="stable"), np.arange(carried, len(side))]
        ),
    )
    if result.candles < candles:
        return _Span(result.candles, {}, None, None, state, {})

    weight = np.concatenate(
        [state.remaining_usd, new.notional_usd * np.array(result.inverse_at_creation)[new.candle]]
    )
    end = np.array(result.end, dtype=np.int64)
    closed_out = np.array(result.closed_out, dtype=bool)
    scale_start = np.array([*result.scale_start, 1.0])
    consumed = (end < candles) & ~closed_out
    consumed_usd = np.where(consumed, weight * scale_start[end], 0.0)
    bucket = _bucket_index(liq_price, bucket_size)
    leverage = np.concatenate([state.leverage, new.leverage])
    bucket_segments = leverage_segments = None
    if snapshots:
        bucket_segments, leverage_segments = snapshot_segments(
            day_of_row=times // _NS_PER_DAY,
            bucket_size=bucket_size,
            bucket=bucket,
            side=side,
            leverage=leverage,
            weight=weight,
            first_row=np.maximum(created, 0),
            end_row=end,
            consumed_usd=consumed_usd,
        )

    active = end == candles
    final_scale = result.scale_end[-1] if candles else 1.0

    def both(carried_values, new_values):
        return np.concatenate([carried_values, new_values])[active]

    next_state = ModelState.from_columns(
        symbol,
        state.config_hash,
        bucket_size,
        pd.Timestamp(market.open_time[-1]) if candles else state.last_candle_time,
        {
            "level_id": both(state.level_id, new.level_id),
            "created_at": both(state.created_at, market.open_time[new.candle]),
            "side": side[active],
            "leverage": leverage[active],
            "tier_index": both(state.tier_index, new.tier_index),
            "entry_price": both(state.entry_price, new.entry_price),
            "liq_price": liq_price[active],
            "price_bucket": bucket_price(bucket[active], bucket_size),
            "notional_usd": opening[active],
            "remaining_usd": weight[active] * final_scale,
        },
    )
    all_ids = np.concatenate([state.level_id, new.level_id])

    # Consumptions and closeouts in time order (then level_id), so spans concatenate like one
    # pass.
    def in_time_order(levels: np.ndarray) -> np.ndarray:
        indices = np.flatnonzero(levels)
        return indices[np.lexsort((all_ids[indices], end[indices]))]

    by_time = in_time_order(consumed)
    closed_by_time = in_time_order(closed_out)
    columns = {
        "level_openings": {
            "level_id": new.level_id,
            "created_at": market.open_time[new.candle],
            "side": new.side,
            "leverage": new.leverage,
            "entry_price": new.entry_price,
            "liq_price": new.liq_price,
            "notional_usd": new.notional_usd,
            "tier_leverage": new.tier_leverage,
            "mmr": new.mmr,
            "maint_amount": new.maint_amount,
            "price_bucket": bucket_price(bucket[carried:], bucket_size),
        },
        "level_consumptions": {
            "level_id": all_ids[by_time],
            "consumed_at": market.open_time[end[by_time]],
            "consumed_usd": consumed_usd[by_time],
            "side": side[by_time],
        },
        "level_closeouts": {
            "level_id": all_ids[closed_by_time],
            "closed_at": market.open_time[end[closed_by_time]],
        },
        "candle_ledger": {
            "ts": np.repeat(market.open_time, 2),
            "side": np.tile(np.array([LONG, SHORT], dtype=np.int8), candles),
            # Summed from the levels themselves, so the ledger matches level_openings exactly.
            "opened_usd": np.bincount(
                new.candle * 2 + new.side, new.notional_usd, minlength=2 * candles
            ),
            **{
                f"{name}_usd": np.column_stack(getattr(result, name)).ravel()
                if candles
                else np.array([], dtype=np.float64)
                for name in ("consumed", "closed", "active")
            },
        },
    }
    ledger = columns["candle_ledger"]
    ledger["open_interest_usd"] = np.repeat(inputs.open_interest_usd, 2)
    # Undefined (NULL) where open interest is missing or zero.
    with np.errstate(divide="ignore", invalid="ignore"):
        ledger["coverage"] = np.where(
            ledger["open_interest_usd"] > 0,
            ledger["active_usd"] / ledger["open_interest_usd"],
            np.nan,
        )
    # The closure scale S after each candle (per span): a snapshot cell's active notional is its
    # segment's weight times this.
    ledger["closure_scale"] = np.repeat(np.array(result.scale_end, dtype=np.float64), 2)
    return _Span(
        candles=candles,
        columns=columns,
        bucket_segments=bucket_segments,
        leverage_segments=leverage_segments,
        state=next_state,
        stats={
            **inputs.stats,
            "leverage_capped": new.capped,
            "levels_opened": len(new.level_id),
            "levels_consumed": int(consumed.sum()),
            "levels_dust_closed": int(closed_out.sum()),
            "full_closures": result.full_closures,
        },
    )


def _joined(symbol: str, spans: list[_Span]) -> ModelOutput:
    frames: dict[str, pd.DataFrame] = {}
    for table in ("level_openings", "level_consumptions", "level_closeouts", "candle_ledger"):
        frames[table] = _frame(symbol, _concatenated([span.columns[table] for span in spans]))
    times = frames["candle_ledger"]["ts"].to_numpy()[::2]
    offsets = np.cumsum([0] + [span.candles for span in spans])
    for table, attribute in (
        ("snapshot_segments", "bucket_segments"),
        ("snapshot_segments_by_leverage", "leverage_segments"),
    ):
        parts = [
            _segment_columns(getattr(span, attribute), times[offset:])
            for span, offset in zip(spans, offsets[:-1], strict=True)
            if getattr(span, attribute) is not None
        ]
        frames[table] = _frame(symbol, _concatenated(parts) if parts else _no_segments(table))
    stats = {key: sum(span.stats[key] for span in spans) for key in spans[0].stats}
    stats["renormalisations"] = len(spans) - 1
    stats["active_levels"] = len(spans[-1].state)
    return ModelOutput(
        level_openings=frames["level_openings"],
        level_consumptions=frames["level_consumptions"],
        level_closeouts=frames["level_closeouts"],
        candle_ledger=frames["candle_ledger"],
        snapshot_segments=frames["snapshot_segments"],
        snapshot_segments_by_leverage=frames["snapshot_segments_by_leverage"],
        state=spans[-1].state,
        stats=stats,
    )


def _segment_columns(segments: Segments, times: np.ndarray) -> dict[str, np.ndarray]:
    columns = {
        "first_ts": times[segments.first_row],
        "last_ts": times[segments.last_row],
        "price_bucket": segments.price_bucket,
        "side": segments.side,
    }
    if segments.leverage is not None:
        columns["leverage"] = segments.leverage
    return columns | {"weight": segments.weight, "consumed_usd": segments.consumed_usd}


def _no_segments(table: str) -> dict[str, np.ndarray]:
    """Empty columns of a segment table (a run without snapshots)."""
    no_times = np.array([], dtype="datetime64[ns]")
    columns = {"first_ts": no_times, "last_ts": no_times}
    columns |= {"price_bucket": np.array([], dtype=np.float64), "side": np.array([], np.int8)}
    if table == "snapshot_segments_by_leverage":
        columns["leverage"] = np.array([], dtype=np.int32)
    return columns | {name: np.array([], dtype=np.float64) for name in ("weight", "consumed_usd")}


def dense_snapshots(segments: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """One row per candle of each segment (frames as stored): what the heatmap_snapshots views
    compute from snapshot_segments and candle_ledger.closure_scale."""
    long_rows = ledger[ledger["side"] == "long"]
    times = long_rows["ts"].to_numpy()
    by_leverage = "leverage" in segments
    cells = expand(
        Segments(
            first_row=np.searchsorted(times, segments["first_ts"].to_numpy()),
            last_row=np.searchsorted(times, segments["last_ts"].to_numpy()),
            price_bucket=segments["price_bucket"].to_numpy(),
            side=segments["side"].cat.codes.to_numpy().astype(np.int8),
            leverage=segments["leverage"].to_numpy() if by_leverage else None,
            weight=segments["weight"].to_numpy(),
            consumed_usd=segments["consumed_usd"].to_numpy(),
        ),
        long_rows["closure_scale"].to_numpy(),
    )
    columns = {"ts": times[cells.row], "price_bucket": cells.price_bucket, "side": cells.side}
    if by_leverage:
        columns["leverage"] = cells.leverage
    columns |= {"active_usd": cells.active_usd, "consumed_usd": cells.consumed_usd}
    symbol = str(segments["symbol"].iloc[0]) if len(segments) else ""
    return _frame(symbol, columns)


def _concatenated(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


_SIDE_DTYPE = pd.CategoricalDtype(list(SIDES))


@cache
def _symbol_dtype(symbol: str) -> pd.CategoricalDtype:
    return pd.CategoricalDtype([symbol])


def _frame(symbol: str, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """A contract frame: symbol first, side codes as 'long'/'short' categoricals (no copies)."""
    n = len(next(iter(columns.values())))
    data: dict[str, Any] = {
        "symbol": pd.Categorical.from_codes(
            np.zeros(n, dtype=np.int8), dtype=_symbol_dtype(symbol), validate=False
        )
    }
    for name, values in columns.items():
        if name == "side":
            data[name] = pd.Categorical.from_codes(
                values.astype(np.int8, copy=False), dtype=_SIDE_DTYPE, validate=False
            )
        else:
            data[name] = values
    return pd.DataFrame(data, copy=False)
