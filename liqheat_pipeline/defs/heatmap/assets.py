"""The heatmap page asset: per symbol and UTC day, an interactive HTML page and a PNG preview.

Partition D renders the history up to D+1 00:00 (at most a year back) into
``<db dir>/heatmaps/<SYMBOL>/<D>.html``, which loads Plotly from ``plotly.min.js`` in the same
folder (written once, shared by every day's page); ``latest.html`` is the newest day's page with
Plotly inlined, a single file that works anywhere offline. The PNG preview of the run's last day
is written beside the pages as ``latest.png`` and shown in that partition's metadata only.
After writing, only the newest ``LIQHEAT_PAGE_RETENTION_DAYS`` day pages are kept.
"""

import base64
import re
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from liqheat_pipeline.defs.progress import DayProgress
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib.atomic_file import write_bytes_atomically
from liqheat_pipeline.lib.days import day_end
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.history import HeatmapHistory, HistoryReader
from liqheat_pipeline.lib.heatmap.labels import is_synthetic
from liqheat_pipeline.lib.heatmap.page import (
    PLOTLY_FILE,
    plotly_bundle,
    render_page,
    self_contained,
)
from liqheat_pipeline.project import OWNERS, SymbolSpec
from liqheat_pipeline.settings import DEFAULT_PAGE_RETENTION_DAYS

LATEST_PAGE = "latest.html"
LATEST_PREVIEW = "latest.png"
_DAY_PAGE = re.compile(r"\d{4}-\d{2}-\d{2}\.html")


def page_directory(db_path: str | Path, symbol: str) -> Path:
    return Path(db_path).parent / "heatmaps" / symbol


def build_heatmap_page(
    spec: SymbolSpec,
    partitions: dg.PartitionsDefinition,
    *,
    retention_days: int = DEFAULT_PAGE_RETENTION_DAYS,
) -> dg.AssetsDefinition:
    """The heatmap page asset of ``spec``'s symbol, keeping the newest ``retention_days`` day
    pages."""
    symbol = spec.symbol

    @dg.asset(
        key=spec.key("heatmap_page"),
        group_name=spec.group,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[
            spec.key(name)
            # The observed-liquidations panel and the skill caption read the last two.
            for name in (
                "heatmap_snapshots",
                "candle_ledger",
                "candles",
                "realized_liquidations",
                "model_skill",
            )
        ],
        kinds={"html", "plotly"},
        owners=OWNERS,
        tags=spec.tags("page"),
        description=(
            f"Interactive liquidation heatmap page of {symbol} per day (HTML loading Plotly "
            "from plotly.min.js beside it, up to a year before the end of the day; the newest "
            f"{retention_days} day pages are kept), latest.html (the newest page, "
            "self-contained) and latest.png (a preview)."
        ),
    )
    def heatmap_page(
        context: dg.AssetExecutionContext, database: LiqheatDatabase
    ) -> dg.MaterializeResult:
        directory = page_directory(database.path, symbol)
        days = [date.fromisoformat(key) for key in context.partition_keys]
        with database.read() as conn:
            info = queries.symbol_info(conn, symbol)
            for day in days:  # all checked first: a missing day fails before any page changes
                _check_modelled(conn, symbol, info, day)
        directory.mkdir(parents=True, exist_ok=True)
        _write_plotly(directory)
        # One reader for the whole range (it reuses the cells that consecutive days' windows
        # share), reading each day through a connection of its own: the file is held while a
        # day's history is read, not while pages render, so parallel steps of other symbols
        # write in between.
        reader = HistoryReader(info)
        # The run's days before its newest `retention_days` would be deleted right after
        # being drawn (the run itself writes newer pages): they are not drawn at all.
        drawn, skipped = days[-retention_days:], days[:-retention_days]
        for day in skipped:
            context.add_asset_metadata(
                {"page": dg.MetadataValue.text(f"not kept (the newest {retention_days})")},
                partition_key=str(day),
            )
        progress = DayProgress(context.log, f"{symbol} pages", len(drawn), "cells")
        for day in drawn:
            with database.read() as conn:
                history = reader.history(conn, day_end(day))
            path = directory / f"{day.isoformat()}.html"
            write_bytes_atomically(path, render_page(history, inline_plotly=False).encode())
            progress.day_done(day, len(history.fine.cells) + len(history.coarse.cells))
            context.add_asset_metadata(_day_metadata(history, path), partition_key=str(day))
        latest = _refresh_latest(directory)
        removed = _remove_old_pages(directory, retention_days)
        context.log.info(
            f"{symbol}: removed {len(removed)} day page(s) beyond the newest {retention_days}"
            + (f" ({removed[0].stem} to {removed[-1].stem})" if removed else "")
        )
        context.add_asset_metadata(
            {
                **_preview_metadata(history, directory, latest),
                "pages_removed": dg.MetadataValue.int(len(removed)),
                "pages_kept": dg.MetadataValue.int(len(_day_pages(directory))),
            },
            partition_key=str(days[-1]),
        )
        return dg.MaterializeResult()

    return heatmap_page


