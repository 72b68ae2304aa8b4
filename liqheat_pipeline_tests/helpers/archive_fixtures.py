"""Small hand-made daily files in the Binance archive formats, for reader and ingest tests.

Headers and layouts are written out literally (from the archive's documentation), not taken from
the code under test.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
METRICS_HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,"
    "count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,"
    "count_long_short_ratio,sum_taker_long_short_vol_ratio"
)
FIVE_MINUTES = timedelta(minutes=5)


def midnight(day: date) -> datetime:
    """Naive UTC midnight of ``day``."""
    return datetime(day.year, day.month, day.day)


def epoch_ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def kline_rows(
    day: date,
    *,
    interval: timedelta = FIVE_MINUTES,
    slots: range | None = None,
    base_price: float = 100.0,
    microseconds: bool = False,
    full_volumes: bool = False,
) -> list[list[str]]:
    """Archive kline rows of ``day`` (all slots unless ``slots``), prices drifting upwards."""
    per_day = int(timedelta(days=1) / interval)
    unit = 1000 if microseconds else 1
    rows = []
    for slot in slots if slots is not None else range(per_day):
        opened = epoch_ms(midnight(day) + slot * interval) * unit
        price = base_price + slot * 0.25
        volume = 10 + slot % 7
        extra = (
            [f"{volume * price:.4f}", str(20 + slot), f"{volume / 2}", f"{volume * price / 2:.4f}"]
            if full_volumes
            else ["", "", "", ""]
        )
        rows.append(
            [
                str(opened),
                f"{price}",
                f"{price + 0.5}",
                f"{price - 0.25}",
                f"{price + 0.125}",
                f"{volume}",
                str(opened + int(interval.total_seconds() * 1000) * unit - 1),
                extra[0],
                extra[1],
                extra[2],
                extra[3],
                "0",
            ]
        )
    return rows


def metrics_rows(
    day: date,
    symbol: str = "BTCUSDT",
    *,
    later_labels: bool = False,
    slots: range | None = None,
) -> list[list[str]]:
    """Archive metrics rows of ``day``: snapshots at (D 00:00, D+1 00:00], slot k at k × 5 min.

    ``later_labels`` writes them the 2026-06-25+ way (label = snapshot − 5 min).
    """
    rows = []
    for slot in slots if slots is not None else range(1, 289):
        snapshot = midnight(day) + slot * FIVE_MINUTES
        label = snapshot - FIVE_MINUTES if later_labels else snapshot
        oi = 1000 + slot * 1.5
        rows.append([f"{label:%Y-%m-%d %H:%M:%S}", symbol, f"{oi}", f"{oi * 90.5}", "", "", "", ""])
    return rows


def csv_bytes(rows: list[list[str]], header: str | None) -> bytes:
    lines = ([header] if header else []) + [",".join(row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def write_file(path: Path, content: bytes) -> Path:
    """Write ``content`` (CSV bytes) as ``path``, encoded by its suffix (.csv, .csv.gz, .zip)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".zip"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(path.name.removesuffix(".zip") + ".csv", content)
        path.write_bytes(buffer.getvalue())
    elif path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(content))
    else:
        path.write_bytes(content)
    return path


def klines_path(root: Path, symbol: str, day: date, suffix: str = ".csv", dataset="klines"):
    name = f"{symbol}-5m-{day.isoformat()}{suffix}"
    return root / "futures" / "um" / "daily" / dataset / symbol / "5m" / name


def metrics_path(root: Path, symbol: str, day: date, suffix: str = ".csv") -> Path:
    name = f"{symbol}-metrics-{day.isoformat()}{suffix}"
    return root / "futures" / "um" / "daily" / "metrics" / symbol / name


def write_market(
    root: Path, symbol: str, days: list[date], *, mark_price: bool = False, suffix: str = ".csv"
) -> None:
    """A complete mirror of ``days`` for ``symbol``: klines, metrics and optionally mark price."""
    for index, day in enumerate(days):
        price = 100.0 + 80 * index
        write_file(
            klines_path(root, symbol, day, suffix),
            csv_bytes(kline_rows(day, base_price=price), KLINE_HEADER),
        )
        write_file(
            metrics_path(root, symbol, day, suffix),
            csv_bytes(metrics_rows(day, symbol), METRICS_HEADER),
        )
        if mark_price:
            write_file(
                klines_path(root, symbol, day, suffix, "markPriceKlines"),
                csv_bytes(kline_rows(day, base_price=price + 0.01), KLINE_HEADER),
            )
