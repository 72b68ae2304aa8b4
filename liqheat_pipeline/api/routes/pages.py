"""The server's own state and its HTML: health, the heatmap page, the index."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse

from liqheat_pipeline.api.dependencies import Database, ModelledSymbol
from liqheat_pipeline.api.models import ERROR_RESPONSES, JSON_ERROR_RESPONSES, Health
from liqheat_pipeline.lib.days import day_end
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.history import load_history
from liqheat_pipeline.lib.heatmap.labels import is_synthetic
from liqheat_pipeline.lib.heatmap.page import render_page

router = APIRouter()


@router.get("/health", response_model=Health, responses={503: ERROR_RESPONSES[503]})
def health(db: Database) -> dict[str, Any]:
    """Whether the DuckDB file can be read, and which symbols it models."""
    symbols = queries.known_symbols(db.cursor)
    return {"status": "ok", "database": db.file_name, "symbols": symbols}


@router.get("/heatmap", response_class=HTMLResponse, responses=JSON_ERROR_RESPONSES)
def heatmap_page(
    info: ModelledSymbol,
    db: Database,
    day: Annotated[
        date | None,
        Query(
            alias="date",
            description="Last UTC day shown (default: the latest day with model output).",
        ),
    ] = None,
) -> HTMLResponse:
    """The interactive heatmap page (self-contained HTML, up to 30 days before the end of
    ``date``), rendered from the database on request."""
    first, last = info.first_day, info.last_day
    day = last if day is None else day
    if not first <= day <= last:
        raise HTTPException(
            404,
            f"date: {day.isoformat()} has no model output for {info.symbol} "
            f"(days {first.isoformat()} to {last.isoformat()})",
        )
    history = load_history(db.cursor, info, day_end(day))
    db.release()  # rendering takes up to a few hundred ms; the file is not needed for it
    return HTMLResponse(render_page(history))


@router.get("/", response_class=HTMLResponse, responses={503: JSON_ERROR_RESPONSES[503]})
def index(db: Database) -> HTMLResponse:
    """Links to each symbol's page and to the API documentation."""
    symbols = queries.known_symbols(db.cursor)
    links = "".join(
        f'<li><a href="/heatmap?symbol={symbol}">{symbol}</a>'
        f"{' (synthetic demo data)' if is_synthetic(symbol) else ''}</li>"
        for symbol in symbols
    )
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>liqheat</title>"
        f"<h1>liqheat</h1><ul>{links}</ul><p><a href=/docs>API documentation</a></p>"
    )
