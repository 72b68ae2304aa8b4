"""The README's example queries over the SQL contract, reusable by the HTTP API and benchmarks.

Every query takes DuckDB named parameters (``$symbol``, ``$start`` ...); timestamps are naive
UTC. Run them with ``warehouse.execute``, which binds only the parameters a query mentions.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from liqheat_pipeline.lib.warehouse import execute

# The heatmap cells of [$start, $end) at a coarser interval of $interval_minutes, in the relation
# `interval_cells` (ts = interval start, on the grid anchored at $start): per interval, the active
# notional of the state at the interval's end (its last candle) and the notional consumed
# (modelled liquidations) within it, one row per row of the snapshot views. Read from the
# segments the views expand (warehouse/schema.py, `_snapshot_view`), with the views' own
# product `weight × closure_scale`, so the rows are the views' bit for bit: the interval-end
# rows join each interval's last candle to the segments of its day (a segment never spans two
# days) that cover it, and consumptions are booked in a segment's first candle. Through the
# views, a year at daily intervals would expand every 5-minute cell of the year first.
# `{segments}` is snapshot_segments or its by-leverage split, `{tier}` extra key columns (e.g.
# "s.leverage, "), `{where}` extra conditions on the segment `s`. Its first CTE,
# `interval_ends` (ts = interval start, last_candle = the interval's last modelled candle), is
# ``INTERVAL_ENDS``.
INTERVAL_ENDS = """interval_ends AS (
    SELECT time_bucket(to_minutes($interval_minutes), ts, $start) AS ts, max(ts) AS last_candle
    FROM candle_ledger
    WHERE symbol = $symbol AND ts >= $start AND ts < $end AND side = 'long'
    GROUP BY 1
)"""
_INTERVAL_CELLS = (
    INTERVAL_ENDS
    + """,
interval_cells AS (
    SELECT i.ts, {tier}s.price_bucket, s.side, s.weight * l.closure_scale AS active_usd,
           0.0 AS consumed_usd
    FROM interval_ends i
    JOIN candle_ledger l ON l.symbol = $symbol AND l.ts = i.last_candle
    JOIN {segments} s ON s.symbol = $symbol AND s.side = l.side
        AND CAST(s.first_ts AS DATE) = CAST(i.last_candle AS DATE)
        AND s.first_ts <= i.last_candle AND s.last_ts >= i.last_candle
    WHERE s.weight * l.closure_scale > 0 {where}
    UNION ALL
    SELECT time_bucket(to_minutes($interval_minutes), s.first_ts, $start), {tier}s.price_bucket,
           s.side, 0.0, s.consumed_usd
    FROM {segments} s
    JOIN candle_ledger l ON l.symbol = s.symbol AND l.side = s.side AND l.ts = s.first_ts
    WHERE s.symbol = $symbol AND s.first_ts >= $start AND s.first_ts < $end
      AND s.consumed_usd > 0 {where}
)"""
)


def interval_cells_sql(
    segments: str = "snapshot_segments", *, tier: str = "", where: str = ""
) -> str:
    """The CTEs ``interval_ends`` (ts, last_candle) and ``interval_cells`` (ts, [tier,]
    price_bucket, side, active_usd, consumed_usd) of the heatmap at $interval_minutes."""
    return _INTERVAL_CELLS.format(segments=segments, tier=tier, where=where)


# Heatmap of [$start, $end) at a coarser interval of $interval_minutes: the interval cells summed
# per price bucket and side. Price buckets may be merged into $price_step-wide buckets (a
# multiple of the symbol's bucket size; NULL keeps them) and limited to [$price_low,
# $price_high) (NULL = unbounded). Cells with nothing active and nothing consumed are left out.
PRICE_RANGE = (
    "AND ($price_low IS NULL OR s.price_bucket >= $price_low)"
    " AND ($price_high IS NULL OR s.price_bucket < $price_high)"
)
HEATMAP = f"""
WITH {interval_cells_sql(where=PRICE_RANGE)}
SELECT ts,
       CASE WHEN $price_step IS NULL THEN price_bucket
            ELSE round(floor(price_bucket / $price_step + 1e-9) * $price_step, 10)
       END AS price_bucket,
       side, sum(active_usd) AS active_usd, sum(consumed_usd) AS consumed_usd
