"""Consumption bookkeeping and proportional closures with a cumulative scale (model.md steps 1, 2
and 6), in one pass over the candles that touches each level O(1) times.

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

from liqheat_pipeline.lib.model.config import DUST_SHARE

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
    weight: list[float]  # per level w
    end: list[int]  # per level: candle it was consumed or closed in; `candles` if still active
    closed_out: list[bool]  # per level: ended by a closure rather than consumed
    full_closures: int


def run_closures(
    *,
    candles: int,
    closure_usd: np.ndarray,
    subtract_consumed: bool,
    new_level_bounds: np.ndarray,
    side: np.ndarray,
    opening: np.ndarray,
    created: np.ndarray,
    crossing: np.ndarray,
    carried_remaining: np.ndarray,
    dust_order: np.ndarray,
) -> ClosureResult:
    """Levels are indexed carried first (``len(carried_remaining)`` of them, created = -1), then
    new ones in creation order; levels created in candle k are ``new_level_bounds[k]`` up to
    ``new_level_bounds[k + 1]``. ``crossing`` is each level's first crossing candle (``candles``
    when none); ``dust_order`` lists carried levels by falling remaining share, then new ones."""
    n_levels = len(side)
    n_carried = len(carried_remaining)
    carried_threshold = (DUST_SHARE * opening[:n_carried] / carried_remaining).tolist()
    by_crossing_array = np.argsort(crossing, kind="stable")
    crossing_bounds = np.searchsorted(crossing[by_crossing_array], np.arange(candles + 1)).tolist()
    by_crossing = by_crossing_array.tolist()
    # Plain Python lists and floats: the loop below touches single elements only.
    weight = carried_remaining.tolist() + [0.0] * (n_levels - n_carried)
    closure_usd, new_level_bounds = closure_usd.tolist(), new_level_bounds.tolist()
    side, opening, created = side.tolist(), opening.tolist(), created.tolist()
    dust_order = dust_order.tolist()
    end = [candles] * n_levels
    dead = [False] * n_levels
    closed_out = [False] * n_levels

    totals = [0.0, 0.0]  # W per side
    counts = [0, 0]  # active levels per side
    for level in range(n_carried):
        totals[side[level]] += weight[level]
        counts[side[level]] += 1
    scale = 1.0
    scale_at_creation = [0.0] * candles
    scale_start, scale_end = [], []
    consumed = [[], []]
    closed = [[], []]
    active = [[], []]
    pointer = 0
    full_closures = 0
    processed = candles

    for k in range(candles):
        scale_start.append(scale)
        # 1. Consume: levels whose first crossing is this candle, unless already closed out.
        used = [0.0, 0.0]
        for position in range(crossing_bounds[k], crossing_bounds[k + 1]):
            level = by_crossing[position]
            if dead[level]:
                continue
            dead[level] = True
            end[level] = k
            used[side[level]] += weight[level]
            counts[side[level]] -= 1
        for s in (0, 1):
            totals[s] = totals[s] - used[s] if counts[s] else 0.0
        consumed_usd = [scale * used[0], scale * used[1]]
        consumed[0].append(consumed_usd[0])
        consumed[1].append(consumed_usd[1])

        # 2. Open.
        scale_at_creation[k] = scale
        first, last = new_level_bounds[k], new_level_bounds[k + 1]
        if last > first:
            inverse = 1.0 / scale
            for level in range(first, last):
                w = opening[level] * inverse
                weight[level] = w
                totals[side[level]] += w
                counts[side[level]] += 1

        # 6. Close.
        closed_usd = [0.0, 0.0]
        to_close = closure_usd[k]
        if to_close > 0.0 and subtract_consumed:
            to_close -= consumed_usd[0] + consumed_usd[1]
        if to_close > 0.0 and (counts[0] or counts[1]):
            total_active = scale * (totals[0] + totals[1])
            if to_close >= total_active:
                closed_usd = [scale * totals[0], scale * totals[1]]
                full_closures += 1
                share_left = -1.0  # closes every level created so far
            else:
                share = to_close / total_active
                closed_usd = [share * scale * totals[0], share * scale * totals[1]]
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
                    s = side[level]
                    counts[s] -= 1
                    if share_left >= 0.0:  # a dust remnant; a full closure counted it already
                        closed_usd[s] += weight[level] * scale
                        totals[s] -= weight[level]
                pointer += 1
            for s in (0, 1):
                if not counts[s]:
                    totals[s] = 0.0
        for s in (0, 1):
            closed[s].append(closed_usd[s])
            active[s].append(scale * totals[s] if counts[s] else 0.0)
        scale_end.append(scale)
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
        weight=weight,
        end=end,
        closed_out=closed_out,
        full_closures=full_closures,
    )
