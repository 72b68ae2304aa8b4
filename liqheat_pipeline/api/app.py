"""FastAPI application: read-only endpoints over the DuckDB file of the SQL contract."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from liqheat_pipeline.api.database import (
    RETRY_AFTER_SECONDS,
    DatabaseReader,
    DatabaseUnavailableError,
)
from liqheat_pipeline.api.routes import docs, heatmap, pages, realized


def create_app(db_path: str | Path) -> FastAPI:
    """The API over ``db_path``; each request reads the file read-only and lets it go."""
    app = FastAPI(
        title="liqheat",
        summary="Modelled liquidation heatmap of Binance USDⓈ-M perpetuals (read-only).",
        version="1",
        docs_url=None,  # served by routes.docs, without a CDN
        redoc_url=None,
    )
    app.state.reader = DatabaseReader(Path(db_path))
    app.add_exception_handler(DatabaseUnavailableError, _database_unavailable)
    app.include_router(heatmap.router)
    app.include_router(realized.router)
    app.include_router(pages.router)
    docs.add_docs(app)
    return app


def _database_unavailable(_: Request, error: DatabaseUnavailableError) -> JSONResponse:
    return JSONResponse(
        status_code=503,
        content={"detail": str(error)},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
