"""Colours shared by the interactive page and the PNG preview, so both read the same way."""

from __future__ import annotations

BACKGROUND = "#0b0e14"
GRID = "#1c2230"
TEXT = "#d8dee9"
PRICE_LINE = "#ffffff"
# Long levels sit below price (liquidated by a fall), short levels above (by a rise). Each scale
# starts at the background so thin levels fade out and dense clusters glow.
LONG_STOPS: tuple[tuple[float, str], ...] = (
    (0.0, BACKGROUND),
    (0.12, "#0b2f45"),
    (0.35, "#0b6e8a"),
    (0.65, "#1fc8c0"),
    (1.0, "#e6fff7"),
)
SHORT_STOPS: tuple[tuple[float, str], ...] = (
    (0.0, BACKGROUND),
    (0.12, "#3a0f3f"),
    (0.35, "#8f2466"),
    (0.65, "#f06a3f"),
    (1.0, "#fff3a6"),
)
LONG_ACCENT = "#35e0d0"
SHORT_ACCENT = "#ff8a4c"
# The share of open interest the modelled levels cover: a colour no side or price line uses.
COVERAGE_LINE = "#b49cff"
# Colour saturates at this quantile of the non-empty cells in view, so one huge cell does not
# leave everything else dark.
SATURATION_QUANTILE = 0.99
