"""FastAPI application: read-only endpoints over the DuckDB file of the SQL contract."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
import pandas as pd
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from liqheat_pipeline.api.database import (
    RETRY_AFTER_SECONDS,
    DatabaseReader,
    DatabaseUnavailableError,
)
from liqheat_pipeline.api.models import (
    META_ADAPTER,
    ErrorResponse,
    Health,
    HeatmapTimeseries,
    LiquidationMap,
    RealizedLiquidations,
    utc,
)
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.history import day_end, load_history
from liqheat_pipeline.lib.heatmap.labels import is_synthetic
from liqheat_pipeline.lib.heatmap.liquidation_map import liquidated_if_reached
from liqheat_pipeline.lib.heatmap.page import render_page
from liqheat_pipeline.lib.heatmap.window import (
    INTERVAL_MINUTES,
    WindowError,
    WindowTooLargeError,
    align_window,
    checked_moment,
)

# A response carries at most this many intervals (7 days of 5-minute intervals).
MAX_INTERVALS = 2016
# A realized-liquidations response spans at most this long (a year of hourly buckets).
MAX_REALIZED_SPAN = timedelta(days=366)
# Bins may merge at most this many stored buckets (keeps the SQL's integer maths small).
MAX_BIN_MULTIPLE = 100_000
SYMBOL_PATTERN = r"^[A-Za-z0-9]{2,20}$"

Interval = Literal["5m", "15m", "1h", "4h", "1d"]

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

SymbolParam = Annotated[
    str, Query(pattern=SYMBOL_PATTERN, description="Symbol, e.g. BTCUSDT (case-insensitive).")
]
BinParam = Annotated[
    float | None,
    Query(
        gt=0,
        allow_inf_nan=False,
        description="Price bin (USDT), a whole multiple of the stored bucket (default: bucket).",
    ),
]
LeverageParam = Annotated[
    int | None, Query(ge=1, le=125, description="Keep only this leverage tier (e.g. 25).")
]


def invalid_parameter(parameter: str, message: str) -> RequestValidationError:
    """A 422 in FastAPI's own validation-error shape, located at the query parameter."""
    return RequestValidationError(
        [{"loc": ("query", parameter), "msg": f"{parameter}: {message}", "type": "value_error"}]
    )


