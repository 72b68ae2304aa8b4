"""Reading the liquidation map: USD liquidated if price reaches X, from the cumulative curve of
``queries.liquidation_map_rows`` (the curve itself is computed in SQL there)."""

from __future__ import annotations

import pandas as pd


def liquidated_if_reached(curve: pd.DataFrame, price: float, side: str) -> float:
    """USD of ``side`` levels liquidated if price moves to ``price`` (0 if none are reached)."""
    frame = curve[curve["side"] == side]
    reached = frame["reach_price"] >= price if side == "long" else frame["reach_price"] <= price
    cumulative = frame.loc[reached, "cumulative_usd"]
    if cumulative.empty:
        return 0.0
    return float(cumulative.iloc[0] if side == "long" else cumulative.iloc[-1])
