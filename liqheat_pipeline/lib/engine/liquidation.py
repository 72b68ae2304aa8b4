"""Binance USDⓈ-M liquidation price of an isolated one-way position (numpy-vectorised).

Binance's FAQ formula LP = (WB + cum − Side·Q·p) / (Q·MMR − Side·Q) (Side = +1 long, −1 short;
Q the quantity, p the entry price) with the isolated wallet balance WB = N / L for notional
N = Q·p reduces to

* long:  LP = p × (1 − 1/L − cum/N) / (1 − MMR)
* short: LP = p × (1 + 1/L + cum/N) / (1 + MMR)

with MMR and cum (maintenance amount) of the bracket holding N. The maintenance margin is
N_LP·MMR − cum, so cum moves the liquidation price away from the entry. (model.md v1 prints the
cum term with the opposite sign; the two agree whenever cum = 0, i.e. in every first bracket.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FORMULA_NAME = "binance_usdm_isolated_one_way"


def liquidation_price(
    entry: npt.ArrayLike,
    leverage: npt.ArrayLike,
    side: str | npt.ArrayLike,
    mmr: npt.ArrayLike,
    maint_amount: npt.ArrayLike,
    n_rep: npt.ArrayLike,
) -> np.ndarray:
    """Liquidation price(s); ``side`` is 'long' or 'short' (scalar or array), others broadcast."""
    sides = np.asarray(side)
    unknown = ~np.isin(sides, ("long", "short"))
    if unknown.any():
        raise ValueError(f"side must be 'long' or 'short', got {sides[unknown].ravel()[0]!r}")
    return liquidation_price_by_flag(entry, leverage, sides == "long", mmr, maint_amount, n_rep)


def liquidation_price_by_flag(
    entry: npt.ArrayLike,
    leverage: npt.ArrayLike,
    is_long: npt.ArrayLike,
    mmr: npt.ArrayLike,
    maint_amount: npt.ArrayLike,
    n_rep: npt.ArrayLike,
) -> np.ndarray:
    """As :func:`liquidation_price` with a boolean ``is_long`` instead of side names."""
    entry = np.asarray(entry, dtype=np.float64)
    inverse_leverage = 1.0 / np.asarray(leverage, dtype=np.float64)
    mmr = np.asarray(mmr, dtype=np.float64)
    amount_share = np.asarray(maint_amount, dtype=np.float64) / np.asarray(n_rep, dtype=np.float64)
    long_price = entry * (1.0 - inverse_leverage - amount_share) / (1.0 - mmr)
    short_price = entry * (1.0 + inverse_leverage + amount_share) / (1.0 + mmr)
    return np.where(is_long, long_price, short_price)
