"""Static PNG preview of a heatmap page (matplotlib, Agg), small enough for Dagster metadata."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: no display, same pixels on every host

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.patheffects import Normal, Stroke

from liqheat_pipeline.lib.heatmap import queries, style
from liqheat_pipeline.lib.heatmap.history import FINE_SPAN, Grid, HeatmapHistory, dense
from liqheat_pipeline.lib.heatmap.labels import SYNTHETIC_LABEL, is_synthetic
from liqheat_pipeline.lib.heatmap.page import page_title

DPI = 100
SIZE_INCHES = (11.0, 5.2)
# Figure fractions: the axes span [PLOT_BOTTOM, PLOT_TOP]; the colour bars sit right of the
# liquidation map, the short one at the top and the long one at the bottom, as on the page.
PLOT_BOTTOM, PLOT_TOP = 0.1, 0.86
COLORBAR_LEFT, COLORBAR_WIDTH, COLORBAR_HEIGHT = 0.935, 0.011, 0.34
POINTS_PER_PIXEL = 72 / DPI  # the page's line widths are pixels, matplotlib's points


def render_preview(history: HeatmapHistory) -> bytes:
    """PNG bytes: the page's history (5-minute columns up to 3 days, else hourly), all tiers,
    with the price path, modelled liquidations, the liquidation map at the end and the colour
    bars (linear, USD ticks)."""
    grid = history.fine if history.end - history.start <= FINE_SPAN else history.coarse
    figure, (heat_axes, map_axes) = plt.subplots(
        1,
        2,
        figsize=SIZE_INCHES,
        dpi=DPI,
        sharey=True,
        gridspec_kw={"width_ratios": [4.2, 1], "wspace": 0.06},
        facecolor=style.BACKGROUND,
    )
    for axes in (heat_axes, map_axes):
        _dark(axes)
    figure.suptitle(page_title(history), color=style.TEXT, fontsize=11, x=0.01, ha="left")
    if not grid.cells.empty:
        _draw_heat(figure, heat_axes, grid, history)
    _draw_price(heat_axes, history)
    _draw_map(map_axes, history)
    if is_synthetic(history.symbol):
        heat_axes.text(
            0.5,
            0.5,
            SYNTHETIC_LABEL,
            transform=heat_axes.transAxes,
            ha="center",
            va="center",
            fontsize=30,
            color="#ff5c5c",
            alpha=0.3,
            fontweight="bold",
        )
    figure.subplots_adjust(left=0.07, right=0.905, top=PLOT_TOP, bottom=PLOT_BOTTOM)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=style.BACKGROUND)
    plt.close(figure)
    return buffer.getvalue()


def _dark(axes: plt.Axes) -> None:
    axes.set_facecolor(style.BACKGROUND)
    axes.tick_params(colors=style.TEXT, labelsize=8)
    for spine in axes.spines.values():
        spine.set_color(style.GRID)
    axes.grid(color=style.GRID, linewidth=0.5)
    axes.set_axisbelow(True)


def _colormap(name: str, stops: tuple[tuple[float, str], ...]) -> LinearSegmentedColormap:
    return LinearSegmentedColormap.from_list(name, list(stops))


def _draw_heat(figure: plt.Figure, axes: plt.Axes, grid: Grid, history: HeatmapHistory) -> None:
    bins = history.bins
    y0 = float(grid.cells["price"].min())
    rows = int(np.rint((grid.cells["price"].max() - y0) / bins.size)) + 1
    edges_x = pd.date_range(grid.window.start, grid.window.end, periods=grid.window.slots + 1)
    edges_y = y0 + np.arange(rows + 1) * bins.size
    long = dense(grid, bins, "long_active", y0, rows)
    short = dense(grid, bins, "short_active", y0, rows)
    values = np.concatenate([long[long > 0], short[short > 0]])
    top = float(np.quantile(values, style.SATURATION_QUANTILE)) if values.size else 1.0
    norm = Normalize(0.0, top)
    for matrix, name, stops, bottom in (
        (long, "long", style.LONG_STOPS, PLOT_BOTTOM),
        (short, "short", style.SHORT_STOPS, PLOT_TOP - COLORBAR_HEIGHT),
    ):
        mesh = axes.pcolormesh(
            edges_x,
            edges_y,
            np.ma.masked_less_equal(matrix, 0),
            cmap=_colormap(name, stops),
            norm=norm,
            shading="flat",
            rasterized=True,
        )
        _colorbar(figure, mesh, name, bottom)
    # Column centres in datetime64 (times of Python timedeltas would box every cell).
    half_intervals = (grid.column() * 2 + 1) * grid.window.interval_minutes * 30
    centres = np.datetime64(grid.window.start, "s") + half_intervals.astype("timedelta64[s]")
    # Markers shrink and fade over long histories as on the page (scale is of the diameter).
    span = history.end - history.start
    scale = style.marker_scale(span)
    for side, colour, marker in (
        ("long", style.LONG_ACCENT, "v"),
        ("short", style.SHORT_ACCENT, "^"),
    ):
        consumed = grid.cells[f"{side}_consumed"].to_numpy()
        keep = consumed > 0
        if keep.any():
            axes.scatter(
                centres[keep],
                grid.cells["price"].to_numpy()[keep] + bins.size / 2,
                s=scale**2 * (6 + 60 * np.sqrt(consumed[keep] / consumed[keep].max())),
                c=colour,
                marker=marker,
                linewidths=0,
                alpha=style.marker_opacity(span),
            )


def _colorbar(figure: plt.Figure, mesh: plt.QuadMesh, side: str, bottom: float) -> None:
    """A colour bar of one side's scale with USD ticks, right of the liquidation map."""
    axes = figure.add_axes((COLORBAR_LEFT, bottom, COLORBAR_WIDTH, COLORBAR_HEIGHT))
    bar = figure.colorbar(mesh, cax=axes)
    bar.outline.set_visible(False)
    bar.ax.tick_params(colors=style.TEXT, labelsize=7, length=2)
    bar.ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5, steps=[1, 2, 5, 10]))
    bar.ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_usd))
    bar.ax.set_title(side, color=style.TEXT, fontsize=8, loc="left")


