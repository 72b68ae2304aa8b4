"""The interactive heatmap page: one HTML file that needs no network.

Plotly's JS is either inlined (a self-contained file) or loaded from ``plotly.min.js`` beside
the page (pages of one folder share one copy of the ~4.8 MB library).

The figure's layout and trace styles are built here with plotly's graph objects; the cells are
embedded as sparse little-endian arrays (gzip, base64) that ``page.js`` inflates and expands
for the selected range, leverage tier and intensity scale. Storing cells sparsely, per tier,
their float32 values as differences from a prediction (``encode_values``, lossless),
compressed, and letting the browser sum "all tiers" keeps 30 days of BTCUSDT (nine tiers in
the band) to about 1 MB of data beside Plotly's own ~4.8 MB (4.2 MB with the values XOR-ed
with their predecessors instead). ``page.js`` decodes a grid when a range first needs it.

A panel under the heatmap (same time axis) shows observed liquidations from
``realized_liquidations`` where the symbol has them, as bars labelled with their scope, and the
share of open interest the modelled levels cover; a caption gives the model's skill against the
observed series when a ``model_skill`` window ends with the page.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
import string
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from liqheat_pipeline.lib.heatmap import style
from liqheat_pipeline.lib.heatmap.history import (
    ALL_TIERS,
    COARSE_SPAN,
    FINE_SPAN,
    PRICE_BAND_MARGIN,
    Grid,
    HeatmapHistory,
)
from liqheat_pipeline.lib.heatmap.labels import SYNTHETIC_LABEL, chart_title, is_synthetic
from liqheat_pipeline.lib.heatmap.queries import PriceBins

RANGES = {
    "12h": timedelta(hours=12),
    "24h": timedelta(hours=24),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "180d": timedelta(days=180),
    "1y": timedelta(days=365),
}
DEFAULT_RANGE = "3d"
# The observed panel's share of the plot height, under the heatmap's price axis.
PANEL_HEIGHT = 0.17
PANEL_GAP = 0.05
PLOTLY_FILE = "plotly.min.js"
_SIBLING_PLOTLY = f'<script src="{PLOTLY_FILE}"></script>'
# gzip level of the embedded arrays: on the real 30-day BTCUSDT page 6 is 16 % smaller than 3;
# on a synthetic year-end page 4 is 4 % larger than 6 (1.49 against 1.43 MB) and renders in
# 0.62 s instead of 0.95 s (every page of a range run pays it);
# 9 saves 5 % more but takes three times as long on the mostly-zero value planes.
GZIP_LEVEL = 4


def render_page(history: HeatmapHistory, *, inline_plotly: bool = True) -> str:
    """The complete HTML document for ``history``; with ``inline_plotly=False`` it loads Plotly
    from ``PLOTLY_FILE`` in the same folder."""
    package = resources.files(__package__)
    template = string.Template(package.joinpath("page_template.html").read_text("utf-8"))
    title = page_title(history)
    heading = html.escape(title)
    if is_synthetic(history.symbol):
        heading = heading.replace(
            SYNTHETIC_LABEL, f'<span class="synthetic">{SYNTHETIC_LABEL}</span>'
        )
    return template.substitute(
        title=html.escape(title),
        heading=heading,
        background=style.BACKGROUND,
        text=style.TEXT,
        plotly_script=_inline_plotly_script() if inline_plotly else _SIBLING_PLOTLY,
        range_buttons="".join(_range_button(history, name) for name in RANGES),
        tier_options="".join(
            f'<option value="{index}">{label}</option>'
            for index, label in enumerate(_tier_labels(history))
        ),
        coverage=html.escape(coverage_text(history)),
        skill=_skill_element(history),
        footer=html.escape(_footer(history)),
        data=_script_json(page_data(history)),
        figure=_figure_json(is_synthetic(history.symbol)),
        script=package.joinpath("page.js").read_text("utf-8"),
    )


def self_contained(page: str, bundle: str | None = None) -> str:
    """``page`` with its sibling ``PLOTLY_FILE`` reference replaced by the inlined library
    (``bundle``, by default ``plotly_bundle()``; a page that already inlines it comes back
    unchanged)."""
    script = _inline_plotly_script() if bundle is None else f"<script>{bundle}</script>"
    return page.replace(_SIBLING_PLOTLY, script, 1)


def plotly_bundle() -> str:
    """The minified Plotly library that pages inline or load as ``PLOTLY_FILE``."""
    return get_plotlyjs()


def _inline_plotly_script() -> str:
    return f"<script>{plotly_bundle()}</script>"


def page_title(history: HeatmapHistory) -> str:
    return chart_title(
        history.symbol,
        f"modelled liquidation heatmap up to {history.end:%Y-%m-%d %H:%M} UTC",
    )


def available_ranges(history: HeatmapHistory) -> list[str]:
    """The ranges the page offers: every range up to COARSE_SPAN (as before the long ranges
    existed), and a longer one only when the history reaches beyond the next shorter range, so
    that it shows something that range does not."""
    span = history.end - history.first_column
    shorter = [timedelta(0), *RANGES.values()]
    return [
        name
        for (name, length), previous in zip(RANGES.items(), shorter, strict=False)
        if length <= COARSE_SPAN or span > previous
    ]


def _range_button(history: HeatmapHistory, name: str) -> str:
    """A range button; one the history is too short for is greyed out and says why."""
    if name not in available_ranges(history):
        return (
            f'<button type="button" data-range="{name}" disabled style="opacity:0.35;'
            f'cursor:default" title="the history starts {history.first_column:%Y-%m-%d}">'
            f"{name}</button>"
        )
    active = " class=active" if name == DEFAULT_RANGE else ""
    return f'<button type="button" data-range="{name}"{active}>{name}</button>'


def _tier_labels(history: HeatmapHistory) -> list[str]:
    if history.tiers == (ALL_TIERS,):
        return ["all tiers"]
    return ["all tiers", *(f"{tier}x" for tier in history.tiers)]


def _band_text(bins: PriceBins) -> str:
    if bins.low is None or bins.high is None:
        return ""
    return (
        f", shown for {bins.low:,.0f}–{bins.high:,.0f} (the traded range ± "
        f"{PRICE_BAND_MARGIN:.0%}; the API serves every level)"
    )


def coverage_text(history: HeatmapHistory) -> str:
    """How much of open interest the modelled levels cover at the page's last state."""
    coverage = history.coverage
    last = coverage.iloc[-1] if not coverage.empty else None
    if last is None or all(_missing(last[side]) for side in ("long", "short")):
        return "coverage of open interest: unknown (no open interest in the model's ledger)"
    return (
        f"modelled levels cover {_percent(last['total'])} of open interest "
        f"(long {_percent(last['long'])}, short {_percent(last['short'])}) "
        f"as of the {last['last_candle']:%Y-%m-%d %H:%M} UTC candle"
    )


