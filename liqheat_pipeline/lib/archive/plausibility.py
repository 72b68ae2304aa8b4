"""Bounds beyond which an archive value is a data error, not a market move.

The readers reject a file with a value beyond these bounds (naming the file, line, value and the
setting), so nothing impossible reaches the tables. The defaults leave a wide margin over the
largest moves in the real sample (BTCUSDT and ETHUSDT, December 2025): open interest changed by
at most 1.4 % / 1.8 % between consecutive 5-minute snapshots (its USDT value by 2.7 % / 3.7 %),
and a 5-minute candle spanned at most 2.2 % / 2.8 % of the previous close.
"""

from __future__ import annotations

from dataclasses import dataclass

# The settings that override each bound (see liqheat_pipeline/settings.py); errors name them.
MAX_CANDLE_RANGE_VARIABLE = "LIQHEAT_MAX_CANDLE_RANGE_PCT"
MAX_OI_CHANGE_VARIABLE = "LIQHEAT_MAX_OI_CHANGE_PCT"
MAX_VALUE_VARIABLE = "LIQHEAT_MAX_VALUE"


@dataclass(frozen=True)
class PlausibilityLimits:
    """Fractions (0.5 = 50 %) and an absolute bound; see the module docstring for the defaults."""

    # (max(high, reference) - min(low, reference)) / reference for one candle, where the
    # reference is the previous candle's close, or the candle's own open after a gap.
    max_candle_range: float = 0.5
    # |change| / previous value between consecutive 5-minute snapshots (base units and USDT).
    max_oi_change: float = 0.5
    # No price, quantity or USD amount of a real market comes near this.
    max_value: float = 1e15

    def describe_candle_range(self) -> str:
        return f"{MAX_CANDLE_RANGE_VARIABLE}={self.max_candle_range * 100:g}"

    def describe_oi_change(self) -> str:
        return f"{MAX_OI_CHANGE_VARIABLE}={self.max_oi_change * 100:g}"

    def describe_value(self) -> str:
        return f"{MAX_VALUE_VARIABLE}={self.max_value:g}"


DEFAULT_LIMITS = PlausibilityLimits()