# The close over a dark casing (style.PRICE_LINE says why), above the markers.
_PRICE_CASING = Stroke(
    linewidth=style.PRICE_CASING_WIDTH * POINTS_PER_PIXEL, foreground=style.BACKGROUND
)


def _draw_price(axes: plt.Axes, history: HeatmapHistory) -> None:
    candles = history.candles
    if candles.empty:
        return
    axes.plot(
        candles["open_time"],
        candles["close"],
        color=style.PRICE_LINE,
        linewidth=style.PRICE_LINE_WIDTH * POINTS_PER_PIXEL,
        path_effects=[_PRICE_CASING, Normal()],
        zorder=3,
    )
    low, high = float(candles["low"].min()), float(candles["high"].max())
    pad = max((high - low) * 0.5, high * 0.035)
    axes.set_ylim(low - pad, high + pad)
    axes.set_xlim(history.start, history.end)
    axes.set_ylabel("price (USDT)", color=style.TEXT, fontsize=9)
    axes.yaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.6g}"))
    axes.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%m-%d\n%H:%M"))


def preview_liquidation_map(history: HeatmapHistory) -> pd.DataFrame:
    """The liquidation map the preview draws: ``queries.liquidation_map_rows`` of the page's map
    time and bins, computed by its SQL over the cells the history already holds (the 5-minute
    grid's column at ``map_ts``, tiers summed)."""
    cells = history.fine.cells
    snapshot = cells[cells["ts"] == history.map_ts]
    binned = pd.concat(
        [
            pd.DataFrame(
                {"side": side, "price": snapshot["price"], "active_usd": snapshot[f"{side}_active"]}
            )
            for side in ("long", "short")
        ],
        ignore_index=True,
    )
    return queries.binned_liquidation_map(binned, history.bins.size)


def _draw_map(axes: plt.Axes, history: HeatmapHistory) -> None:
    """USD per bin (bottom scale) and the cumulative curves (top scale) at the page's map time,
    the last snapshot."""
    axes.set_xlabel("USD per bin at the end", color=style.TEXT, fontsize=9)
    cumulative_axes = axes.twiny()
    _dark(cumulative_axes)
    cumulative_axes.grid(False)
    cumulative_axes.set_xlabel("cumulative USD", color=style.TEXT, fontsize=9)
    curve = preview_liquidation_map(history)
    size = history.bins.size
    for side, colour in (("long", style.LONG_ACCENT), ("short", style.SHORT_ACCENT)):
        frame = curve[curve["side"] == side]
        if frame.empty:
            continue
        # One step outline over every bin (zero where empty) draws what a bar per bin would,
        # without a patch per bin (300 patches cost ~0.3 s).
        low = float(frame["price"].min())
        row = np.rint((frame["price"].to_numpy() - low) / size).astype(np.int64)
        usd = np.zeros(row.max() + 1)
        usd[row] = frame["active_usd"].to_numpy()
        edges = low + np.arange(len(usd) + 1) * size
        axes.stairs(usd, edges, orientation="horizontal", fill=True, color=colour, alpha=0.55, lw=0)
        cumulative_axes.plot(
            frame["cumulative_usd"], frame["reach_price"], color=colour, linewidth=1.4
        )
    if history.map_price is not None:
        axes.axhline(history.map_price, color=style.PRICE_LINE, linewidth=0.9)
    for usd_axes in (axes, cumulative_axes):
        usd_axes.set_xlim(left=0)
        usd_axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_usd))
        usd_axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3, steps=[1, 2, 5, 10]))


def _usd(value: float, _position: int) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"${value / size:.3g}{suffix}"
    return f"${value:.3g}"
