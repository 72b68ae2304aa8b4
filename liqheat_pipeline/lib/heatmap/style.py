"""Colours and scales shared by the interactive page and the PNG preview, so both read the same
way."""

from __future__ import annotations

from datetime import timedelta

BACKGROUND = "#0b0e14"
GRID = "#1c2230"
TEXT = "#d8dee9"
# The close: a green no colour scale, accent or other line uses (the scales run teal and
# magenta-orange-yellow, coverage is lavender), drawn over a dark casing of PRICE_CASING_WIDTH
# so it stays visible where it crosses the pale tops of the scales.
PRICE_LINE = "#8cff3f"
PRICE_CASING_WIDTH = 3.6
PRICE_LINE_WIDTH = 1.5
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
# The log scale's floor: this many decades below the saturation. A cell holding under a
# thousandth of the dense clusters' notional (BTCUSDT, 30 days: under ~$20k in a $100 bin, next
# to clusters of ~$20M) is no cluster anyone trades around. A floor at the smallest cells
# instead (their minimum is a few dollars on the real data) spends most of the colours on them
# and leaves every real level at the bright top of the scale, all alike. A fraction of the
# saturation, not a quantile, keeps the floor put however many thin cells a view has.
LOG_DECADES = 2

# Modelled-liquidation markers at full size and opacity up to this range. Longer ranges pack
# more price movement into each pixel and the markers would bury the price line, so they shrink
# and fade with the fourth root of the range (30 days: 56 % of the size, 70 % opaque); the
# price line is drawn above them, on a casing.
MARKER_FULL_SPAN = timedelta(days=3)
MARKER_OPACITY = 0.9
MARKER_MIN_OPACITY = 0.45


def marker_scale(span: timedelta) -> float:
    """Size factor of the modelled-liquidation markers in a view of ``span`` (1 up to
    MARKER_FULL_SPAN)."""
    return min(1.0, (MARKER_FULL_SPAN / span) ** 0.25)


def marker_opacity(span: timedelta) -> float:
    """Opacity of the markers in a view of ``span``: MARKER_OPACITY at full size, towards
    MARKER_MIN_OPACITY as they shrink."""
    return MARKER_MIN_OPACITY + (MARKER_OPACITY - MARKER_MIN_OPACITY) * marker_scale(span)
