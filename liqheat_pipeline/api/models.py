"""Response models of the HTTP API (they define its OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field


class ErrorResponse(BaseModel):
    detail: str = Field(description="What is wrong, naming the offending parameter.")


class Health(BaseModel):
    status: str = Field(description="'ok' when the DuckDB file is readable.")
    database: str
    symbols: list[str] = Field(description="Symbols with model output.")


class HeatmapLevel(BaseModel):
    price: float = Field(description="Lower edge of the price bin (USDT).")
    long_density: float = Field(
        description="USD of long levels active in [price, price + bin) at the interval's end."
    )
    short_density: float = Field(
        description="USD of short levels active in [price, price + bin) at the interval's end."
    )


class HeatmapPoint(BaseModel):
    timestamp: AwareDatetime = Field(description="Start of the interval (UTC).")
    levels: list[HeatmapLevel] = Field(description="Bins with active levels, by price.")
    consumed_long: float = Field(description="USD of long levels liquidated within the interval.")
    consumed_short: float = Field(description="USD of short levels liquidated within the interval.")


class PriceRange(BaseModel):
    min: float | None = Field(description="Lowest bin edge returned (null when none).")
    max: float | None = Field(description="Highest bin edge returned (null when none).")


class HeatmapMeta(BaseModel):
    symbol: str
    start_time: AwareDatetime = Field(description="Window start, widened to whole intervals.")
    end_time: AwareDatetime = Field(description="Window end (exclusive), widened likewise.")
    interval: str
    price_bin_size: float
    leverage: int | None = Field(description="Leverage tier filter, null for all tiers.")
    total_snapshots: int = Field(description="Number of intervals with model output.")
    price_range: PriceRange
    active_long_usd_at_end: float = Field(description="Active long USD at the last interval.")
    active_short_usd_at_end: float = Field(description="Active short USD at the last interval.")
    consumed_usd_total: float = Field(description="USD liquidated (both sides) in the window.")
    synthetic: bool = Field(description="True for the synthetic demo market (DEMOUSDT).")
    config_hash: str | None
    assumptions: dict[str, Any] = Field(description="Model configuration of the latest run.")


class HeatmapTimeseries(BaseModel):
    data: list[HeatmapPoint]
    meta: HeatmapMeta


class MapPoint(BaseModel):
    price: float = Field(description="Lower edge of the price bin (USDT).")
    active_usd: float = Field(description="USD of levels active in this bin.")
    cumulative_usd: float = Field(description="USD liquidated if price reaches reach_price.")
    reach_price: float = Field(
        description="Longs: the bin's lower edge (a fall to it); shorts: its upper edge."
    )


class IfReached(BaseModel):
    price: float
    long_usd: float = Field(description="Long USD liquidated if price falls to `price`.")
    short_usd: float = Field(description="Short USD liquidated if price rises to `price`.")


class LiquidationMap(BaseModel):
    symbol: str
    timestamp: AwareDatetime = Field(description="Snapshot used: the last one at or before time.")
    price: float | None = Field(description="Close of the snapshot's candle.")
    price_bin_size: float
    leverage: int | None
    long: list[MapPoint] = Field(description="Long levels, by price ascending.")
    short: list[MapPoint] = Field(description="Short levels, by price ascending.")
    total_long_usd: float
    total_short_usd: float
    if_reached: IfReached | None = Field(description="Present when `price` was given.")
    synthetic: bool
    config_hash: str | None
    assumptions: dict[str, Any]


def utc(moment: datetime) -> datetime:
    """Mark a naive UTC datetime as UTC so the JSON carries an explicit offset."""
    return moment.replace(tzinfo=UTC)
