"""What a local archive mirror holds: its symbols and the days it has files for."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from liqheat_pipeline.lib.archive.layout import (
    KLINES,
    UM_DAILY,
    dataset_directory,
    parse_daily_file_name,
)
from liqheat_pipeline.lib.symbols import is_symbol


def mirrored_symbols(root: str | Path, interval: str = "5m") -> tuple[str, ...]:
    """The symbols with a folder of daily candle files, in name order."""
    klines = Path(root) / UM_DAILY / KLINES
    if not klines.is_dir():
        return ()
    return tuple(
        sorted(
            folder.name
            for folder in klines.iterdir()
            if is_symbol(folder.name) and (folder / interval).is_dir()
        )
    )


def last_mirrored_day(
    root: str | Path, symbols: tuple[str, ...], interval: str = "5m"
) -> date | None:
    """The newest day any of ``symbols`` has a daily candle file for (None: no files)."""
    days = []
    for symbol in symbols:
        folder = Path(root) / dataset_directory(KLINES, symbol, interval)
        if folder.is_dir():
            parsed = (parse_daily_file_name(path.name) for path in folder.iterdir())
            days.extend(name[2] for name in parsed if name and name[0] == symbol)
    return max(days, default=None)
