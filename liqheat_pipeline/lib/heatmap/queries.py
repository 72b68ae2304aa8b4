"""SQL over the contract tables: the heatmap at a display interval, the liquidation map at a time.

Every function takes an open DuckDB connection (read-only is enough) and returns plain pandas
frames or small records; nothing here keeps state between calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from liqheat_pipeline.lib.heatmap.window import Window


@dataclass(frozen=True)
class SymbolInfo:
    """What the read side needs to know about one modelled symbol."""

    symbol: str
    first_ts: datetime  # first snapshot (candle open time) of the model history
    last_ts: datetime  # last snapshot
    bucket_size: float  # the stored price bucket of heatmap_snapshots
    config_hash: str | None
    assumptions: dict[str, Any]


@dataclass(frozen=True)
class PriceBins:
    """Display price bins: ``multiple`` stored buckets merged into one bin of ``size`` USDT."""

    bucket_size: float
    multiple: int = 1

    @property
    def size(self) -> float:
        return round(self.bucket_size * self.multiple, 10)


def known_symbols(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Symbols that have model output (a candle ledger)."""
    rows = conn.execute("SELECT DISTINCT symbol FROM candle_ledger ORDER BY symbol").fetchall()
    return [row[0] for row in rows]


def symbol_info(conn: duckdb.DuckDBPyConnection, symbol: str) -> SymbolInfo | None:
    """The symbol's model history bounds and its latest model run; None if never modelled."""
    first_ts, last_ts = conn.execute(
        "SELECT min(ts), max(ts) FROM candle_ledger WHERE symbol = ?", [symbol]
    ).fetchone()
    if first_ts is None:
        return None
    run = conn.execute(
        """
        SELECT bucket_size, config_hash, assumptions FROM model_runs
        WHERE symbol = ? ORDER BY day DESC LIMIT 1
        """,
        [symbol],
    ).fetchone()
    if run is None:
        return None
    bucket_size, config_hash, assumptions = run
    return SymbolInfo(
        symbol=symbol,
        first_ts=first_ts,
        last_ts=last_ts,
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


def interval_slots(conn: duckdb.DuckDBPyConnection, symbol: str, window: Window) -> pd.DataFrame:
    """Display intervals of the window that have model output: ts (interval start) and
    state_ts (its last candle, whose snapshot is the interval's state)."""
    return conn.execute(
        """
        SELECT time_bucket(to_minutes($minutes), ts) AS ts, max(ts) AS state_ts
        FROM candle_ledger WHERE symbol = $symbol AND ts >= $start AND ts < $end
        GROUP BY 1 ORDER BY 1
        """,
        _window_params(symbol, window),
    ).df()


# One pass over the window: the state of each display interval is the snapshot at its last
# candle (``state_ts``), the consumed USD is the sum over all its candles. Price buckets are
# merged by integer index (round(bucket / size)) so float bucket edges never straddle a bin.
_CELLS_SQL = """
WITH slots AS (
    SELECT time_bucket(to_minutes($minutes), ts) AS slot, max(ts) AS state_ts
    FROM candle_ledger
    WHERE symbol = $symbol AND ts >= $start AND ts < $end
    GROUP BY slot
),
cells AS (
    SELECT time_bucket(to_minutes($minutes), ts) AS slot, ts, {tier_column} price_bucket, side,
           active_usd, consumed_usd
    FROM {table}
    WHERE symbol = $symbol AND ts >= $start AND ts < $end {tier_filter}
)
SELECT c.slot AS ts, {tier_select}
       round(floor(round(c.price_bucket / $bucket) / $multiple) * $bin, 10) AS price,
       coalesce(sum(c.active_usd) FILTER (WHERE c.ts = s.state_ts AND c.side = 'long'), 0)
           AS long_active,
       coalesce(sum(c.active_usd) FILTER (WHERE c.ts = s.state_ts AND c.side = 'short'), 0)
           AS short_active,
       coalesce(sum(c.consumed_usd) FILTER (WHERE c.side = 'long'), 0) AS long_consumed,
       coalesce(sum(c.consumed_usd) FILTER (WHERE c.side = 'short'), 0) AS short_consumed
FROM cells c JOIN slots s USING (slot)
GROUP BY ALL
HAVING long_active > 0 OR short_active > 0 OR long_consumed > 0 OR short_consumed > 0
ORDER BY ts, {tier_order} price
"""


def heatmap_cells(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    window: Window,
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
    per_tier = leverage is not None or by_leverage
    sql = _CELLS_SQL.format(
        table="heatmap_snapshots_by_leverage" if per_tier else "heatmap_snapshots",
        tier_column="leverage," if by_leverage else "",
        tier_select="c.leverage," if by_leverage else "",
        tier_order="leverage," if by_leverage else "",
        tier_filter="AND leverage = $leverage" if leverage is not None else "",
    )
    params = {**_window_params(symbol, window), **_bin_params(bins)}
    if leverage is not None:
        params["leverage"] = leverage
    return conn.execute(sql, params).df()


def snapshot_at(conn: duckdb.DuckDBPyConnection, symbol: str, moment: datetime) -> datetime | None:
    """The last snapshot time at or before ``moment`` (the state in force then), if any."""
    row = conn.execute(
        "SELECT max(ts) FROM candle_ledger WHERE symbol = ? AND ts <= ?", [symbol, moment]
    ).fetchone()
    return row[0]


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


# "How much is liquidated if price reaches X": longs are liquidated by a fall, so a long bin's
# cumulative sums every long bin at or above it and is reached at the bin's lower edge; shorts
# by a rise, so a short bin sums every short bin at or below it, reached at its upper edge.
_MAP_SQL = """
WITH bins AS (
    SELECT side, round(floor(round(price_bucket / $bucket) / $multiple) * $bin, 10) AS price,
           sum(active_usd) AS active_usd
    FROM {table}
    WHERE symbol = $symbol AND ts = $ts AND active_usd > 0 {tier_filter}
    GROUP BY ALL
)
SELECT side, price, active_usd,
       CASE side
           WHEN 'long' THEN sum(active_usd) OVER (
               PARTITION BY side ORDER BY price DESC ROWS UNBOUNDED PRECEDING)
           ELSE sum(active_usd) OVER (
               PARTITION BY side ORDER BY price ROWS UNBOUNDED PRECEDING)
       END AS cumulative_usd,
       CASE side WHEN 'long' THEN price ELSE round(price + $bin, 10) END AS reach_price
FROM bins
ORDER BY side, price
"""


def liquidation_map_rows(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    ts: datetime,
    bins: PriceBins,
    *,
    leverage: int | None = None,
) -> pd.DataFrame:
    """The cumulative liquidation curve of the snapshot at ``ts`` (SQL twin of
    ``liquidation_map.cumulative_liquidation_map``).

    Columns: side, price (bin lower edge), active_usd, cumulative_usd, reach_price (the price
    whose reaching liquidates ``cumulative_usd``).
    """
    sql = _MAP_SQL.format(
        table="heatmap_snapshots" if leverage is None else "heatmap_snapshots_by_leverage",
        tier_filter="" if leverage is None else "AND leverage = $leverage",
    )
    params: dict[str, Any] = {"symbol": symbol, "ts": ts, **_bin_params(bins)}
    if leverage is not None:
        params["leverage"] = leverage
    return conn.execute(sql, params).df()


def _window_params(symbol: str, window: Window) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "start": window.start,
        "end": window.end,
        "minutes": window.interval_minutes,
    }


def _bin_params(bins: PriceBins) -> dict[str, Any]:
    return {"bucket": bins.bucket_size, "multiple": bins.multiple, "bin": bins.size}
