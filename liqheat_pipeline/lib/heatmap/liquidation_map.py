"""The liquidation map: cumulative USD liquidated if price reaches X, from one snapshot's bins."""

from __future__ import annotations

import numpy as np
import pandas as pd

MAP_COLUMNS = ["side", "price", "active_usd", "cumulative_usd", "reach_price"]


def cumulative_liquidation_map(bins: pd.DataFrame, bin_size: float) -> pd.DataFrame:
    """Cumulative curves from active bins (columns side, price = bin lower edge, active_usd).

    A fall to a long bin's lower edge liquidates that bin and every long bin above it; a rise to
    a short bin's upper edge liquidates that bin and every short bin below it. Returns
    ``MAP_COLUMNS`` sorted by side then price; ``reach_price`` is the edge that triggers
    ``cumulative_usd``. Bins with no active USD are dropped.
    """
    active = bins[bins["active_usd"] > 0]
    active = active.groupby(["side", "price"], as_index=False)["active_usd"].sum()
    parts = []
    for side, frame in active.groupby("side", sort=True):
        frame = frame.sort_values("price").reset_index(drop=True)
        if side == "long":
            cumulative = frame["active_usd"][::-1].cumsum()[::-1]
            reach = frame["price"]
        else:
            cumulative = frame["active_usd"].cumsum()
            reach = np.round(frame["price"] + bin_size, 10)
        parts.append(frame.assign(cumulative_usd=cumulative.to_numpy(), reach_price=reach))
    if not parts:
        return pd.DataFrame({column: [] for column in MAP_COLUMNS})
    return pd.concat(parts, ignore_index=True)[MAP_COLUMNS]


def liquidated_if_reached(curve: pd.DataFrame, price: float, side: str) -> float:
    """USD of ``side`` levels liquidated if price moves to ``price`` (0 if none are reached)."""
    frame = curve[curve["side"] == side]
    reached = frame["reach_price"] >= price if side == "long" else frame["reach_price"] <= price
    cumulative = frame.loc[reached, "cumulative_usd"]
    if cumulative.empty:
        return 0.0
    return float(cumulative.iloc[0] if side == "long" else cumulative.iloc[-1])