FROM interval_cells
GROUP BY ALL
ORDER BY ts, price_bucket, side
"""

# The time of the state in force at $at: the last candle at or before it.
STATE_TIME = "SELECT max(ts) AS ts FROM candle_ledger WHERE symbol = $symbol AND ts <= $at"

# The $limit largest active clusters (bucket and side) in the state at time $at (the last
# candle at or before it), with that candle's close for reference.
LARGEST_CLUSTERS = f"""
WITH moment AS ({STATE_TIME})
SELECT s.ts, s.price_bucket, s.side, s.active_usd, c.close AS reference_price
FROM heatmap_snapshots s
JOIN moment m ON s.ts = m.ts
LEFT JOIN candles c ON c.symbol = s.symbol AND c.open_time = s.ts
WHERE s.symbol = $symbol AND s.active_usd > 0
ORDER BY s.active_usd DESC, s.price_bucket
LIMIT $limit
"""

# "USD liquidated if price reaches X", over rows (side, price_bucket, active_usd) of one state:
# longs accumulate from the highest bucket down (a fall to a bucket's lower edge liquidates every
# long at or above it), shorts from the lowest bucket up (a rise to a bucket's upper edge
# liquidates every short at or below it).
CUMULATIVE_USD = """CASE side
           WHEN 'long' THEN sum(active_usd) OVER (
               PARTITION BY side ORDER BY price_bucket DESC ROWS UNBOUNDED PRECEDING)
           ELSE sum(active_usd) OVER (
               PARTITION BY side ORDER BY price_bucket ROWS UNBOUNDED PRECEDING)
       END AS cumulative_usd"""

# The cumulative liquidation curve (``CUMULATIVE_USD``) of the state at $at.
CUMULATIVE_LIQUIDATION_CURVE = f"""
WITH moment AS ({STATE_TIME}),
state AS (
    SELECT s.ts, s.price_bucket, s.side, s.active_usd
    FROM heatmap_snapshots s JOIN moment m ON s.ts = m.ts
    WHERE s.symbol = $symbol AND s.active_usd > 0
)
SELECT ts, price_bucket, side, active_usd,
       {CUMULATIVE_USD}
FROM state
ORDER BY side, price_bucket
"""

# Realized modelled liquidation flow per hour of [$start, $end), by side and leverage, from the
# contract view (one row per level with its consumption, if any).
LIQUIDATION_FLOW_PER_HOUR = """
SELECT date_trunc('hour', consumed_at) AS hour, side, leverage,
       count(*) AS levels, sum(consumed_usd) AS liquidated_usd
FROM liquidation_levels
WHERE symbol = $symbol AND consumed_at >= $start AND consumed_at < $end
GROUP BY ALL
ORDER BY hour, side, leverage
"""

# Per observed bucket, the modelled liquidations of the same candles beside the observed ones
# (buckets without an observed row are gaps in the source, so they are not listed).
MODELLED_BESIDE_OBSERVED = """
SELECT r.bucket_start, r.bucket_minutes,
       coalesce(sum(l.consumed_usd) FILTER (WHERE l.side = 'long'), 0) AS modelled_long_usd,
       r.long_usd AS observed_long_usd,
       coalesce(sum(l.consumed_usd) FILTER (WHERE l.side = 'short'), 0) AS modelled_short_usd,
       r.short_usd AS observed_short_usd,
       r.scope
FROM realized_liquidations r
LEFT JOIN candle_ledger l
    ON l.symbol = r.symbol AND l.ts >= r.bucket_start
   AND l.ts < r.bucket_start + to_minutes(r.bucket_minutes)
WHERE r.symbol = $symbol AND r.bucket_start >= $start AND r.bucket_start < $end
GROUP BY ALL
ORDER BY r.bucket_start
"""

EXAMPLE_QUERIES: dict[str, str] = {
    "heatmap": HEATMAP,
    "largest_clusters": LARGEST_CLUSTERS,
    "cumulative_liquidation_curve": CUMULATIVE_LIQUIDATION_CURVE,
    "liquidation_flow_per_hour": LIQUIDATION_FLOW_PER_HOUR,
    "modelled_beside_observed": MODELLED_BESIDE_OBSERVED,
}


def heatmap(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    start: datetime,
    end: datetime,
    interval_minutes: int,
    *,
    price_low: float | None = None,
    price_high: float | None = None,
    price_step: float | None = None,
) -> pd.DataFrame:
    """The heatmap cells of [start, end): columns ts, price_bucket, side, active_usd,
    consumed_usd (see ``HEATMAP``)."""
    return execute(
        conn,
        HEATMAP,
        {
            "symbol": symbol,
            "start": start,
            "end": end,
            "interval_minutes": interval_minutes,
            "price_low": price_low,
            "price_high": price_high,
            "price_step": price_step,
        },
    )