def create_app(db_path: str | Path) -> FastAPI:
    """The API over ``db_path``; each request reads the file read-only and lets it go."""
    db_path = Path(db_path)
    reader = DatabaseReader(db_path)
    app = FastAPI(
        title="liqheat",
        summary="Modelled liquidation heatmap of Binance USDⓈ-M perpetuals (read-only).",
        version="1",
    )

    @app.exception_handler(DatabaseUnavailableError)
    def database_unavailable(_: Request, error: DatabaseUnavailableError) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={"detail": str(error)},
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.get("/health", response_model=Health, responses={503: ERROR_RESPONSES[503]})
    def health() -> dict[str, Any]:
        """Whether the DuckDB file can be read, and which symbols it models."""
        with reader.connection() as conn:
            symbols = queries.known_symbols(conn)
        return {"status": "ok", "database": db_path.name, "symbols": symbols}

    @app.get(
        "/liquidations/heatmap-timeseries",
        response_model=HeatmapTimeseries,
        responses=ERROR_RESPONSES,
    )
    def heatmap_timeseries(
        symbol: SymbolParam,
        start_time: Annotated[
            datetime, Query(description="Window start, ISO 8601 (no offset = UTC).")
        ],
        end_time: Annotated[datetime, Query(description="Window end (exclusive), ISO 8601.")],
        interval: Annotated[
            Interval,
            Query(description="Display interval: the state at its end, consumed USD summed."),
        ] = "5m",
        price_bin_size: BinParam = None,
        leverage: LeverageParam = None,
    ) -> Response:
        """The heatmap of a window: per interval, active long/short USD per price bin at the
        interval's end and the USD liquidated (consumed) within it."""
        with _parameter_errors():
            window = align_window(
                start_time, end_time, INTERVAL_MINUTES[interval], max_slots=MAX_INTERVALS
            )
        with reader.connection() as conn:
            info = _symbol_info(conn, symbol)
            bins = _price_bins(info, price_bin_size)
            _check_tier(conn, info, leverage)
            body = queries.timeseries_body(conn, info.symbol, window, bins, leverage=leverage)
            coverage = queries.coverage_series(conn, info.symbol, window)
            skill = queries.skill_window(conn, info.symbol)
        meta = {
            "symbol": info.symbol,
            "start_time": utc(window.start),
            "end_time": utc(window.end),
            "interval": interval,
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

    @app.get(
        "/liquidations/map",
        response_model=LiquidationMap,
        responses={status: ERROR_RESPONSES[status] for status in (404, 503)},
    )
    def liquidation_map(
        symbol: SymbolParam,
        time: Annotated[
            datetime | None,
            Query(description="Use the last snapshot at or before this time (default: latest)."),
        ] = None,
        price_bin_size: BinParam = None,
        leverage: LeverageParam = None,
        price: Annotated[
            float | None,
            Query(
                gt=0, allow_inf_nan=False, description="Also report USD liquidated at this price."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Cumulative liquidation curves at a time: USD of long levels liquidated if price falls
        to each level, and of short levels if it rises to it."""
        with _parameter_errors():
            moment = None if time is None else checked_moment("time", time)
        with reader.connection() as conn:
            info = _symbol_info(conn, symbol)
            bins = _price_bins(info, price_bin_size)
            _check_tier(conn, info, leverage)
            latest = day_end(info.last_day) - timedelta.resolution
            snapshot = queries.snapshot_at(conn, info.symbol, moment or latest)
            if snapshot is None:
                raise HTTPException(
                    404,
                    f"time: no snapshot of {info.symbol} at or before {moment.isoformat()}; "
                    f"its history starts on {info.first_day.isoformat()}",
                )
            curve = queries.liquidation_map_rows(
                conn, info.symbol, snapshot, bins, leverage=leverage
            )
            close = queries.close_price(conn, info.symbol, snapshot)
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

    @app.get(
        "/liquidations/realized",
        response_model=RealizedLiquidations,
        responses=ERROR_RESPONSES,
    )
    def realized_liquidations(
        symbol: SymbolParam,
        start: Annotated[datetime, Query(description="Window start, ISO 8601 (no offset = UTC).")],
        end: Annotated[datetime, Query(description="Window end (exclusive), ISO 8601.")],
    ) -> dict[str, Any]:
        """Observed liquidations (not modelled) of buckets starting in [start, end), with the
        source and scope of each: they may cover more than the symbol's Binance contract."""
        with _parameter_errors():
            start, end = _realized_window(start, end)
        with reader.connection() as conn:
            name = symbol.upper()
            rows = queries.realized_buckets(conn, name, start, end)
            if rows.empty:
                known = sorted({*queries.known_symbols(conn), *queries.observed_symbols(conn)})
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

    @app.get(
        "/heatmap",
        response_class=HTMLResponse,
        responses=JSON_ERROR_RESPONSES,
    )
    def heatmap_page(
        symbol: SymbolParam,
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
        with reader.connection() as conn:
            info = _symbol_info(conn, symbol)
            first, last = info.first_day, info.last_day
            day = last if day is None else day
            if not first <= day <= last:
                raise HTTPException(
                    404,
                    f"date: {day.isoformat()} has no model output for {info.symbol} "
                    f"(days {first.isoformat()} to {last.isoformat()})",
                )
            history = load_history(conn, info, day_end(day))
        return HTMLResponse(render_page(history))

    @app.get("/", response_class=HTMLResponse, responses={503: JSON_ERROR_RESPONSES[503]})
    def index() -> HTMLResponse:
        """Links to each symbol's page and to the API documentation."""
        with reader.connection() as conn:
            symbols = queries.known_symbols(conn)
        links = "".join(
            f'<li><a href="/heatmap?symbol={symbol}">{symbol}</a>'
            f"{' (synthetic demo data)' if is_synthetic(symbol) else ''}</li>"
            for symbol in symbols
        )
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>liqheat</title>"
            f"<h1>liqheat</h1><ul>{links}</ul><p><a href=/docs>API documentation</a></p>"
        )

    return app


@contextmanager
def _parameter_errors() -> Iterator[None]:
    """Window problems become 4xx: too many intervals 400, anything else 422."""
    try:
        yield
    except WindowTooLargeError as error:
        raise HTTPException(400, str(error)) from None
    except WindowError as error:
        raise invalid_parameter(error.parameter, error.message) from None


def _realized_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """[start, end) as naive UTC, ordered and at most MAX_REALIZED_SPAN long."""
    start, end = checked_moment("start", start), checked_moment("end", end)
    if end <= start:
        raise WindowError("end", f"{end.isoformat()} must be after start {start.isoformat()}")
    if end - start > MAX_REALIZED_SPAN:
        raise WindowTooLargeError(
            "end", f"the window spans more than {MAX_REALIZED_SPAN.days} days; ask in parts"
        )
    return start, end


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


def _symbol_info(conn: duckdb.DuckDBPyConnection, symbol: str) -> queries.SymbolInfo:
    info = queries.symbol_info(conn, symbol.upper())
    if info is None:
        known = ", ".join(queries.known_symbols(conn)) or "none yet"
        raise HTTPException(404, f"symbol: {symbol!r} has no model output (known: {known})")
    return info


def _price_bins(info: queries.SymbolInfo, price_bin_size: float | None) -> queries.PriceBins:
    """Bins of ``price_bin_size``, which must be a whole multiple of the stored bucket."""
    if price_bin_size is None:
        return queries.PriceBins(info.bucket_size)
    ratio = price_bin_size / info.bucket_size
    multiple = round(ratio)
    if multiple < 1 or abs(ratio - multiple) > 1e-9 * multiple:
        raise invalid_parameter(
            "price_bin_size",
            f"{price_bin_size:g} is not a whole multiple of {info.symbol}'s stored bucket "
            f"{info.bucket_size:g}",
        )
    if multiple > MAX_BIN_MULTIPLE:
        raise invalid_parameter(
            "price_bin_size",
            f"{price_bin_size:g} merges more than {MAX_BIN_MULTIPLE} buckets of "
            f"{info.bucket_size:g}",
        )
    return queries.PriceBins(info.bucket_size, multiple)


def _check_tier(
    conn: duckdb.DuckDBPyConnection, info: queries.SymbolInfo, leverage: int | None
) -> None:
    if leverage is None:
        return
    tiers = queries.leverage_tiers(conn, info.symbol)
    if leverage not in tiers:
        raise invalid_parameter(
            "leverage",
            f"{leverage} is not a modelled leverage tier of {info.symbol} "
            f"(tiers: {', '.join(map(str, tiers)) or 'none'})",
        )


def _provenance(info: queries.SymbolInfo) -> dict[str, Any]:
    return {
        "synthetic": is_synthetic(info.symbol),
        "config_hash": info.config_hash,
        "assumptions": info.assumptions,
    }


def _records(frame: pd.DataFrame) -> list[dict[str, float]]:
    columns = ["price", "active_usd", "cumulative_usd", "reach_price"]
    return [dict(zip(columns, row, strict=True)) for row in frame[columns].to_numpy().tolist()]
