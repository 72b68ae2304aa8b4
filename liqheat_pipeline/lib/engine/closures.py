"""Consumption bookkeeping and proportional closures with a cumulative scale (model.md steps 1, 2
and 6), in one pass over the candles that touches each level O(1) times.

A closure scales every active level by ``1 − f``: ``f`` is the closed share of the market's open
interest (``oi_share*`` rules: ``X / (OI × p)``) or of the modelled book (``modelled_share*``,
v1: ``X / A``), capped at 1.

Every proportional closure multiplies *all* active levels by the same factor, so a level's
remaining notional is ``w × S`` where ``S`` is the running product of the closure factors and
``w = opening / S_at_creation`` (carried-in levels start with ``w = remaining``, S = 1 at the start
of each run). Per side only the sum ``W`` of the active levels' ``w`` is needed: consumption
subtracts the consumed levels' ``w``, opening adds ``opening / S``, a closure changes ``S``.

Dust: a level is closed once ``S / S_at_creation`` (its remaining share) falls below the dust
share. As S only falls, the older a level the sooner it dusts, so the levels are visited in that
order by a single pointer. A full closure (X' >= A) closes every active level and leaves S alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liqheat_pipeline.lib.engine.config import DUST_SHARE
from liqheat_pipeline.lib.engine.state import LONG, SHORT

# Below this scale the run is cut after the candle and continued as a new run (S = 1 again), so
# that w = opening / S can never overflow.
RENORMALISE_BELOW = 1e-150


@dataclass
class ClosureResult:
    # Candles processed: fewer than asked when the scale fell below RENORMALISE_BELOW; the caller
    # then reruns the shorter span and continues from its state.
    candles: int
    scale_start: list[float]  # S at the start of each candle (values consumed levels)
    scale_end: list[float]  # S after each candle
    consumed: list[list[float]]  # [side][candle] USD consumed (step 1)
    closed: list[list[float]]  # [side][candle] USD closed (step 6, dust remnants included)
    active: list[list[float]]  # [side][candle] USD active after the candle
    inverse_at_creation: list[float]  # 1 / S in candles that opened levels (w = opening × it)
    end: list[int]  # per level: candle it was consumed or closed in; `candles` if still active
    closed_out: list[bool]  # per level: ended by a closure rather than consumed
    full_closures: int


def run_closures(
    *,
    candles: int,
    closure_usd: np.ndarray,
    subtract_consumed: bool,
    market_notional: np.ndarray | None,
    opened_usd: np.ndarray,
    opened_levels: np.ndarray,
    side: np.ndarray,
    opening: np.ndarray,
    created: np.ndarray,
    crossing: np.ndarray,
    carried_remaining: np.ndarray,
    dust_order: np.ndarray,
) -> ClosureResult:
    """Levels are indexed carried first (``len(carried_remaining)`` of them, created = -1), then
    new ones in creation order. ``market_notional`` is the open interest's notional at each
    candle's start (``OI(t_k) × p_k``), the denominator of the closed share; None divides by the
    modelled active notional instead (v1). ``opened_usd`` and ``opened_levels`` are
    (2, candles): notional and number of the levels opened per side and candle. ``crossing`` is
    each level's first crossing candle (``candles`` when none); ``dust_order`` lists carried
    levels by falling remaining share, then new ones."""
    n_levels = len(side)
    n_carried = len(carried_remaining)
    carried_totals = [float(carried_remaining[side[:n_carried] == s].sum()) for s in (LONG, SHORT)]
    carried_threshold = (DUST_SHARE * opening[:n_carried] / carried_remaining).tolist()
    by_crossing_array = np.argsort(crossing, kind="stable")
    crossing_bounds = np.searchsorted(crossing[by_crossing_array], np.arange(candles + 1)).tolist()
    by_crossing = by_crossing_array.tolist()
    # Plain Python lists and floats: the loop below touches single elements only.
    carried_weight = carried_remaining.tolist()
    closure_usd = closure_usd.tolist()
    market_notional = None if market_notional is None else market_notional.tolist()
    opened_long, opened_short = opened_usd.tolist()
    new_long, new_short = opened_levels.tolist()
    side, opening, created = side.tolist(), opening.tolist(), created.tolist()
    dust_order = dust_order.tolist()
    end = [candles] * n_levels
    dead = [False] * n_levels
    closed_out = [False] * n_levels

    # w of a new level = opening / S at its creation, derived when first needed.
    inverse_at_creation = [0.0] * candles

    def weight(level: int) -> float:
        if level < n_carried:
            return carried_weight[level]
        return opening[level] * inverse_at_creation[created[level]]

    # W (sum of w) and number of active levels, per side (0 long, 1 short).
    total_long, total_short = carried_totals
    count_short = sum(side[:n_carried])
    count_long = n_carried - count_short
    scale = 1.0
    scale_at_creation = [0.0] * candles
    scale_start = [0.0] * candles
    scale_end = [0.0] * candles
    consumed = [[0.0] * candles, [0.0] * candles]
    closed = [[0.0] * candles, [0.0] * candles]
    active = [[0.0] * candles, [0.0] * candles]
    pointer = 0
    full_closures = 0
    processed = candles

    for k in range(candles):
        scale_start[k] = scale
        # 1. Consume: levels whose first crossing is this candle, unless already closed out.
        consumed_here = 0.0
        if crossing_bounds[k + 1] > crossing_bounds[k]:
            used_long = used_short = 0.0
            for position in range(crossing_bounds[k], crossing_bounds[k + 1]):
                level = by_crossing[position]
                if dead[level]:
                    continue
                dead[level] = True
                end[level] = k
                if side[level]:
                    used_short += weight(level)
                    count_short -= 1
                else:
                    used_long += weight(level)
                    count_long -= 1
            total_long = total_long - used_long if count_long else 0.0
            total_short = total_short - used_short if count_short else 0.0
            consumed[0][k] = scale * used_long
            consumed[1][k] = scale * used_short
            consumed_here = consumed[0][k] + consumed[1][k]

        # 2. Open.
        scale_at_creation[k] = scale
        if new_long[k] or new_short[k]:
            inverse = inverse_at_creation[k] = 1.0 / scale
            total_long += opened_long[k] * inverse
            total_short += opened_short[k] * inverse
            count_long += new_long[k]
            count_short += new_short[k]

        # 6. Close.
        to_close = closure_usd[k]
        if to_close > 0.0 and subtract_consumed:
            to_close -= consumed_here
        if to_close > 0.0 and (count_long or count_short):
            total_active = scale * (total_long + total_short)
            base = total_active if market_notional is None else market_notional[k]
            if to_close >= base:
                closed_long, closed_short = scale * total_long, scale * total_short
                full_closures += 1
                share_left = -1.0  # closes every level created so far
            else:
                share = to_close / base
                closed_long = share * scale * total_long
                closed_short = share * scale * total_short
                scale *= 1.0 - share
                share_left = scale
            # Close out levels, oldest first, while their remaining share is below the dust share.
            while pointer < n_levels:
                level = dust_order[pointer]
                if level >= n_carried:
                    if created[level] > k:
                        break
                    threshold = DUST_SHARE * scale_at_creation[created[level]]
                else:
                    threshold = carried_threshold[level]
                if not dead[level]:
                    if not share_left < threshold:
                        break
                    dead[level] = closed_out[level] = True
                    end[level] = k
                    # A full closure has counted the remaining notional already.
                    remnant = weight(level) if share_left >= 0.0 else 0.0
                    if side[level]:
                        count_short -= 1
                        closed_short += remnant * scale
                        total_short -= remnant
                    else:
                        count_long -= 1
                        closed_long += remnant * scale
                        total_long -= remnant
                pointer += 1
            if not count_long:
                total_long = 0.0
            if not count_short:
                total_short = 0.0
            closed[0][k] = closed_long
            closed[1][k] = closed_short
        if count_long:
            active[0][k] = scale * total_long
        if count_short:
            active[1][k] = scale * total_short
        scale_end[k] = scale
        if scale < RENORMALISE_BELOW and k < candles - 1:
            processed = k + 1
            break

    return ClosureResult(
        candles=processed,
        scale_start=scale_start,
        scale_end=scale_end,
        consumed=consumed,
        closed=closed,
        active=active,
        inverse_at_creation=inverse_at_creation,
        end=end,
        closed_out=closed_out,
        full_closures=full_closures,
    )