def observed_label(history: HeatmapHistory, observed: pd.DataFrame | None = None) -> str:
    """The observed panel's label: what the bars (``observed``, by default the history's
    buckets) are and what they cover."""
    observed = history.observed if observed is None else observed
    if observed.empty:
        return f"no observed liquidations of {history.symbol} in this period"
    scopes = " | ".join(dict.fromkeys(observed["scope"]))
    minutes = " / ".join(f"{m:g}" for m in dict.fromkeys(observed["bucket_minutes"]))
    return (
        f"observed liquidations ({scopes}) per {minutes} min: "
        "long below the line, short above (not modelled)"
    )


def skill_caption(history: HeatmapHistory) -> str | None:
    """The headline of the ``model_skill`` window ending with the page, if there is one."""
    skill = history.skill
    if skill is None:
        return None
    sides = ", ".join(
        f"{side} {_score(skill.value(side, 'model', 'spearman'))} vs "
        f"{_score(skill.value(side, 'baseline_range', 'spearman'))}"
        for side in ("long", "short")
    )
    return (
        f"Skill against observed liquidations ({skill.n_buckets} buckets of "
        f"{skill.bucket_minutes} min, {skill.window_start:%Y-%m-%d %H:%M} to "
        f"{skill.window_end:%Y-%m-%d %H:%M} UTC): Spearman rank correlation, model vs "
        f"price-range baseline: {sides}. Config {skill.config_hash or 'unknown'}."
    )


