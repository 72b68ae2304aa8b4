"""What the routes share, as FastAPI dependencies: the database cursor, the symbol (its rule and
its model output), price bins and the leverage tier, and how parameter problems become 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Annotated

import duckdb
from fastapi import Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError

from liqheat_pipeline.api.database import DatabaseReader
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.window import WindowError, WindowTooLargeError
from liqheat_pipeline.lib.symbols import SYMBOL_PATTERN_ANY_CASE

# Bins may merge at most this many stored buckets (keeps the SQL's integer maths small).
MAX_BIN_MULTIPLE = 100_000

SymbolParam = Annotated[
    str,
    Query(pattern=SYMBOL_PATTERN_ANY_CASE, description="Symbol, e.g. BTCUSDT (case-insensitive)."),
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


class DatabaseSession:
    """The request's read-only cursor on the DuckDB file, attached on first use.

    FastAPI solves a dependency without parameters (this one) before it validates the route's
    parameters; attaching on first use means the file is attached only by code that queries it,
    which FastAPI calls only once its own parameters are valid.
    """

    def __init__(self, reader: DatabaseReader, stack: ExitStack) -> None:
        self._reader = reader
        self._stack = stack
        self._cursor: duckdb.DuckDBPyConnection | None = None

    @property
    def file_name(self) -> str:
        """The DuckDB file's name, without its directory (clients may see it)."""
        return self._reader.path.name

    @property
    def cursor(self) -> duckdb.DuckDBPyConnection:
        if self._cursor is None:
            self._cursor = self._stack.enter_context(self._reader.connection())
        return self._cursor

    def release(self) -> None:
        """Let the file go before the route's remaining work (a writer may be waiting)."""
        self._cursor = None
        self._stack.close()


def database_session(request: Request) -> Iterator[DatabaseSession]:
    """One session per request, released when the route returns (before the response is sent).

    A DuckDB error raised by the route passes through ``DatabaseReader.connection``, which
    turns it into ``DatabaseUnavailableError`` (a 503).
    """
    with ExitStack() as stack:
        yield DatabaseSession(request.app.state.reader, stack)


Database = Annotated[DatabaseSession, Depends(database_session, scope="function")]


def invalid_parameter(parameter: str, message: str) -> RequestValidationError:
    """A 422 in FastAPI's own validation-error shape, located at the query parameter."""
    return RequestValidationError(
        [{"loc": ("query", parameter), "msg": f"{parameter}: {message}", "type": "value_error"}]
    )


@contextmanager
def parameter_errors() -> Iterator[None]:
    """Window problems become 4xx: too many intervals 400, anything else 422."""
    try:
        yield
    except WindowTooLargeError as error:
        raise HTTPException(400, str(error)) from None
    except WindowError as error:
        raise invalid_parameter(error.parameter, error.message) from None


def modelled_symbol(db: Database, symbol: SymbolParam) -> queries.SymbolInfo:
    """The symbol's model output (any case accepted); 404 when it has none."""
    info = queries.symbol_info(db.cursor, symbol.upper())
    if info is None:
        known = ", ".join(queries.known_symbols(db.cursor)) or "none yet"
        raise HTTPException(404, f"symbol: {symbol!r} has no model output (known: {known})")
    return info


ModelledSymbol = Annotated[queries.SymbolInfo, Depends(modelled_symbol)]


@dataclass(frozen=True)
class LevelSelection:
    """Which modelled levels a heatmap request reads: the symbol's, binned, of one tier or all."""

    info: queries.SymbolInfo
    bins: queries.PriceBins
    leverage: int | None


def level_selection(
    db: Database,
    symbol: SymbolParam,
    price_bin_size: BinParam = None,
    leverage: LeverageParam = None,
) -> LevelSelection:
    """The symbol (404 without model output), its bins and tier (422 when not modelled).

    One dependency rather than three: FastAPI validates (and reports the errors of) a
    dependency's parameters once for each dependency that uses it.
    """
    info = modelled_symbol(db, symbol)
    return LevelSelection(info, _price_bins(info, price_bin_size), _tier(db, info, leverage))


ModelledLevels = Annotated[LevelSelection, Depends(level_selection)]


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


def _tier(db: DatabaseSession, info: queries.SymbolInfo, leverage: int | None) -> int | None:
    """The leverage tier to keep (None: all), which must be one the symbol's model has."""
    if leverage is None:
        return None
    tiers = queries.leverage_tiers(db.cursor, info.symbol)
    if leverage not in tiers:
        raise invalid_parameter(
            "leverage",
            f"{leverage} is not a modelled leverage tier of {info.symbol} "
            f"(tiers: {', '.join(map(str, tiers)) or 'none'})",
        )
    return leverage
