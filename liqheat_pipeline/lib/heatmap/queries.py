"""SQL over the contract tables: the heatmap at a display interval, the liquidation map at a time.

Every function takes an open DuckDB connection (read-only is enough) and returns plain pandas
frames or small records; nothing here keeps state between calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from liqheat_pipeline.lib.heatmap.sql import (
    CUMULATIVE_USD,
    INTERVAL_ENDS,
    PRICE_RANGE,
    STATE_TIME,
    interval_cells_sql,
)
from liqheat_pipeline.lib.heatmap.window import IntervalWindow
from liqheat_pipeline.lib.warehouse import bind
from liqheat_pipeline.lib.warehouse.schema import SNAPSHOT_SEGMENTS


@dataclass(frozen=True)
class SymbolInfo:
    """What the read side needs to know about one modelled symbol (from ``model_runs``)."""

    symbol: str
    first_day: date  # first modelled UTC day
    last_day: date  # last modelled UTC day
    bucket_size: float  # the stored price bucket of heatmap_snapshots
    config_hash: str | None  # of the latest day
    assumptions: dict[str, Any]  # of the latest day


@dataclass(frozen=True)
class PriceBins:
    """Display price bins: ``multiple`` stored buckets merged into one bin of ``size`` USDT,
    keeping the stored buckets in [``low``, ``high``) (None: unbounded)."""

    bucket_size: float
    multiple: int = 1
    low: float | None = None
    high: float | None = None

    @property
    def size(self) -> float:
        return round(self.bucket_size * self.multiple, 10)


def known_symbols(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Symbols that have model output."""
    rows = conn.execute("SELECT DISTINCT symbol FROM model_runs ORDER BY symbol").fetchall()
    return [row[0] for row in rows]


def symbol_info(conn: duckdb.DuckDBPyConnection, symbol: str) -> SymbolInfo | None:
    """The symbol's modelled days and latest model run; None if it was never modelled."""
    row = conn.execute(
        """
        SELECT min(day), max(day), arg_max(bucket_size, day), arg_max(config_hash, day),
               arg_max(assumptions, day)
        FROM model_runs WHERE symbol = ?
        """,
        [symbol],
    ).fetchone()
    if row[0] is None:
        return None
    first_day, last_day, bucket_size, config_hash, assumptions = row
    return SymbolInfo(
        symbol=symbol,
        first_day=first_day,
        last_day=last_day,
        bucket_size=float(bucket_size),
        config_hash=config_hash,
        assumptions=_parse_assumptions(assumptions),
    )


