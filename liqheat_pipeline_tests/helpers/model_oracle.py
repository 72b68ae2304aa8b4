"""A deliberately simple reference implementation of docs/model.md for the tests only.

One pass over the candles, a plain list of level records, every rule written out as the spec
states it: each candle visits every active level. Slow (candles × levels) and obvious; the engine
must agree with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from liqheat_pipeline.lib.engine.brackets import bracket_for
from liqheat_pipeline.lib.engine.config import ModelConfig, auto_bucket_size

DUST = 1e-9
SIDES = ("long", "short")


@dataclass
class Level:
    level_id: int
    created_at: pd.Timestamp
    side: str
    tier_index: int
    tier_leverage: int
    leverage: int
    entry_price: float
    liq_price: float
    notional: float
    mmr: float
    maint_amount: float
    bucket: float
    remaining: float


@dataclass
class OracleResult:
    level_openings: pd.DataFrame
    level_consumptions: pd.DataFrame
    candle_ledger: pd.DataFrame
    heatmap_snapshots: pd.DataFrame
    heatmap_snapshots_by_leverage: pd.DataFrame
    active_levels: list[Level]
    stats: dict


def run_oracle(
    symbol: str,
    candles: pd.DataFrame,
    open_interest: pd.DataFrame,
    config: ModelConfig,
    marks: pd.DataFrame | None = None,
) -> OracleResult:
    candles = candles.sort_values("open_time").reset_index(drop=True)
    oi = {
        pd.Timestamp(t): float(v)
        for t, v in zip(open_interest["ts"], open_interest["open_interest"], strict=True)
        if not pd.isna(v)
    }
    mark = {}
    if marks is not None:
        mark = {
            pd.Timestamp(t): (float(h), float(lo))
            for t, h, lo in zip(marks["open_time"], marks["high"], marks["low"], strict=True)
        }
    bucket_size = config.bucket_size_for(symbol) or auto_bucket_size(float(candles["open"][0]))
    step = timedelta(minutes=config.interval_minutes)
    active: list[Level] = []
    openings, consumptions, ledger, snapshots, by_leverage = [], [], [], [], []
    stats = dict.fromkeys(
        ("oi_gaps", "taker_fallbacks", "mark_fallbacks", "leverage_capped", "dust_closed"), 0
    )

    for _, candle in candles.iterrows():
        t = pd.Timestamp(candle["open_time"])
        low, high = float(candle["low"]), float(candle["high"])
        if marks is not None:
            mark_high, mark_low = mark.get(t, (math.nan, math.nan))
            if math.isnan(mark_high) or math.isnan(mark_low):
                stats["mark_fallbacks"] += 1
            low = low if math.isnan(mark_low) else mark_low
            high = high if math.isnan(mark_high) else mark_high
        opened = {"long": 0.0, "short": 0.0}
        consumed = {"long": 0.0, "short": 0.0}
        closed = {"long": 0.0, "short": 0.0}
        consumed_cells: dict[tuple, float] = {}

        # 1. Consume: levels created before this candle whose liquidation price is reached.
        still = []
        for level in active:
            crossed = low <= level.liq_price if level.side == "long" else high >= level.liq_price
            if level.created_at < t and crossed:
                consumed[level.side] += level.remaining
                consumptions.append((level.level_id, t, level.remaining, level.side))
                cell = (level.bucket, level.side, level.leverage)
                consumed_cells[cell] = consumed_cells.get(cell, 0.0) + level.remaining
            else:
                still.append(level)
        active = still

        # 2. Open interest change in base units; missing either end = gap.
        start_oi, end_oi = oi.get(t), oi.get(t + step)
        delta = None if start_oi is None or end_oi is None else end_oi - start_oi
        if delta is None:
            stats["oi_gaps"] += 1
        price = _entry_price(candle, config.entry_price)

        if delta is not None and delta > 0:
            weights = _side_weights(candle, config.side_model, stats)
            bracket = bracket_for(symbol, t.date(), config.n_rep)
            for side_code, side in enumerate(SIDES):
                for tier_index, (tier_leverage, tier_weight) in enumerate(config.leverage_tiers):
                    notional = delta * price * weights[side] * tier_weight
                    if notional <= 0:
                        continue
                    leverage = min(tier_leverage, bracket.max_leverage)
                    stats["leverage_capped"] += leverage < tier_leverage
                    share = bracket.maint_amount / config.n_rep
                    if side == "long":
                        lp = price * (1 - 1 / leverage - share) / (1 - bracket.mmr)
                    else:
                        lp = price * (1 + 1 / leverage + share) / (1 + bracket.mmr)
                    level = Level(
                        level_id=int(t.value // 60_000_000_000) * 1000
                        + side_code * 100
                        + tier_index,
                        created_at=t,
                        side=side,
                        tier_index=tier_index,
                        tier_leverage=tier_leverage,
                        leverage=leverage,
                        entry_price=price,
                        liq_price=lp,
                        notional=notional,
                        mmr=bracket.mmr,
                        maint_amount=bracket.maint_amount,
                        bucket=round(math.floor(lp / bucket_size) * bucket_size, 10),
                        remaining=notional,
                    )
                    active.append(level)
                    openings.append(level)
                    opened[side] += notional

        # 6. Close: every active level loses the closed share of open interest (oi_share*) or
        # of the modelled book (modelled_share*).
        if delta is not None and delta < 0:
            to_close = -delta * price
            if config.closure_model.endswith("_net"):
                to_close = max(0.0, to_close - consumed["long"] - consumed["short"])
            total = sum(level.remaining for level in active)
            base = start_oi * price if config.closure_model.startswith("oi_share") else total
            if total > 0 and to_close > 0:
                factor = 1 - min(to_close / base, 1)
                still = []
                for level in active:
                    before = level.remaining
                    level.remaining = before * factor
                    # A share, not a product: DUST * a subnormal notional underflows to 0,
                    # and a level a full closure emptied would then not count as dust.
                    if level.remaining / level.notional < DUST:
                        level.remaining = 0.0
                        stats["dust_closed"] += 1
                    closed[level.side] += before - level.remaining
                    if level.remaining > 0:
                        still.append(level)
                active = still

        # 7. Coverage: the modelled active notional over the open interest after the candle.
        oi_usd = math.nan if end_oi is None else end_oi * float(candle["close"])
        for side in SIDES:
            side_active = sum(lv.remaining for lv in active if lv.side == side)
            ledger.append(
                (
                    t,
                    side,
                    opened[side],
                    consumed[side],
                    closed[side],
                    side_active,
                    oi_usd,
                    side_active / oi_usd if oi_usd > 0 else math.nan,
                )
            )
        cells: dict[tuple, float] = {}
        for level in active:
            cell = (level.bucket, level.side, level.leverage)
            cells[cell] = cells.get(cell, 0.0) + level.remaining
        for cell in sorted(set(cells) | set(consumed_cells)):
            by_leverage.append((t, *cell, cells.get(cell, 0.0), consumed_cells.get(cell, 0.0)))
        buckets: dict[tuple, list[float]] = {}
        for (bucket, side, _), value in cells.items():
            buckets.setdefault((bucket, side), [0.0, 0.0])[0] += value
        for (bucket, side, _), value in consumed_cells.items():
            buckets.setdefault((bucket, side), [0.0, 0.0])[1] += value
        for (bucket, side), (act, con) in sorted(buckets.items()):
            snapshots.append((t, bucket, side, act, con))

    return OracleResult(
        level_openings=pd.DataFrame(
            [
                (
                    lv.level_id,
                    lv.created_at,
                    lv.side,
                    lv.leverage,
                    lv.entry_price,
                    lv.liq_price,
                    lv.notional,
                    lv.tier_leverage,
                    lv.mmr,
                    lv.maint_amount,
                    lv.bucket,
                )
                for lv in openings
            ],
            columns=[
                "level_id",
                "created_at",
                "side",
                "leverage",
                "entry_price",
                "liq_price",
                "notional_usd",
                "tier_leverage",
                "mmr",
                "maint_amount",
                "price_bucket",
            ],
        ),
        level_consumptions=pd.DataFrame(
            consumptions, columns=["level_id", "consumed_at", "consumed_usd", "side"]
        ),
        candle_ledger=pd.DataFrame(
            ledger,
            columns=[
                "ts",
                "side",
                "opened_usd",
                "consumed_usd",
                "closed_usd",
                "active_usd",
                "open_interest_usd",
                "coverage",
            ],
        ),
        heatmap_snapshots=pd.DataFrame(
            snapshots, columns=["ts", "price_bucket", "side", "active_usd", "consumed_usd"]
        ),
        heatmap_snapshots_by_leverage=pd.DataFrame(
            by_leverage,
            columns=["ts", "price_bucket", "side", "leverage", "active_usd", "consumed_usd"],
        ),
        active_levels=active,
        stats=stats,
    )


def _entry_price(candle, model: str) -> float:
    hlc3 = (candle["high"] + candle["low"] + candle["close"]) / 3
    if model == "close":
        return float(candle["close"])
    if model == "hlc3":
        return float(hlc3)
    volume, quote = candle["volume"], candle["quote_volume"]
    if pd.isna(volume) or pd.isna(quote) or volume == 0:
        return float(hlc3)
    return float(quote / volume)


def _side_weights(candle, model: str, stats: dict) -> dict[str, float]:
    bullish = float(candle["close"] > candle["open"])
    bearish = float(candle["close"] < candle["open"])
    if model == "symmetric":
        return {"long": 1.0, "short": 1.0}
    if model == "taker":
        volume, taker = candle["volume"], candle["taker_buy_volume"]
        if pd.isna(volume) or pd.isna(taker) or volume == 0:
            stats["taker_fallbacks"] += 1
        else:
            return {"long": taker / volume, "short": 1 - taker / volume}
    return {"long": bullish, "short": bearish}