def _skill_element(history: HeatmapHistory) -> str:
    caption = skill_caption(history)
    return "" if caption is None else f'<p id="liqheat-skill">{html.escape(caption)}</p>'


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _percent(fraction: Any) -> str:
    return "n/a" if _missing(fraction) else f"{100 * fraction:.0f} %"


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _footer(history: HeatmapHistory) -> str:
    assumptions = history.info.assumptions
    described = ", ".join(
        f"{key} {assumptions[key]}"
        for key in ("side_model", "entry_price", "closure_model")
        if key in assumptions
    )
    return (
        "Model estimate of where leveraged positions would be liquidated, not observed "
        f"liquidations. Colour: USD of active long (below price) and short (above price) "
        f"liquidation levels per {history.bins.size:g} USDT bin{_band_text(history.bins)}, "
        "to 7 significant digits (cells are stored as 32-bit floats); "
        "green line: the close; markers: modelled liquidations "
        "(consumed USD); bars under the heatmap: observed liquidations where a source exists "
        "(their scope may differ from this one contract); lavender line: share of open interest "
        "the modelled levels cover. Columns are 5-minute states up to 3 days, hourly up to 30 "
        "days, daily beyond on coarser price bins (state at the column's end, liquidations "
        "summed). Click a column to move the liquidation "
        "map. "
        f"Config {history.info.config_hash or 'unknown'}"
        + (f" ({described})" if described else "")
        + "."
    )


def page_data(history: HeatmapHistory) -> dict[str, Any]:
    """The JSON-able data block of the page (cells, price path, labels)."""
    short_grids = (history.fine, history.coarse)
    long = history.long
    return {
        "symbol": history.symbol,
        "synthetic": is_synthetic(history.symbol),
        "synthetic_label": SYNTHETIC_LABEL,
        "start": _epoch_ms(history.start),
        "end": _epoch_ms(history.end),
        "tiers": _tier_labels(history),
        "default_range": DEFAULT_RANGE,
        "ranges": {
            name: {
                "span": span // timedelta(milliseconds=1),
                "marker_scale": style.marker_scale(span),
                "marker_opacity": style.marker_opacity(span),
            }
            for name, span in RANGES.items()
        },
        "fine_span": FINE_SPAN // timedelta(milliseconds=1),
        "coarse_span": COARSE_SPAN // timedelta(milliseconds=1),
        "saturation_quantile": style.SATURATION_QUANTILE,
        "log_decades": style.LOG_DECADES,
        "map_time": None if history.map_ts is None else _epoch_ms(history.map_ts),
        "grids": {
            "fine": _encode_grid(history.fine, history, history.bins, short_grids),
            "coarse": _encode_grid(history.coarse, history, history.bins, short_grids),
            **(
                {}
                if long is None
                else {"long": _encode_grid(long.grid, history, long.bins, (long.grid,))}
            ),
        },
        # The short ranges' series; the long grid's are under "long".
        **_series(history, history.candles, history.observed, history.coverage),
        "long": None
        if long is None
        else _series(history, long.candles, long.observed, long.coverage),
    }


def _series(
    history: HeatmapHistory, candles: pd.DataFrame, observed: pd.DataFrame, coverage: pd.DataFrame
) -> dict[str, Any]:
    """The price path, observed liquidations and coverage drawn with one set of grids; times
    in minutes since the page's ``start`` (negative before it)."""
    return {
        "candles": {
            "minute": _packed(_minutes_array(history.start, candles["open_time"]).astype("<i4")),
            "low": _packed(candles["low"].to_numpy("<f4")),
            "high": _packed(candles["high"].to_numpy("<f4")),
            "close": _packed(candles["close"].to_numpy("<f4")),
        },
        # Plain JSON: a few hundred values, exact in the browser.
        "observed_label": observed_label(history, observed),
        "observed": {
            "minute": _minutes_since(history.start, observed["bucket_start"]),
            "minutes": observed["bucket_minutes"].astype(int).tolist(),
            "long": observed["long_usd"].astype(float).tolist(),
            "short": observed["short_usd"].astype(float).tolist(),
        },
        "coverage": {
            "minute": _minutes_since(history.start, coverage["last_candle"]),
            **{side: _nullable(coverage[side]) for side in ("long", "short", "total")},
        },
    }