def _parse_assumptions(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def leverage_tiers(conn: duckdb.DuckDBPyConnection, symbol: str) -> list[int]:
    """Leverages present in ``heatmap_snapshots_by_leverage`` for the symbol."""
    rows = conn.execute(
        """
        SELECT DISTINCT leverage FROM heatmap_snapshots_by_leverage
        WHERE symbol = ? ORDER BY leverage
        """,
        [symbol],
    ).fetchall()
    return [int(row[0]) for row in rows]


# The cells of ``heatmap.sql.interval_cells_sql``, binned and pivoted to one row per (interval,
# [leverage,] bin). Price buckets are merged by integer index (round(bucket / size)), so float
# bucket edges never straddle a bin.
_BIN = "round((CAST(round(price_bucket / $bucket) AS BIGINT) // $multiple) * $bin, 10)"
_BINNED_CELLS = f"""
SELECT ts, {{tier}}{_BIN} AS price,
       sum(CASE WHEN side = 'long' THEN active_usd ELSE 0 END) AS long_active,
       sum(CASE WHEN side = 'short' THEN active_usd ELSE 0 END) AS short_active,
       sum(CASE WHEN side = 'long' THEN consumed_usd ELSE 0 END) AS long_consumed,
       sum(CASE WHEN side = 'short' THEN consumed_usd ELSE 0 END) AS short_consumed
FROM interval_cells
GROUP BY ALL
"""


def _snapshots(leverage: int | None, by_leverage: bool = False) -> str:
    split = leverage is not None or by_leverage
    return "heatmap_snapshots_by_leverage" if split else "heatmap_snapshots"


def _cell_filter(leverage: int | None) -> str:
    """One tier (if any) and the bins' price band."""
    tier = "" if leverage is None else "AND s.leverage = $leverage "
    return tier + PRICE_RANGE


def _cells_ctes(*, leverage: int | None, by_leverage: bool) -> str:
    """``interval_ends``, ``interval_cells`` and ``cells`` (the binned pivot) as CTEs."""
    interval_cells = interval_cells_sql(
        SNAPSHOT_SEGMENTS[_snapshots(leverage, by_leverage)],
        tier="s.leverage, " if by_leverage else "",
        where=_cell_filter(leverage),
    )
    cells = _BINNED_CELLS.format(tier="leverage, " if by_leverage else "")
    return f"{interval_cells},\ncells AS ({cells})"


def _parameters(
    symbol: str, bins: PriceBins, leverage: int | None, window: IntervalWindow | None = None
) -> dict[str, Any]:
    parameters = {
        "symbol": symbol,
        "leverage": leverage,
        "bucket": bins.bucket_size,
        "multiple": bins.multiple,
        "bin": bins.size,
        "price_low": bins.low,
        "price_high": bins.high,
    }
    if window is not None:
        parameters |= {
            "start": window.start,
            "end": window.end,
            "interval_minutes": window.interval_minutes,
        }
    return parameters


def heatmap_cells(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    window: IntervalWindow,
    bins: PriceBins,
    *,
    leverage: int | None = None,
    by_leverage: bool = False,
) -> pd.DataFrame:
    """The heatmap of a window at its display interval, one row per (interval, [leverage,] bin).

    Columns: ts (interval start), [leverage,] price (bin lower edge), long_active, short_active
    (USD active at the interval's end), long_consumed, short_consumed (USD consumed within it).
    ``leverage`` keeps one leverage tier; ``by_leverage`` splits every tier into its own rows.
    Bins with nothing active and nothing consumed are omitted.
    """
    order = "ts, leverage, price" if by_leverage else "ts, price"
    ctes = _cells_ctes(leverage=leverage, by_leverage=by_leverage)
    sql = f"WITH {ctes} SELECT * FROM cells ORDER BY {order}"
    return conn.execute(sql, bind(sql, _parameters(symbol, bins, leverage, window))).df()


@dataclass(frozen=True)
class TimeseriesBody:
    """The HTTP API's heatmap time series, serialized by DuckDB, and its summary figures."""

    data_json: (
        str  # JSON array: one {timestamp, levels, consumed_long, consumed_short} per interval
    )
    points: int  # intervals with model output
    price_min: float | None  # lowest bin with active levels
    price_max: float | None
    long_at_end: float  # active USD of the last interval
    short_at_end: float
    consumed_total: float  # USD consumed in the window, both sides


# Built in DuckDB down to the JSON text: shaping ~20,000 levels in Python would cost more than
# the query. Intervals without any active or consumed level still appear (empty levels) as long
# as the model produced a candle in them.
_TIMESERIES_SQL = """
WITH {cells},
points AS (
    SELECT s.ts,
           coalesce(
               list({{'price': c.price, 'long_density': c.long_active,
                      'short_density': c.short_active}} ORDER BY c.price)
                   FILTER (WHERE c.long_active > 0 OR c.short_active > 0),
               []) AS levels,
           coalesce(sum(c.long_consumed), 0) AS consumed_long,
           coalesce(sum(c.short_consumed), 0) AS consumed_short,
           coalesce(sum(c.long_active), 0) AS long_active,
           coalesce(sum(c.short_active), 0) AS short_active,
           min(c.price) FILTER (WHERE c.long_active > 0 OR c.short_active > 0) AS price_min,
           max(c.price) FILTER (WHERE c.long_active > 0 OR c.short_active > 0) AS price_max
    FROM interval_ends s LEFT JOIN cells c USING (ts)
    GROUP BY s.ts
)
SELECT coalesce(to_json(list({{'timestamp': strftime(ts, '%Y-%m-%dT%H:%M:%SZ'),
                              'levels': levels, 'consumed_long': consumed_long,
                              'consumed_short': consumed_short}} ORDER BY ts)), '[]'),
       count(*), min(price_min), max(price_max),
       coalesce(arg_max(long_active, ts), 0), coalesce(arg_max(short_active, ts), 0),
       coalesce(sum(consumed_long + consumed_short), 0)
FROM points
"""


def timeseries_body(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    window: IntervalWindow,
    bins: PriceBins,
    *,
    leverage: int | None = None,
) -> TimeseriesBody:
    """The heatmap cells of ``heatmap_cells`` grouped per interval, as the API's JSON array."""
    sql = _TIMESERIES_SQL.format(cells=_cells_ctes(leverage=leverage, by_leverage=False))
    row = conn.execute(sql, bind(sql, _parameters(symbol, bins, leverage, window))).fetchone()
    return TimeseriesBody(*row)


def snapshot_at(conn: duckdb.DuckDBPyConnection, symbol: str, moment: datetime) -> datetime | None:
    """The last snapshot time at or before ``moment`` (the state in force then), if any."""
    return conn.execute(STATE_TIME, {"symbol": symbol, "at": moment}).fetchone()[0]


def close_price(conn: duckdb.DuckDBPyConnection, symbol: str, open_time: datetime) -> float | None:
    """Close of the candle opened at ``open_time`` (the price a snapshot's state is taken at)."""
    row = conn.execute(
        "SELECT close FROM candles WHERE symbol = ? AND open_time = ?", [symbol, open_time]
    ).fetchone()
    return None if row is None else float(row[0])


def price_path(
    conn: duckdb.DuckDBPyConnection, symbol: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """Candles of [start, end): open_time, open, high, low, close."""
    return conn.execute(
        """
        SELECT open_time, open, high, low, close FROM candles
        WHERE symbol = ? AND open_time >= ? AND open_time < ? ORDER BY open_time
        """,
        [symbol, start, end],
    ).df()


# The cumulative curve of ``heatmap.sql.CUMULATIVE_USD`` over the display bins in ``bins`` (side,
# price_bucket = bin lower edge, active_usd > 0); ``reach_price`` is the edge whose reaching
# liquidates a bin's cumulative: a long bin's lower edge, a short bin's upper.
_MAP_CURVE = f"""
SELECT side, price_bucket AS price, active_usd, {CUMULATIVE_USD},
       CASE side WHEN 'long' THEN price_bucket ELSE round(price_bucket + $bin, 10)
       END AS reach_price
FROM bins
ORDER BY side, price
"""
# The bins of one snapshot: its stored buckets merged into display bins, tiers summed.
_MAP_SQL = f"""
WITH bins AS (
    SELECT side, {_BIN} AS price_bucket, sum(active_usd) AS active_usd
    FROM {{table}} s
    WHERE s.symbol = $symbol AND s.ts = $ts AND s.active_usd > 0 {{tier_filter}}
    GROUP BY ALL
)
{_MAP_CURVE}"""
# Display bins already read (a frame registered as `binned`), summed per side and bin.
_BINNED_MAP_SQL = f"""
WITH bins AS (
    SELECT side, price AS price_bucket, sum(active_usd) AS active_usd
    FROM binned WHERE active_usd > 0
    GROUP BY ALL
)
{_MAP_CURVE}"""


def liquidation_map_rows(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    ts: datetime,
    bins: PriceBins,
    *,
    leverage: int | None = None,
) -> pd.DataFrame:
    """The cumulative liquidation curve of the snapshot at ``ts``.

    Columns: side, price (bin lower edge), active_usd, cumulative_usd, reach_price (the price
    whose reaching liquidates ``cumulative_usd``).
    """
    sql = _MAP_SQL.format(table=_snapshots(leverage), tier_filter=_cell_filter(leverage))
    return conn.execute(sql, bind(sql, {**_parameters(symbol, bins, leverage), "ts": ts})).df()


def binned_liquidation_map(binned: pd.DataFrame, bin_size: float) -> pd.DataFrame:
    """The curve of ``liquidation_map_rows`` over display bins already read (columns side, price
    = bin lower edge, active_usd; rows of one side and bin are summed), by the same SQL in an
    in-memory DuckDB: for a snapshot whose cells are at hand, e.g. the preview's."""
    with duckdb.connect() as conn:
        conn.register("binned", binned)
        return conn.execute(_BINNED_MAP_SQL, {"bin": bin_size}).df()


def observed_symbols(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Symbols that have observed (realized) liquidations."""
    rows = conn.execute(
        "SELECT DISTINCT symbol FROM realized_liquidations ORDER BY symbol"
    ).fetchall()
    return [row[0] for row in rows]


def realized_buckets(
    conn: duckdb.DuckDBPyConnection, symbol: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """Observed liquidation buckets starting in [start, end): bucket_start, bucket_minutes,
    long_usd, short_usd, source, scope (a bucket the source lacks is absent)."""
    return conn.execute(
        """
        SELECT bucket_start, bucket_minutes, long_usd, short_usd, source, scope
        FROM realized_liquidations
        WHERE symbol = ? AND bucket_start >= ? AND bucket_start < ?
        ORDER BY bucket_start
        """,
        [symbol, start, end],
    ).df()


# Per interval, each side's coverage in the state at the interval's end (its last candle).
# Open interest has a long and a short side of equal size, so the whole market's coverage is the
# mean of the two sides'.
_COVERAGE_SQL = f"""
WITH {INTERVAL_ENDS}
SELECT i.ts, i.last_candle,
       any_value(l.coverage) FILTER (WHERE l.side = 'long') AS long,
       any_value(l.coverage) FILTER (WHERE l.side = 'short') AS short,
       (long + short) / 2 AS total
FROM interval_ends i JOIN candle_ledger l ON l.symbol = $symbol AND l.ts = i.last_candle
GROUP BY ALL
ORDER BY i.ts
"""


def coverage_series(
    conn: duckdb.DuckDBPyConnection, symbol: str, window: IntervalWindow
) -> pd.DataFrame:
    """Share of open interest the modelled levels account for, per interval of ``window`` with
    model output: ts (interval start), last_candle (the state's time), long, short, total
    (fractions; NaN where the ledger has no coverage, e.g. open interest missing)."""
    parameters = {
        "symbol": symbol,
        "start": window.start,
        "end": window.end,
        "interval_minutes": window.interval_minutes,
    }
    return conn.execute(_COVERAGE_SQL, bind(_COVERAGE_SQL, parameters)).df()


@dataclass(frozen=True)
class SkillWindow:
    """One ``model_skill`` window of a symbol: every side's predictors scored against the
    observed liquidations of [window_start, window_end)."""

    window_start: datetime
    window_end: datetime
    bucket_minutes: int
    n_buckets: int  # buckets scored (the largest over the window's rows)
    config_hash: str | None
    computed_at: datetime
    values: dict[str, dict[str, dict[str, float | None]]]  # side -> predictor -> metric -> value

    def value(self, side: str, predictor: str, metric: str) -> float | None:
        return self.values.get(side, {}).get(predictor, {}).get(metric)


_SKILL_SQL = """
WITH chosen AS (
    SELECT window_start, window_end, bucket_minutes FROM model_skill
    WHERE symbol = $symbol AND ($window_end IS NULL OR window_end = $window_end)
    ORDER BY window_end DESC, computed_at DESC, window_start, bucket_minutes
    LIMIT 1
)
SELECT m.window_start, m.window_end, m.bucket_minutes, m.side, m.predictor, m.metric,
       CASE WHEN isnan(m.value) THEN NULL ELSE m.value END AS value, m.n_buckets,
       m.config_hash, m.computed_at
FROM model_skill m JOIN chosen USING (window_start, window_end, bucket_minutes)
WHERE m.symbol = $symbol
ORDER BY m.side, m.predictor, m.metric
"""


def skill_window(
    conn: duckdb.DuckDBPyConnection, symbol: str, *, window_end: datetime | None = None
) -> SkillWindow | None:
    """The symbol's latest ``model_skill`` window (the one ending at ``window_end`` if given;
    of several, the latest computed); None if there is none. NaN values become None."""
    rows = conn.execute(_SKILL_SQL, {"symbol": symbol, "window_end": window_end}).fetchall()
    if not rows:
        return None
    values: dict[str, dict[str, dict[str, float | None]]] = {}
    for _, _, _, side, predictor, metric, value, *_ in rows:
        values.setdefault(side, {}).setdefault(predictor, {})[metric] = value
    first = rows[0]
    return SkillWindow(
        window_start=first[0],
        window_end=first[1],
        bucket_minutes=int(first[2]),
        n_buckets=max(int(row[7]) for row in rows),
        config_hash=first[8],
        computed_at=first[9],
        values=values,
    )
