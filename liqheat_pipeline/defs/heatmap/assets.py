"""The heatmap page asset: per symbol and UTC day, an interactive HTML page and a PNG preview.

Partition D renders the history up to D+1 00:00 (at most 30 days back) into
``<db dir>/heatmaps/<SYMBOL>/<D>.html``; ``latest.html`` is a copy of the newest day's page.
"""

import base64
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.history import HeatmapHistory, day_end, load_history
from liqheat_pipeline.lib.heatmap.labels import is_synthetic
from liqheat_pipeline.lib.heatmap.page import render_page
from liqheat_pipeline.lib.heatmap.preview import render_preview
from liqheat_pipeline.partitions import daily_partitions
from liqheat_pipeline.settings import load_settings

LATEST_PAGE = "latest.html"


def page_directory(db_path: str | Path, symbol: str) -> Path:
    return Path(db_path).parent / "heatmaps" / symbol


def build_heatmap_page(symbol: str, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    prefix = symbol.lower()

    @dg.asset(
        key=[prefix, "heatmap_page"],
        group_name=prefix,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[
            dg.AssetKey([prefix, "heatmap_snapshots"]),
            dg.AssetKey([prefix, "candle_ledger"]),
            dg.AssetKey([prefix, "candles"]),
        ],
        kinds={"html"},
        description=(
            f"Interactive liquidation heatmap page of {symbol} (self-contained HTML, up to 30 "
            "days before the end of the day) with a PNG preview in the metadata."
        ),
    )
    def heatmap_page(
        context: dg.AssetExecutionContext, database: LiqheatDatabase
    ) -> dg.MaterializeResult:
        directory = page_directory(database.path, symbol)
        directory.mkdir(parents=True, exist_ok=True)
        days = [date.fromisoformat(key) for key in context.partition_keys]
        history = None
        for day in days:
            history = _load_day(database, symbol, day)
            path = directory / f"{day.isoformat()}.html"
            _write_atomically(path, render_page(history).encode("utf-8"))
            context.log.info(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
        latest = _refresh_latest(directory)
        return dg.MaterializeResult(metadata=_metadata(history, directory, days, latest))

    return heatmap_page


def _load_day(database: LiqheatDatabase, symbol: str, day: date) -> HeatmapHistory:
    end = day_end(day)
    start = end - timedelta(days=1)
    with database.read() as conn:
        info = queries.symbol_info(conn, symbol)
        last = (
            None if info is None else queries.snapshot_at(conn, symbol, end - timedelta.resolution)
        )
        if info is None or last is None or last < start:
            raise dg.Failure(
                description=f"{symbol} has no heatmap snapshots on {day}: materialize "
                f"{symbol.lower()}/heatmap_snapshots for {day} first"
            )
        return load_history(conn, info, end)


def _write_atomically(path: Path, content: bytes) -> None:
    """Replace ``path`` in one step, so a reader never sees half a page."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    partial.replace(path)


def _refresh_latest(directory: Path) -> Path:
    """Point ``latest.html`` at the newest day's page (a backfill of old days leaves it alone)."""
    newest = max(directory.glob("????-??-??.html"))
    latest = directory / LATEST_PAGE
    partial = latest.with_name(LATEST_PAGE + ".partial")
    shutil.copyfile(newest, partial)
    partial.replace(latest)
    return latest


def _metadata(
    history: HeatmapHistory, directory: Path, days: list[date], latest: Path
) -> dict[str, dg.MetadataValue]:
    last_page = directory / f"{days[-1].isoformat()}.html"
    png = base64.b64encode(render_preview(history)).decode("ascii")
    return {
        "preview": dg.MetadataValue.md(
            f"![{history.symbol} heatmap up to {history.end:%Y-%m-%d}](data:image/png;base64,{png})"
        ),
        "page": dg.MetadataValue.path(str(last_page)),
        "latest_page": dg.MetadataValue.path(str(latest)),
        "pages_written": dg.MetadataValue.int(len(days)),
        "page_megabytes": dg.MetadataValue.float(round(last_page.stat().st_size / 1e6, 2)),
        "price_bin_size": dg.MetadataValue.float(history.bins.size),
        "history_start": dg.MetadataValue.text(history.start.isoformat()),
        "synthetic": dg.MetadataValue.bool(is_synthetic(history.symbol)),
    }


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    partitions = daily_partitions(settings)
    return dg.Definitions(
        assets=[build_heatmap_page(symbol, partitions) for symbol in settings.symbols]
    )
