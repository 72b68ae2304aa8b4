"""Response models of the HTTP API (they define its OpenAPI schema)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter
from typing_extensions import TypedDict


class ErrorResponse(BaseModel):
    detail: str = Field(description="What is wrong, naming the offending parameter.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Window too large for one response."},
    404: {"model": ErrorResponse, "description": "Unknown symbol or no snapshot at that time."},
    503: {"model": ErrorResponse, "description": "Database absent, not built, or being written."},
}

# Routes answering HTML still answer errors in JSON; say so explicitly (FastAPI would otherwise
# document the error bodies under the route's own media type).
JSON_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": response["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    for status, response in ERROR_RESPONSES.items()
    if status in (404, 503)
}


class Health(BaseModel):
    status: str = Field(description="'ok' when the DuckDB file is readable.")
    database: str = Field(description="File name of the DuckDB file (not its directory).")
    symbols: list[str] = Field(description="Symbols with model output.")


# The time series can carry tens of thousands of levels: DuckDB writes its `data` array as JSON
# (queries.timeseries_body) and only `meta` goes through pydantic (``META_ADAPTER``). TypedDicts
# describe that JSON for the OpenAPI schema.


class HeatmapLevel(TypedDict):
    price: Annotated[float, Field(description="Lower edge of the price bin (USDT).")]
    long_density: Annotated[
        float,
        Field(
            description="USD of long levels active in [price, price + bin) at the interval's end."
        ),
    ]
    short_density: Annotated[
        float,
        Field(
            description="USD of short levels active in [price, price + bin) at the interval's end."
        ),
    ]


class HeatmapPoint(TypedDict):
    timestamp: Annotated[AwareDatetime, Field(description="Start of the interval (UTC).")]
    levels: Annotated[list[HeatmapLevel], Field(description="Bins with active levels, by price.")]
    consumed_long: Annotated[
        float, Field(description="USD of long levels liquidated within the interval.")
    ]
    consumed_short: Annotated[
        float, Field(description="USD of short levels liquidated within the interval.")
    ]


class PriceRange(TypedDict):
    min: Annotated[float | None, Field(description="Lowest bin edge returned (null when none).")]
    max: Annotated[float | None, Field(description="Highest bin edge returned (null when none).")]


class Coverage(TypedDict):
    long: Annotated[
        float | None,
        Field(description="Active long USD of the model / open-interest USD (null if unknown)."),
    ]
    short: Annotated[float | None, Field(description="The same for short levels.")]
    total: Annotated[
        float | None,
        Field(description="Mean of the two sides (open interest is as long as it is short)."),
    ]


class Skill(TypedDict):
    window_start: AwareDatetime
    window_end: Annotated[AwareDatetime, Field(description="Exclusive end of the window.")]
    bucket_minutes: Annotated[int, Field(description="Bucket length of the scored series.")]
    n_buckets: Annotated[int, Field(description="Buckets scored.")]
    config_hash: Annotated[str | None, Field(description="Model configuration scored.")]
    computed_at: AwareDatetime
    values: Annotated[
        dict[str, dict[str, dict[str, float | None]]],
        Field(
            description="side (long/short/total) -> predictor (model, baseline_range, "
            "baseline_return) -> metric (spearman, ...) -> value (null when undefined)."
        ),
    ]


class HeatmapMeta(TypedDict):
    symbol: str
    start_time: Annotated[
        AwareDatetime, Field(description="Window start, widened to whole intervals.")
    ]
    end_time: Annotated[
        AwareDatetime, Field(description="Window end (exclusive), widened likewise.")
    ]
    interval: str
    price_bin_size: float
    leverage: Annotated[int | None, Field(description="Leverage tier filter, null for all tiers.")]
    total_snapshots: Annotated[int, Field(description="Number of intervals with model output.")]
    price_range: PriceRange
    active_long_usd_at_end: Annotated[
        float, Field(description="Active long USD at the last interval.")
    ]
    active_short_usd_at_end: Annotated[
        float, Field(description="Active short USD at the last interval.")
    ]
    consumed_usd_total: Annotated[
        float, Field(description="USD liquidated (both sides) in the window.")
    ]
    coverage: Annotated[
        Coverage | None,
        Field(
            description="Share of open interest the modelled levels (all tiers) cover at the "
            "last interval returned; null when unknown."
        ),
    ]
    skill: Annotated[
        Skill | None,
        Field(
            description="The symbol's latest model_skill window (model vs observed "
            "liquidations); null when none."
        ),
    ]
    synthetic: Annotated[
        bool,
        Field(description="True for the synthetic demo markets (DEMOUSDT, DEMO2USDT, …)."),
    ]
    config_hash: str | None
    assumptions: Annotated[
        dict[str, Any], Field(description="Model configuration of the latest run.")
    ]


class HeatmapTimeseries(TypedDict):
    data: list[HeatmapPoint]
    meta: HeatmapMeta


META_ADAPTER = TypeAdapter(HeatmapMeta)


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


class RealizedBucket(BaseModel):
    bucket_start: AwareDatetime = Field(description="Start of the bucket (UTC).")
    bucket_minutes: int
    long_usd: float = Field(description="Observed USD of long positions liquidated.")
    short_usd: float = Field(description="Observed USD of short positions liquidated.")
    source: str = Field(description="Where the figures come from (file).")
    scope: str = Field(description="What the figures cover (exchanges, contracts).")


class RealizedLiquidations(BaseModel):
    symbol: str
    start: AwareDatetime
    end: AwareDatetime = Field(description="Exclusive end.")
    scopes: list[str] = Field(description="Distinct scopes of the buckets returned.")
    long_usd_total: float
    short_usd_total: float
    data: list[RealizedBucket] = Field(
        description="Observed (not modelled) buckets starting in [start, end), by time; a "
        "bucket the source lacks is absent, never 0."
    )


def utc(moment: datetime) -> datetime:
    """Mark a naive UTC datetime as UTC so the JSON carries an explicit offset."""
    return moment.replace(tzinfo=UTC)
