"""The modelled heatmap: its time series over a window and the liquidation map at a time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from liqheat_pipeline.api.dependencies import Database, ModelledLevels, parameter_errors
from liqheat_pipeline.api.models import (
    ERROR_RESPONSES,
    META_ADAPTER,
    HeatmapTimeseries,
    LiquidationMap,
    utc,
)
from liqheat_pipeline.lib.days import day_end
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.labels import is_synthetic
from liqheat_pipeline.lib.heatmap.liquidation_map import liquidated_if_reached
from liqheat_pipeline.lib.heatmap.window import (
    INTERVAL_MINUTES,
    IntervalWindow,
    align_window,
    checked_moment,
)

# A response carries at most this many intervals (7 days of 5-minute intervals).
MAX_INTERVALS = 2016

Interval = Literal["5m", "15m", "1h", "4h", "1d"]
INTERVAL_NAMES = {minutes: name for name, minutes in INTERVAL_MINUTES.items()}

router = APIRouter(prefix="/liquidations")


def display_window(
    start_time: Annotated[datetime, Query(description="Window start, ISO 8601 (no offset = UTC).")],
    end_time: Annotated[datetime, Query(description="Window end (exclusive), ISO 8601.")],
    interval: Annotated[
        Interval,
        Query(description="Display interval: the state at its end, consumed USD summed."),
    ] = "5m",
) -> IntervalWindow:
    """The requested window widened to whole intervals, at most MAX_INTERVALS of them."""
    with parameter_errors():
        return align_window(
            start_time, end_time, INTERVAL_MINUTES[interval], max_slots=MAX_INTERVALS
        )


def snapshot_time(
    time: Annotated[
        datetime | None,
        Query(description="Use the last snapshot at or before this time (default: latest)."),
    ] = None,
) -> datetime | None:
    """The requested time as naive UTC, None for the latest snapshot."""
    with parameter_errors():
        return None if time is None else checked_moment("time", time)


@router.get("/heatmap-timeseries", response_model=HeatmapTimeseries, responses=ERROR_RESPONSES)
def heatmap_timeseries(
    window: Annotated[IntervalWindow, Depends(display_window)],
    levels: ModelledLevels,
    db: Database,
) -> Response:
    """The heatmap of a window: per interval, active long/short USD per price bin at the
    interval's end and the USD liquidated (consumed) within it."""
    info, bins, leverage = levels.info, levels.bins, levels.leverage
    body = queries.timeseries_body(db.cursor, info.symbol, window, bins, leverage=leverage)
    coverage = queries.coverage_series(db.cursor, info.symbol, window)
    skill = queries.skill_window(db.cursor, info.symbol)
    meta = {
        "symbol": info.symbol,
        "start_time": utc(window.start),
        "end_time": utc(window.end),
        "interval": INTERVAL_NAMES[window.interval_minutes],
        "price_bin_size": bins.size,
        "leverage": leverage,
        "total_snapshots": body.points,
        "price_range": {"min": body.price_min, "max": body.price_max},
        "active_long_usd_at_end": body.long_at_end,
        "active_short_usd_at_end": body.short_at_end,
        "consumed_usd_total": body.consumed_total,
        "coverage": _coverage_at_end(coverage),
        "skill": _skill(skill),
        **_provenance(info),
    }
    content = b"".join(
        [b'{"data":', body.data_json.encode(), b',"meta":', META_ADAPTER.dump_json(meta), b"}"]
    )
    return Response(content, media_type="application/json")


@router.get(
    "/map",
    response_model=LiquidationMap,
    responses={status: ERROR_RESPONSES[status] for status in (404, 503)},
)
def liquidation_map(
    moment: Annotated[datetime | None, Depends(snapshot_time)],
    levels: ModelledLevels,
    db: Database,
    price: Annotated[
        float | None,
        Query(gt=0, allow_inf_nan=False, description="Also report USD liquidated at this price."),
    ] = None,
) -> dict[str, Any]:
    """Cumulative liquidation curves at a time: USD of long levels liquidated if price falls
    to each level, and of short levels if it rises to it."""
    info, bins, leverage = levels.info, levels.bins, levels.leverage
    latest = day_end(info.last_day) - timedelta.resolution
    snapshot = queries.snapshot_at(db.cursor, info.symbol, moment or latest)
    if snapshot is None:
        raise HTTPException(
            404,
            f"time: no snapshot of {info.symbol} at or before {moment.isoformat()}; "
            f"its history starts on {info.first_day.isoformat()}",
        )
    curve = queries.liquidation_map_rows(db.cursor, info.symbol, snapshot, bins, leverage=leverage)
    close = queries.close_price(db.cursor, info.symbol, snapshot)
    sides = {side: curve[curve["side"] == side] for side in ("long", "short")}
    if_reached = None
    if price is not None:
        if_reached = {
            "price": price,
            "long_usd": liquidated_if_reached(curve, price, "long"),
            "short_usd": liquidated_if_reached(curve, price, "short"),
        }
    return {
        "symbol": info.symbol,
        "timestamp": utc(snapshot),
        "price": close,
        "price_bin_size": bins.size,
        "leverage": leverage,
        "long": _records(sides["long"]),
        "short": _records(sides["short"]),
        "total_long_usd": float(sides["long"]["active_usd"].sum()),
        "total_short_usd": float(sides["short"]["active_usd"].sum()),
        "if_reached": if_reached,
        **_provenance(info),
    }


_SIDES = ("long", "short", "total")


def _coverage_at_end(coverage: pd.DataFrame) -> dict[str, float | None] | None:
    """Coverage of the last interval, None when no side of it is known."""
    if coverage.empty:
        return None
    last = coverage.iloc[-1]
    values = {side: None if pd.isna(last[side]) else float(last[side]) for side in _SIDES}
    return None if values["long"] is None and values["short"] is None else values


def _skill(skill: queries.SkillWindow | None) -> dict[str, Any] | None:
    if skill is None:
        return None
    return {
        "window_start": utc(skill.window_start),
        "window_end": utc(skill.window_end),
        "bucket_minutes": skill.bucket_minutes,
        "n_buckets": skill.n_buckets,
        "config_hash": skill.config_hash,
        "computed_at": utc(skill.computed_at),
        "values": skill.values,
    }


def _provenance(info: queries.SymbolInfo) -> dict[str, Any]:
    return {
        "synthetic": is_synthetic(info.symbol),
        "config_hash": info.config_hash,
        "assumptions": info.assumptions,
    }


def _records(frame: pd.DataFrame) -> list[dict[str, float]]:
    columns = ["price", "active_usd", "cumulative_usd", "reach_price"]
    return [dict(zip(columns, row, strict=True)) for row in frame[columns].to_numpy().tolist()]