def _minutes_array(start: datetime, times: Any) -> np.ndarray:
    offsets = times.to_numpy("datetime64[ns]") - np.datetime64(start)
    return (offsets // np.timedelta64(1, "m")).astype(np.int64)


def _minutes_since(start: datetime, times: Any) -> list[int]:
    return _minutes_array(start, times).tolist()


def _nullable(values: Any) -> list[float | None]:
    """Floats with NaN as None (JSON has no NaN)."""
    return [None if math.isnan(value) else value for value in values.astype(float).tolist()]


def _encode_grid(
    grid: Grid, history: HeatmapHistory, bins: PriceBins, sharing: tuple[Grid, ...]
) -> dict[str, Any]:
    """Sparse cells of one grid on ``bins`` (rows from the lowest bin of the grids ``sharing``
    them): per kind (active, consumed), arrays col, row, key and value with its column factors
    (``encode_values``) where key = tier index * 2 + side (0 long, 1 short) and tier index 0 is
    the first real tier, ordered by key, row and col: one level's bin through time."""
    prices = np.concatenate([shared.cells["price"].to_numpy() for shared in sharing])
    y0 = float(prices.min()) if prices.size else 0.0
    rows = int(np.rint((prices.max() - y0) / bins.size)) + 1 if prices.size else 0
    cells = grid.cells
    column = grid.column()
    row = np.rint((cells["price"].to_numpy() - y0) / bins.size).astype(np.int64)
    tier = np.searchsorted(np.array(history.tiers), cells["leverage"].to_numpy())
    encoded: dict[str, Any] = {
        "t0": _epoch_ms(grid.window.start),
        "step": grid.window.interval_minutes * 60_000,
        "n": grid.window.slots,
        "label": _interval_label(grid.window.interval_minutes),
        "bin_size": bins.size,
        "y0": y0,
        "rows": rows,
    }
    for kind in ("active", "consumed"):
        parts = []
        for side_code, side in enumerate(("long", "short")):
            values = cells[f"{side}_{kind}"].to_numpy()
            keep = values > 0
            parts.append((column[keep], row[keep], tier[keep] * 2 + side_code, values[keep]))
        col, row_, key, value = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
        order = np.lexsort((col, row_, key))
        col, row_, key = col[order].astype("<u2"), row_[order].astype("<u2"), key[order]
        planes, factors = encode_values(
            value[order], col, _run_starts(key, row_), grid.window.slots
        )
        encoded[kind] = {
            "col": _packed(col),
            "row": _packed(row_),
            "key": _packed(key.astype("u1")),
            "value": _packed(planes),
            "factors": factors,
        }
    return encoded


def decode_cells(encoded: dict[str, Any]) -> dict[str, np.ndarray]:
    """Arrays col, row, key and value of one kind of ``_encode_grid`` (page.js does the same)."""
    cells = {
        name: np.frombuffer(_unpacked(encoded[name]), dtype=dtype)
        for name, dtype in (("col", "<u2"), ("row", "<u2"), ("key", "u1"))
    }
    starts = _run_starts(cells["key"], cells["row"])
    cells["value"] = decode_values(
        _unpacked(encoded["value"]), cells["col"], starts, encoded["factors"]
    )
    return cells


def _run_starts(key: np.ndarray, row: np.ndarray) -> np.ndarray:
    """Whether each cell (ordered by key, row, col) starts a new bin: the first of its run."""
    starts = np.ones(len(key), dtype=bool)
    starts[1:] = (key[1:] != key[:-1]) | (row[1:] != row[:-1])
    return starts


def _interval_label(minutes: int) -> str:
    return {1440: "1 day", 60: "1 hour"}.get(minutes, f"{minutes} min")


@cache
def _figure_json(synthetic: bool) -> str:
    """The figure depends only on the synthetic label; building it with plotly's validators
    costs ~0.1 s, so a range run builds it once, not once per page."""
    return _script_safe(_page_figure(synthetic).to_json())


def _page_figure(synthetic: bool) -> go.Figure:
    """Layout and trace styles; ``page.js`` fills in the data for the chosen view."""
    long_scale = [[stop, colour] for stop, colour in style.LONG_STOPS]
    short_scale = [[stop, colour] for stop, colour in style.SHORT_STOPS]
    cell_hover = "%{x|%Y-%m-%d %H:%M} UTC · price ≈ %{y:,.6~g}<br>"
    figure = go.Figure(
        [
            go.Heatmap(
                name="long levels",
                coloraxis="coloraxis",
                hoverongaps=False,
                hovertemplate=cell_hover + "long liquidation levels: %{customdata:$,.0f}"
                "<extra></extra>",
            ),
            go.Heatmap(
                name="short levels",
                coloraxis="coloraxis2",
                hoverongaps=False,
                hovertemplate=cell_hover + "short liquidation levels: %{customdata:$,.0f}"
                "<extra></extra>",
            ),
            _consumed_markers("long liquidations (modelled)", style.LONG_ACCENT, "triangle-down"),
            _consumed_markers("short liquidations (modelled)", style.SHORT_ACCENT, "triangle-up"),
            # The close over its casing, both above the markers (drawn later).
            go.Scatter(
                name="price casing",
                mode="lines",
                line={"color": style.BACKGROUND, "width": style.PRICE_CASING_WIDTH},
                hoverinfo="skip",
            ),
            go.Scatter(
                name="price (close)",
                mode="lines",
                line={"color": style.PRICE_LINE, "width": style.PRICE_LINE_WIDTH},
                hovertemplate="%{x|%Y-%m-%d %H:%M} UTC · close %{y:,.6~g}<extra></extra>",
            ),
            _map_bars("long levels at the map time", style.LONG_ACCENT),
            _map_bars("short levels at the map time", style.SHORT_ACCENT),
            _map_curve("cumulative long liquidations", style.LONG_ACCENT, "falls"),
            _map_curve("cumulative short liquidations", style.SHORT_ACCENT, "rises"),
            _observed_bars("observed long liquidations", style.LONG_ACCENT),
            _observed_bars("observed short liquidations", style.SHORT_ACCENT),
            go.Scatter(
                name="coverage of open interest (modelled)",
                mode="lines",
                yaxis="y4",
                connectgaps=False,
                line={"color": style.COVERAGE_LINE, "width": 1.2},
                hovertemplate="%{x|%Y-%m-%d %H:%M} UTC · modelled levels cover %{y:.0%} of "
                "open interest (long %{customdata[0]:.0%}, short %{customdata[1]:.0%})"
                "<extra></extra>",
            ),
        ]
    )
    axis = {"gridcolor": style.GRID, "zeroline": False, "color": style.TEXT}
    # Colour bars and map axes get USD ticks (k, M, B) from page.js, for the data in view.
    colorbar = {"thickness": 10, "len": 0.36, "x": 1.0, "xpad": 4}
    heat_bottom = PANEL_HEIGHT + PANEL_GAP
    figure.update_layout(
        template="plotly_dark",
        paper_bgcolor=style.BACKGROUND,
        plot_bgcolor=style.BACKGROUND,
        font={"color": style.TEXT, "size": 12},
        margin={"l": 60, "r": 70, "t": 30, "b": 40},
        showlegend=False,
        hovermode="closest",
        bargap=0,
        # The time axis is drawn under the observed panel and shared with the heatmap.
        xaxis={
            **axis,
            "domain": [0.0, 0.74],
            "type": "date",
            "title": "time (UTC)",
            "anchor": "y3",
        },
        yaxis={
            **axis,
            "title": "price (USDT)",
            "tickformat": ",~r",
            "domain": [heat_bottom, 1.0],
        },
        yaxis3={
            **axis,
            "domain": [0.0, PANEL_HEIGHT],
            "anchor": "x",
            "title": {"text": "observed", "font": {"size": 11}},
        },
        yaxis4={
            **axis,
            "overlaying": "y3",
            "side": "right",
            "anchor": "x",
            # A fixed 0-110 % scale: coverage is a share of open interest, and the warm-up
            # from 0 is what the line is for (an autoscaled axis would hide how far it is).
            "range": [0, 1.1],
            "tickvals": [0, 0.5, 1.0],
            "tickformat": ".0%",
            "ticklabelposition": "inside",
            "showgrid": False,
            "color": style.COVERAGE_LINE,
        },
        xaxis2={
            **axis,
            "domain": [0.77, 0.93],
            "anchor": "y",
            "title": "USD per bin",
        },
        xaxis3={
            **axis,
            "overlaying": "x2",
            "side": "top",
            "showgrid": False,
            "title": "cumulative USD",
        },
        coloraxis={
            "colorscale": long_scale,
            "colorbar": {**colorbar, "y": heat_bottom, "yanchor": "bottom", "title": "long"},
        },
        coloraxis2={
            "colorscale": short_scale,
            "colorbar": {**colorbar, "y": 1.0, "yanchor": "top", "title": "short"},
        },
    )
    for text, yref, corner, colour in (
        ("▼ ▲ modelled liquidations (consumed USD)", "y domain", (0.005, 0.995), style.TEXT),
        (
            "line: modelled levels' coverage of open interest (right scale)",
            "y3 domain",
            (0.94, 0.02),
            style.COVERAGE_LINE,
        ),
    ):
        x, y = corner
        figure.add_annotation(
            text=text,
            xref="x domain",
            yref=yref,
            x=x,
            y=y,
            xanchor="left" if x < 0.5 else "right",
            yanchor="top" if y > 0.5 else "bottom",
            showarrow=False,
            font={"size": 11, "color": colour},
            bgcolor="rgba(11, 14, 20, 0.6)",
        )
    if synthetic:
        figure.add_annotation(
            text=SYNTHETIC_LABEL,
            xref="x domain",
            yref="y domain",
            x=0.5,
            y=0.5,
            showarrow=False,
            font={"size": 42, "color": "rgba(255, 92, 92, 0.22)"},
        )
    return figure


def _consumed_markers(name: str, colour: str, symbol: str) -> go.Scatter:
    return go.Scatter(
        name=name,
        mode="markers",
        marker={
            "color": colour,
            "symbol": symbol,
            # Size and opacity per range come from page.js (style.marker_scale).
            "line": {"color": style.BACKGROUND, "width": 0.5},
        },
        hovertemplate="%{x|%Y-%m-%d %H:%M} UTC · price ≈ %{y:,.6~g}<br>"
        + name
        + ": %{customdata:$,.0f}<extra></extra>",
    )


def _observed_bars(name: str, colour: str) -> go.Bar:
    """Bars of observed buckets on the panel's axis; each spans its bucket from its start
    (an explicit offset also keeps them out of the map bars' grouping)."""
    return go.Bar(
        name=name,
        yaxis="y3",
        offset=0,
        marker={"color": colour, "opacity": 0.8, "line": {"width": 0}},
        hovertemplate="%{x|%Y-%m-%d %H:%M} UTC · " + name + ": %{customdata:$,.0f}<extra></extra>",
    )


def _map_bars(name: str, colour: str) -> go.Bar:
    return go.Bar(
        name=name,
        orientation="h",
        xaxis="x2",
        marker={"color": colour, "opacity": 0.55, "line": {"width": 0}},
        hovertemplate="price ≈ %{y:,.6~g}: %{x:$,.0f} active<extra></extra>",
    )


def _map_curve(name: str, colour: str, move: str) -> go.Scatter:
    return go.Scatter(
        name=name,
        mode="lines",
        xaxis="x3",
        line={"color": colour, "width": 2},
        hovertemplate=f"if price {move} to %{{y:,.6~g}}: %{{x:$,.0f}} liquidated<extra></extra>",
    )


def encode_values(
    values: np.ndarray, col: np.ndarray, run_starts: np.ndarray, slots: int
) -> tuple[np.ndarray, list[float]]:
    """Float32 values (ordered by bin, then column) as bytes that gzip well, and the factors
    page.js needs to undo it: each value is predicted from its bin's previous value times its
    column's factor (the median ratio of consecutive values in that column; nothing at a bin's
    first cell), and stored as the difference of its float32 bits from the prediction's,
    zigzag-coded and split into byte planes (every value's lowest byte, then every second byte
    ...). When open interest falls every level loses the same share, so most cells of a column
    change by its factor and their differences are 0 or a few units; lossless (float32)."""
    values32 = np.ascontiguousarray(values, dtype="<f4")
    previous = np.zeros(len(values32))
    previous[1:] = values32[:-1]
    continuing = ~run_starts
    ratios = pd.Series(values32[continuing] / previous[continuing])
    medians = ratios.groupby(col[continuing]).median()
    factors = np.ones(slots)
    # Ten significant digits: a short JSON number, and any factor predicts as long as the
    # browser uses the same one.
    factors[medians.index.to_numpy()] = [float(f"{ratio:.10g}") for ratio in medians]
    predicted = np.where(continuing, previous * factors[col], 0.0).astype("<f4")
    difference = values32.view("<u4").astype(np.int64) - predicted.view("<u4").astype(np.int64)
    zigzag = ((difference << 1) ^ (difference >> 63)).astype("<u4")
    return np.ascontiguousarray(zigzag.view(np.uint8).reshape(-1, 4).T), factors.tolist()


def decode_values(
    planes: bytes, col: np.ndarray, run_starts: np.ndarray, factors: list[float]
) -> np.ndarray:
    """The float32 values of ``encode_values``, decoded a position within the bins at a time
    (each value needs the one before it)."""
    zigzag = np.frombuffer(planes, dtype=np.uint8).reshape(4, -1).T.copy().view("<u4").ravel()
    difference = (zigzag >> 1).astype(np.int64) ^ -(zigzag & 1).astype(np.int64)
    factor = np.asarray(factors)[col]
    first = np.flatnonzero(run_starts)
    position = np.arange(len(zigzag)) - first[np.cumsum(run_starts) - 1]
    bits = np.zeros(len(zigzag), dtype=np.int64)
    order = np.argsort(position, kind="stable")
    bounds = np.searchsorted(position[order], np.arange(position.max(initial=0) + 2))
    bits[first] = difference[first]
    for at in range(1, len(bounds) - 1):
        index = order[bounds[at] : bounds[at + 1]]
        previous = (bits[index - 1] & 0xFFFFFFFF).astype("<u4").view("<f4").astype(np.float64)
        predicted = (previous * factor[index]).astype("<f4").view("<u4").astype(np.int64)
        bits[index] = predicted + difference[index]
    return (bits & 0xFFFFFFFF).astype("<u4").view("<f4")


def _packed(array: np.ndarray) -> str:
    """gzip (fixed mtime: identical input, identical page) then base64."""
    raw = np.ascontiguousarray(array).tobytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0)).decode("ascii")


def _unpacked(packed: str) -> bytes:
    return gzip.decompress(base64.b64decode(packed))


def _epoch_ms(moment: datetime) -> int:
    return int((np.datetime64(moment, "ms") - np.datetime64(0, "ms")).astype(np.int64))


def _script_json(value: Any) -> str:
    return _script_safe(json.dumps(value, separators=(",", ":")))


def _script_safe(text: str) -> str:
    """JSON safe inside a <script> element (no premature ``</script>``)."""
    return text.replace("</", "<\\/")
