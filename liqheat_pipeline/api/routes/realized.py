"""Observed (not modelled) liquidations of a window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from liqheat_pipeline.api.dependencies import Database, SymbolParam, parameter_errors
from liqheat_pipeline.api.models import ERROR_RESPONSES, RealizedLiquidations, utc
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.window import WindowError, WindowTooLargeError, checked_moment

# A realized-liquidations response spans at most this long (a year of hourly buckets).
MAX_REALIZED_SPAN = timedelta(days=366)

router = APIRouter(prefix="/liquidations")


def realized_window(
    start: Annotated[datetime, Query(description="Window start, ISO 8601 (no offset = UTC).")],
    end: Annotated[datetime, Query(description="Window end (exclusive), ISO 8601.")],
) -> tuple[datetime, datetime]:
    """[start, end) as naive UTC, ordered and at most MAX_REALIZED_SPAN long."""
    with parameter_errors():
        start, end = checked_moment("start", start), checked_moment("end", end)
        if end <= start:
            raise WindowError("end", f"{end.isoformat()} must be after start {start.isoformat()}")
        if end - start > MAX_REALIZED_SPAN:
            raise WindowTooLargeError(
                "end", f"the window spans more than {MAX_REALIZED_SPAN.days} days; ask in parts"
            )
    return start, end


@router.get("/realized", response_model=RealizedLiquidations, responses=ERROR_RESPONSES)
def realized_liquidations(
    symbol: SymbolParam,
    window: Annotated[tuple[datetime, datetime], Depends(realized_window)],
    db: Database,
) -> dict[str, Any]:
    """Observed liquidations (not modelled) of buckets starting in [start, end), with the
    source and scope of each: they may cover more than the symbol's Binance contract."""
    start, end = window
    name = symbol.upper()
    rows = queries.realized_buckets(db.cursor, name, start, end)
    if rows.empty:
        known = sorted({*queries.known_symbols(db.cursor), *queries.observed_symbols(db.cursor)})
        if name not in known:
            raise HTTPException(
                404,
                f"symbol: {symbol!r} has neither model output nor observed liquidations "
                f"(known: {', '.join(known) or 'none yet'})",
            )
    return {
        "symbol": name,
        "start": utc(start),
        "end": utc(end),
        "scopes": list(dict.fromkeys(rows["scope"])),
        "long_usd_total": float(rows["long_usd"].sum()),
        "short_usd_total": float(rows["short_usd"].sum()),
        "data": [
            {**row, "bucket_start": utc(row["bucket_start"].to_pydatetime())}
            for row in rows.to_dict("records")
        ],
    }
