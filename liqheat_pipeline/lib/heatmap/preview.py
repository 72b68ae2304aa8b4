"""Static PNG preview of a heatmap page (matplotlib, Agg), small enough for Dagster metadata."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: no display, same pixels on every host

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap, Normalize

from liqheat_pipeline.lib.heatmap import style
from liqheat_pipeline.lib.heatmap.history import FINE_SPAN, Grid, HeatmapHistory, dense
from liqheat_pipeline.lib.heatmap.labels import SYNTHETIC_LABEL, is_synthetic
from liqheat_pipeline.lib.heatmap.liquidation_map import cumulative_liquidation_map
from liqheat_pipeline.lib.heatmap.page import page_title

DPI = 100
SIZE_INCHES = (11.0, 5.2)


def render_preview(history: HeatmapHistory) -> bytes:
    """PNG bytes: the page's history (5-minute columns up to 3 days, else hourly), all tiers,
    with the price path, modelled liquidations and the liquidation map at the end."""
    grid = history.fine if history.end - history.start <= FINE_SPAN else history.coarse
    figure, (heat_axes, map_axes) = plt.subplots(
        1,
        2,
        figsize=SIZE_INCHES,
        dpi=DPI,
        sharey=True,
        gridspec_kw={"width_ratios": [4.2, 1], "wspace": 0.03},
        facecolor=style.BACKGROUND,
    )
    for axes in (heat_axes, map_axes):
        _dark(axes)
    figure.suptitle(page_title(history), color=style.TEXT, fontsize=11, x=0.01, ha="left")
    if not grid.cells.empty:
        _draw_heat(heat_axes, grid, history)
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
    figure.subplots_adjust(left=0.07, right=0.98, top=0.9, bottom=0.1)
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


def _draw_heat(axes: plt.Axes, grid: Grid, history: HeatmapHistory) -> None:
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
    for matrix, name, stops in (
        (long, "long", style.LONG_STOPS),
        (short, "short", style.SHORT_STOPS),
    ):
        axes.pcolormesh(
            edges_x,
            edges_y,
            np.ma.masked_less_equal(matrix, 0),
            cmap=_colormap(name, stops),
            norm=norm,
            shading="flat",
            rasterized=True,
        )
    # Column centres in datetime64 (times of Python timedeltas would box every cell).
    half_intervals = (grid.column() * 2 + 1) * grid.window.interval_minutes * 30
    centres = np.datetime64(grid.window.start, "s") + half_intervals.astype("timedelta64[s]")
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
                s=6 + 60 * np.sqrt(consumed[keep] / consumed[keep].max()),
                c=colour,
                marker=marker,
                linewidths=0,
                alpha=0.9,
            )


def _draw_price(axes: plt.Axes, history: HeatmapHistory) -> None:
    candles = history.candles
    if candles.empty:
        return
    axes.plot(candles["open_time"], candles["close"], color=style.PRICE_LINE, linewidth=0.8)
    low, high = float(candles["low"].min()), float(candles["high"].max())
    pad = max((high - low) * 0.5, high * 0.035)
    axes.set_ylim(low - pad, high + pad)
    axes.set_xlim(history.start, history.end)
    axes.set_ylabel("price (USDT)", color=style.TEXT, fontsize=9)
    axes.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%m-%d\n%H:%M"))


def _draw_map(axes: plt.Axes, history: HeatmapHistory) -> None:
    """Cumulative liquidation curves at the last snapshot (the fine grid's last column)."""
    axes.set_xlabel("cumulative USD at the end", color=style.TEXT, fontsize=9)
    cells = history.fine.cells
    if cells.empty:
        return
    last = cells[cells["ts"] == cells["ts"].max()]
    bins = pd.concat(
        [
            pd.DataFrame(
                {"side": side, "price": last["price"], "active_usd": last[f"{side}_active"]}
            )
            for side in ("long", "short")
        ],
        ignore_index=True,
    )
    size = history.bins.size
    curve = cumulative_liquidation_map(bins, size)
    for side, colour in (("long", style.LONG_ACCENT), ("short", style.SHORT_ACCENT)):
        frame = curve[curve["side"] == side]
        if not frame.empty:
            # One step outline over every bin (zero where empty) draws what a bar per bin
            # would, without a patch per bin (300 patches cost ~0.3 s).
            low = float(frame["price"].min())
            row = np.rint((frame["price"].to_numpy() - low) / size).astype(np.int64)
            usd = np.zeros(row.max() + 1)
            usd[row] = frame["active_usd"].to_numpy()
            edges = low + np.arange(len(usd) + 1) * size
            axes.stairs(
                usd, edges, orientation="horizontal", fill=True, color=colour, alpha=0.45, lw=0
            )
        axes.plot(frame["cumulative_usd"], frame["reach_price"], color=colour, linewidth=1.4)
    if history.map_price is not None:
        axes.axhline(history.map_price, color=style.PRICE_LINE, linewidth=0.8)
    axes.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_usd))
    axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3))


def _usd(value: float, _position: int) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"${value / size:.3g}{suffix}"
    return f"${value:.3g}"