def _check_modelled(
    conn: duckdb.DuckDBPyConnection, symbol: str, info: queries.SymbolInfo | None, day: date
) -> None:
    end = day_end(day)
    last = queries.snapshot_at(conn, symbol, end - timedelta.resolution)
    if info is None or last is None or last < end - timedelta(days=1):
        raise dg.Failure(
            description=f"{symbol} has no heatmap snapshots on {day}: materialize "
            f"{symbol.lower()}/heatmap_snapshots for {day} first"
        )


def _write_plotly(directory: Path) -> None:
    """The Plotly library the day pages load; rewritten only when missing or different (another
    plotly version), so a daily run does not rewrite 4.8 MB."""
    path = directory / PLOTLY_FILE
    bundle = plotly_bundle().encode("utf-8")
    if not path.exists() or path.read_bytes() != bundle:
        write_bytes_atomically(path, bundle)


def _day_pages(directory: Path) -> list[Path]:
    """The day pages (``<YYYY-MM-DD>.html``), oldest first."""
    return sorted(path for path in directory.iterdir() if _DAY_PAGE.fullmatch(path.name))


def _remove_old_pages(directory: Path, keep: int) -> list[Path]:
    """Delete the day pages older than the newest ``keep`` (latest.html, latest.png and
    plotly.min.js are no day pages); returns the deleted ones, oldest first."""
    removed = _day_pages(directory)[:-keep]
    for path in removed:
        path.unlink()
    return removed


def _refresh_latest(directory: Path) -> Path:
    """``latest.html``: the newest day's page with Plotly inlined (a backfill of old days leaves
    it on the newest day)."""
    newest = _day_pages(directory)[-1]
    latest = directory / LATEST_PAGE
    write_bytes_atomically(latest, self_contained(newest.read_text("utf-8")).encode("utf-8"))
    return latest


def _day_metadata(history: HeatmapHistory, page: Path) -> dict[str, dg.MetadataValue]:
    return {
        "page": dg.MetadataValue.path(str(page)),
        "page_megabytes": dg.MetadataValue.float(round(page.stat().st_size / 1e6, 2)),
        "price_bin_size": dg.MetadataValue.float(history.bins.size),
        "history_start": dg.MetadataValue.text(history.start.isoformat()),
        "synthetic": dg.MetadataValue.bool(is_synthetic(history.symbol)),
    }


def _preview_metadata(
    history: HeatmapHistory, directory: Path, latest: Path
) -> dict[str, dg.MetadataValue]:
    """The run's last day: the newest page and its PNG preview, written once as a file."""
    # Imported here: matplotlib costs ~0.4 s to import, which every process loading the
    # definitions (each run, the daemon, the webserver) would otherwise pay.
    from liqheat_pipeline.lib.heatmap.preview import render_preview

    png = render_preview(history)
    preview = directory / LATEST_PREVIEW
    write_bytes_atomically(preview, png)
    encoded = base64.b64encode(png).decode("ascii")
    return {
        "latest_page": dg.MetadataValue.path(str(latest)),
        "latest_preview": dg.MetadataValue.path(str(preview)),
        "preview": dg.MetadataValue.md(
            f"![{history.symbol} heatmap up to {history.end:%Y-%m-%d}]"
            f"(data:image/png;base64,{encoded})"
        ),
    }
