"""The raw tables filled from the archive: which dataset feeds which contract table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from liqheat_pipeline.lib.archive.layout import (
    KLINES,
    MARK_PRICE_KLINES,
    METRICS,
    interval_duration,
)
from liqheat_pipeline.lib.archive.readers import (
    KLINE_FRAME_COLUMNS,
    METRICS_FRAME_COLUMNS,
    METRICS_INTERVAL,
)
from liqheat_pipeline.lib.warehouse.schema import TABLES, Table

CANDLE_INTERVAL = "5m"


@dataclass(frozen=True)
class Feed:
    """One contract table filled from one archive dataset."""

    table: str
    dataset: str
    columns: tuple[str, ...]
    step: timedelta
    description: str

    @property
    def schema(self) -> Table:
        return TABLES[self.table]

    @property
    def time_column(self) -> str:
        return self.schema.time_column

    @property
    def owns_end(self) -> bool:
        """Partition D owns (D, D+1] (open interest: what metrics file D holds)."""
        return self.schema.owns_end

    @property
    def judged_columns(self) -> tuple[str, ...]:
        """The columns a day's first row is compared on with the row before it."""
        return ("open_interest", "open_interest_value") if self.dataset == METRICS else ("close",)


CANDLES = Feed(
    table="candles",
    dataset=KLINES,
    columns=KLINE_FRAME_COLUMNS,
    step=interval_duration(CANDLE_INTERVAL),
    description="Last-price 5-minute candles from the archive's daily klines files.",
)
OPEN_INTEREST = Feed(
    table="open_interest",
    dataset=METRICS,
    columns=METRICS_FRAME_COLUMNS,
    step=METRICS_INTERVAL,
    description=(
        "Open-interest snapshots (base units and USDT) from the archive's daily metrics files, "
        "each at its snapshot instant; partition D holds (D 00:00, D+1 00:00]."
    ),
)
MARK_PRICE_CANDLES = Feed(
    table="mark_price_candles",
    dataset=MARK_PRICE_KLINES,
    columns=("open_time", "open", "high", "low", "close"),
    step=interval_duration(CANDLE_INTERVAL),
    description="Mark-price 5-minute candles (what Binance liquidates on) from markPriceKlines.",
)


def symbol_feeds(with_mark_price: bool) -> tuple[Feed, ...]:
    """The feeds of one symbol; mark-price candles only where the mirror has that folder."""
    return (
        (CANDLES, OPEN_INTEREST, MARK_PRICE_CANDLES)
        if with_mark_price
        else (CANDLES, OPEN_INTEREST)
    )
