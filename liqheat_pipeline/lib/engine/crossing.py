"""First-passage search: the first candle at or after a start index whose low (high) reaches a
long (short) level's liquidation price, for all levels at once.

A sparse table of block minima (maxima) over the candles and binary lifting find every level's
crossing in O((candles + levels) × log candles), independent of the levels' notionals.
"""

from __future__ import annotations

import numpy as np


def first_crossings(
    lows: np.ndarray,
    highs: np.ndarray,
    liq_price: np.ndarray,
    is_long: np.ndarray,
    start: np.ndarray,
) -> np.ndarray:
    """Index of the first candle k >= start with low_k <= LP (long) or high_k >= LP (short),
    comparisons inclusive; ``len(lows)`` where there is none."""
    n = len(lows)
    position = np.asarray(start, dtype=np.int64).copy()
    if n == 0 or len(position) == 0:
        return np.minimum(position, n)
    # Most carried levels lie beyond every price of the span: they are never crossed, and only
    # the others are searched.
    reached = np.flatnonzero(np.where(is_long, liq_price >= lows.min(), liq_price <= highs.max()))
    crossing = np.full(len(position), n, dtype=np.int64)
    crossing[reached] = _search(
        lows, highs, liq_price[reached], is_long[reached], position[reached]
    )
    return crossing


def _search(
    lows: np.ndarray,
    highs: np.ndarray,
    liq_price: np.ndarray,
    is_long: np.ndarray,
    position: np.ndarray,
) -> np.ndarray:
    n = len(lows)
    block_lows, block_highs = [lows], [highs]
    while 2 * (width := 1 << (len(block_lows) - 1)) <= n:
        block_lows.append(np.minimum(block_lows[-1][:-width], block_lows[-1][width:]))
        block_highs.append(np.maximum(block_highs[-1][:-width], block_highs[-1][width:]))
    # Skip, from the widest block down, every block that lies inside the candles and that the
    # price does not reach; what remains is the first crossing (or n).
    for level in range(len(block_lows) - 1, -1, -1):
        width = 1 << level
        fits = position + width <= n
        at = np.where(fits, position, 0)
        untouched = np.where(
            is_long, block_lows[level][at] > liq_price, block_highs[level][at] < liq_price
        )
        position += np.where(fits & untouched, width, 0)
    return position
