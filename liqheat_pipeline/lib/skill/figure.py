"""PNG of a skill window for Dagster metadata (matplotlib, Agg): modelled against realized
liquidations per bucket on log axes, per side, and both over time."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: no display, same pixels on every host

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from liqheat_pipeline.lib.skill.predictors import BucketSeries, series_column

DPI = 72
PALETTE_COLOURS = 64
SIZE_INCHES = (10.0, 6.4)
# The heatmap page's hues (long teal, short orange), darker for the white background.
COLOURS = {"long": "#1f9e94", "short": "#e0702f", "model": "#4469c9", "realized": "#333333"}


def render_skill_figure(series: BucketSeries, title: str) -> bytes:
    """PNG bytes: one log-log scatter per side (model vs realized USD, buckets where both are
    positive) above the total of both per bucket over time (log scale, zeros left out)."""
    figure = plt.figure(figsize=SIZE_INCHES, dpi=DPI)
    grid = figure.add_gridspec(2, 2, height_ratios=[1.15, 1], hspace=0.45, wspace=0.25)
    buckets = series.buckets
    for column, side in enumerate(("long", "short")):
        axes = figure.add_subplot(grid[0, column])
        model = buckets[series_column("model", side)].to_numpy(dtype=float)
        realized = buckets[series_column("realized", side)].to_numpy(dtype=float)
        shown = (model > 0) & (realized > 0)
        axes.scatter(realized[shown], model[shown], s=7, c=COLOURS[side], alpha=0.6, linewidths=0)
        if shown.any():
            axes.set_xscale("log")
            axes.set_yscale("log")
        axes.set_title(
            f"{side}: {int(shown.sum())} buckets ({int((~shown).sum())} with a zero not shown)",
            fontsize=9,
        )
        axes.set_xlabel("realized USD", fontsize=8)
        axes.set_ylabel("modelled USD", fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3, linewidth=0.5)
    over_time = figure.add_subplot(grid[1, :])
    for name in ("realized", "model"):
        values = buckets[series_column(name, "total")].to_numpy(dtype=float)
        over_time.plot(
            buckets["bucket_start"],
            np.where(values > 0, values, np.nan),
            color=COLOURS[name],
            linewidth=0.8,
            label=f"{name} (long + short)",
        )
    if len(buckets):
        over_time.set_yscale("log")
    over_time.set_ylabel("USD per bucket", fontsize=8)
    over_time.tick_params(labelsize=7)
    over_time.grid(alpha=0.3, linewidth=0.5)
    over_time.legend(fontsize=8, loc="upper left")
    over_time.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%m-%d"))
    figure.suptitle(title, fontsize=10, x=0.01, ha="left")
    rendered = io.BytesIO()
    figure.savefig(rendered, format="png")
    plt.close(figure)
    # A 64-colour palette keeps the antialiased lines and points legible at about half the
    # bytes of the full-colour PNG (Dagster metadata should stay well under 80 KB).
    image = Image.open(rendered).convert("RGB").quantize(colors=PALETTE_COLOURS)
    buffer = io.BytesIO()
    image.save(buffer, format="png", optimize=True)
    return buffer.getvalue()
