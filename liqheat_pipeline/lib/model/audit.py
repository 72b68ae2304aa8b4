"""Independent SQL audits of the stored model outputs (the asset checks' logic, no Dagster).

Nothing here calls the engine: every invariant is re-derived in SQL from the stored candles,
levels, ledger, snapshots, state and bracket tables, so an engine bug or a corrupted/missing
partition shows up as a failed audit. Each audit covers one symbol and a window of whole UTC
days [start, end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.days import day_start

# Relative tolerance for sums of floats computed in a different order, with an absolute floor
# (in USD) so that zero-versus-rounding-noise comparisons pass.
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE_USD = 1e-6
# Offending rows shown per audit (the counts cover all of them).
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class AuditResult:
    """Outcome of one audit: counts for the UI and a few offending rows."""

    passed: bool
    description: str
    counts: dict[str, int] = field(default_factory=dict)
    offending: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class AuditWindow:
    """One symbol, the days [first_day, end_day), and the first day of the whole history."""

    symbol: str
    first_day: date
    end_day: date
    history_start: date

    @property
    def start(self) -> datetime:
        return day_start(self.first_day)

    @property
    def end(self) -> datetime:
        return day_start(self.end_day)

    @property
    def last_day(self) -> date:
        return self.end_day - timedelta(days=1)

    def parameters(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "start": self.start,
            "end": self.end,
            "first_day": self.first_day,
            "last_day": self.last_day,
            "history_start": self.history_start,
            "relative_tolerance": RELATIVE_TOLERANCE,
            "absolute_tolerance": ABSOLUTE_TOLERANCE_USD,
        }


def _query(
    conn: duckdb.DuckDBPyConnection, sql: str, window: AuditWindow, **extra: object
) -> pd.DataFrame:
    return warehouse.execute(conn, sql, window.parameters() | extra)


def _count(conn: duckdb.DuckDBPyConnection, table: str, where: str, window: AuditWindow) -> int:
    frame = _query(
        conn, f"SELECT count(*) AS n FROM {table} WHERE symbol = $symbol AND {where}", window
    )
    return int(frame["n"].iloc[0])


def _result(description: str, offending: pd.DataFrame, **counts: int) -> AuditResult:
    failures = len(offending)
    return AuditResult(
        passed=failures == 0,
        description=description if failures == 0 else f"FAILED: {description}",
        counts={**counts, "failures": failures},
        offending=offending.head(SAMPLE_ROWS),
    )


# Per candle: mark-price high/low where a mark candle exists, else the last-price candle's,
# exactly as the model consumes levels.
_PRICES = """
    SELECT c.open_time,
           COALESCE(m.low, c.low) AS low,
           COALESCE(m.high, c.high) AS high
    FROM candles c
    LEFT JOIN mark_price_candles m ON m.symbol = c.symbol AND m.open_time = c.open_time
    WHERE c.symbol = $symbol AND c.open_time < $end
"""


def active_levels_not_crossed(conn: duckdb.DuckDBPyConnection, window: AuditWindow) -> AuditResult:
    """No level still active at the window's end was crossed by a candle after its creation."""
    if _count(conn, "model_runs", "day = $last_day", window) == 0:
        missing = pd.DataFrame({"missing_state_day": [window.last_day]})
        return _result("end-of-window state is stored", missing, levels_checked=0)
    offending = _query(
        conn,
        f"""
        WITH levels AS (
            SELECT level_id, created_at, side, liq_price FROM model_state
            WHERE symbol = $symbol AND day = $last_day
        ),
        prices AS ({_PRICES} AND c.open_time >= (SELECT min(created_at) FROM levels)),
        later_extremes AS (
            SELECT open_time,
                   min(low) OVER later AS lowest_after,
                   max(high) OVER later AS highest_after
            FROM prices
            WINDOW later AS (ORDER BY open_time
                             ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
        )
        SELECT l.level_id, l.created_at, l.side, l.liq_price, e.lowest_after, e.highest_after,
               e.open_time IS NULL AS creation_candle_missing
        FROM levels l LEFT JOIN later_extremes e ON e.open_time = l.created_at
        WHERE e.open_time IS NULL
           OR (l.side = 'long' AND e.lowest_after <= l.liq_price)
           OR (l.side = 'short' AND e.highest_after >= l.liq_price)
        ORDER BY l.created_at, l.level_id
        """,
        window,
    )
    return _result(
        "levels active at the end of the window were never crossed after their creation",
        offending,
        levels_checked=_count(conn, "model_state", "day = $last_day", window),
    )


def consumed_at_first_crossing(conn: duckdb.DuckDBPyConnection, window: AuditWindow) -> AuditResult:
    """Every consumption in the window happened at the first crossing candle after creation."""
    frame = _query(
        conn,
        f"""
        WITH consumed AS (
            SELECT c.level_id, c.consumed_at, o.created_at, o.side, o.liq_price
            FROM level_consumptions c
            LEFT JOIN level_openings o ON o.symbol = c.symbol AND o.level_id = c.level_id
            WHERE c.symbol = $symbol AND c.consumed_at >= $start AND c.consumed_at < $end
        ),
        prices AS ({_PRICES} AND c.open_time > (SELECT min(created_at) FROM consumed)),
        first_crossing AS (
            SELECT k.level_id, min(p.open_time) AS first_crossing_at
            FROM consumed k JOIN prices p
              ON p.open_time > k.created_at AND p.open_time <= k.consumed_at
             AND ((k.side = 'long' AND p.low <= k.liq_price)
                  OR (k.side = 'short' AND p.high >= k.liq_price))
            GROUP BY k.level_id
        )
        SELECT k.level_id, k.created_at, k.side, k.liq_price, k.consumed_at,
               f.first_crossing_at, k.created_at IS NULL AS opening_missing
        FROM consumed k LEFT JOIN first_crossing f USING (level_id)
        ORDER BY k.consumed_at, k.level_id
        """,
        window,
    )
    offending = frame[
        frame["opening_missing"] | (frame["first_crossing_at"] != frame["consumed_at"])
    ]
    return _result(
        "each consumption is at the first candle after creation that crosses the level",
        offending,
        consumptions_checked=len(frame),
    )


def ledger_identity(conn: duckdb.DuckDBPyConnection, window: AuditWindow) -> AuditResult:
    """active_k = active_{k-1} + opened - consumed - closed per side, across the day boundary,
    and every candle of the window has exactly one ledger row per side."""
    offending = _query(
        conn,
        """
        WITH rows AS (
            SELECT ts, side, opened_usd, consumed_usd, closed_usd, active_usd, true AS in_window
            FROM candle_ledger WHERE symbol = $symbol AND ts >= $start AND ts < $end
            UNION ALL
            SELECT max(ts), side, NULL, NULL, NULL, arg_max(active_usd, ts), false
            FROM candle_ledger WHERE symbol = $symbol AND ts < $start GROUP BY side
        ),
        chained AS (
            SELECT *, lag(active_usd) OVER (PARTITION BY side ORDER BY ts) AS previous_active
            FROM rows
        ),
        checked AS (
            SELECT ts, side, opened_usd, consumed_usd, closed_usd, active_usd,
                   CASE WHEN previous_active IS NOT NULL THEN previous_active
                        WHEN $first_day = $history_start THEN 0.0 END AS previous_active
            FROM chained WHERE in_window
        )
        SELECT 'identity' AS problem, ts, side, previous_active, opened_usd, consumed_usd,
               closed_usd, active_usd,
               previous_active + opened_usd - consumed_usd - closed_usd - active_usd AS error_usd
        FROM checked
        WHERE previous_active IS NULL
           OR abs(previous_active + opened_usd - consumed_usd - closed_usd - active_usd)
              > $relative_tolerance * greatest(abs(previous_active), opened_usd, consumed_usd,
                                               closed_usd, abs(active_usd))
                + $absolute_tolerance
        UNION ALL
        SELECT 'candle without exactly one row per side', c.open_time, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL
        FROM candles c
        LEFT JOIN candle_ledger l ON l.symbol = c.symbol AND l.ts = c.open_time
        WHERE c.symbol = $symbol AND c.open_time >= $start AND c.open_time < $end
        GROUP BY c.open_time
        HAVING count(l.side) FILTER (WHERE l.side = 'long') <> 1
            OR count(l.side) FILTER (WHERE l.side = 'short') <> 1
        ORDER BY ts, side
        """,
        window,
    )
    return _result(
        "ledger identity per candle and side (previous active + opened - consumed - closed)",
        offending,
        ledger_rows=_count(conn, "candle_ledger", "ts >= $start AND ts < $end", window),
    )


# Closures carry dust remnants (levels below 1e-9 of their opening closed whole), so the
# recomputed closed notional is compared with a looser relative tolerance.
CLOSURE_RELATIVE_TOLERANCE = 1e-6


def closures_follow_open_interest(
    conn: duckdb.DuckDBPyConnection, window: AuditWindow
) -> AuditResult:
    """Each candle's closed notional per side equals ``f_k`` × that side's active notional
    before the closure, with ``f_k`` recomputed from the stored candles and open interest under
    the run's ``closure_model`` and ``entry_price`` (model.md step 6); and ``open_interest_usd``
    and ``coverage`` equal OI(t_k + Δ) × close and active / that (step 7)."""
    offending = _query(
        conn,
        """
        WITH runs AS (
            SELECT day,
                   json_extract_string(assumptions, '$.closure_model') AS closure_model,
                   json_extract_string(assumptions, '$.entry_price') AS entry_price,
                   CAST(json_extract(assumptions, '$.interval_minutes') AS INTEGER) AS minutes
            FROM model_runs WHERE symbol = $symbol AND day >= $first_day AND day <= $last_day
        ),
        ledger AS (
            SELECT ts,
                   sum(closed_usd) FILTER (WHERE side = 'long') AS closed_long,
                   sum(closed_usd) FILTER (WHERE side = 'short') AS closed_short,
                   -- by the ledger identity (audited separately): active before the closure
                   sum(active_usd + closed_usd) FILTER (WHERE side = 'long') AS before_long,
                   sum(active_usd + closed_usd) FILTER (WHERE side = 'short') AS before_short,
                   sum(consumed_usd) AS consumed,
                   max(open_interest_usd) AS open_interest_usd,
                   max(abs(coverage - active_usd / open_interest_usd))
                       FILTER (WHERE open_interest_usd > 0) AS coverage_error,
                   bool_or(coverage IS NOT NULL AND NOT open_interest_usd > 0)
                       OR bool_or(coverage IS NULL AND open_interest_usd > 0) AS coverage_misplaced
            FROM candle_ledger WHERE symbol = $symbol AND ts >= $start AND ts < $end
            GROUP BY ts
        ),
        inputs AS (
            SELECT l.*, r.closure_model, c.close,
                   CASE r.entry_price
                       WHEN 'close' THEN c.close
                       WHEN 'hlc3' THEN (c.high + c.low + c.close) / 3
                       ELSE CASE WHEN c.volume > 0 AND c.quote_volume IS NOT NULL
                                 THEN c.quote_volume / c.volume
                                 ELSE (c.high + c.low + c.close) / 3 END
                   END AS entry,
                   o0.open_interest AS oi_start, o1.open_interest AS oi_end
            FROM ledger l
            JOIN runs r ON r.day = CAST(l.ts AS DATE)
            JOIN candles c ON c.symbol = $symbol AND c.open_time = l.ts
            LEFT JOIN open_interest o0 ON o0.symbol = $symbol AND o0.ts = l.ts
            LEFT JOIN open_interest o1
                ON o1.symbol = $symbol AND o1.ts = l.ts + to_minutes(r.minutes)
        ),
        shares AS (
            SELECT *,
                   CASE WHEN oi_end < oi_start THEN (oi_start - oi_end) * entry ELSE 0 END
                       - CASE WHEN closure_model LIKE '%_net' THEN consumed ELSE 0 END
                       AS to_close,
                   CASE WHEN closure_model LIKE 'oi_share%' THEN oi_start * entry
                        ELSE before_long + before_short END AS base
            FROM inputs
        ),
        expected AS (
            SELECT *,
                   CASE WHEN to_close > 0 AND base > 0 THEN least(to_close / base, 1.0)
                        ELSE 0.0 END AS closed_share
            FROM shares
        )
        SELECT ts, closure_model, closed_share, closed_long,
               closed_share * before_long AS expected_closed_long, closed_short,
               closed_share * before_short AS expected_closed_short,
               open_interest_usd, oi_end * close AS expected_open_interest_usd, coverage_error
        FROM expected
        WHERE abs(closed_long - closed_share * before_long)
                > $closure_tolerance * before_long + $absolute_tolerance
           OR abs(closed_short - closed_share * before_short)
                > $closure_tolerance * before_short + $absolute_tolerance
           OR (oi_end IS NULL) <> (open_interest_usd IS NULL)
           OR abs(open_interest_usd - oi_end * close)
                > $relative_tolerance * abs(oi_end * close) + $absolute_tolerance
           OR coverage_error > $relative_tolerance OR coverage_misplaced
        ORDER BY ts
        """,
        window,
        closure_tolerance=CLOSURE_RELATIVE_TOLERANCE,
    )
    return _result(
        "closed notional = f_k × active before the closure, f_k from open interest (step 6); "
        "open_interest_usd and coverage (step 7)",
        offending,
        candles_checked=_count(
            conn, "candle_ledger", "side = 'long' AND ts >= $start AND ts < $end", window
        ),
    )


def snapshots_match_ledger(conn: duckdb.DuckDBPyConnection, window: AuditWindow) -> AuditResult:
    """Per candle and side, both snapshot tables' bucket sums equal the ledger's active and
    consumed notionals."""
    frames = []
    for table in ("heatmap_snapshots", "heatmap_snapshots_by_leverage"):
        frames.append(
            _query(
                conn,
                f"""
                WITH sums AS (
                    SELECT ts, side, sum(active_usd) AS active_usd,
                           sum(consumed_usd) AS consumed_usd
                    FROM {table} WHERE symbol = $symbol AND ts >= $start AND ts < $end
                    GROUP BY ts, side
                ),
                ledger AS (
                    SELECT ts, side, active_usd, consumed_usd FROM candle_ledger
                    WHERE symbol = $symbol AND ts >= $start AND ts < $end
                )
                SELECT '{table}' AS snapshot_table, ts, side,
                       l.active_usd AS ledger_active_usd, s.active_usd AS snapshot_active_usd,
                       l.consumed_usd AS ledger_consumed_usd,
                       s.consumed_usd AS snapshot_consumed_usd
                FROM ledger l FULL OUTER JOIN sums s USING (ts, side)
                WHERE l.ts IS NULL
                   OR abs(l.active_usd - coalesce(s.active_usd, 0))
                      > $relative_tolerance * abs(l.active_usd) + $absolute_tolerance
                   OR abs(l.consumed_usd - coalesce(s.consumed_usd, 0))
                      > $relative_tolerance * abs(l.consumed_usd) + $absolute_tolerance
                ORDER BY ts, side
                """,
                window,
            )
        )
    offending = pd.concat(frames, ignore_index=True)
    return _result("snapshot bucket sums equal the ledger per candle and side", offending)


def continuity_with_previous_day(
    conn: duckdb.DuckDBPyConnection, window: AuditWindow
) -> AuditResult:
    """Each day's first candle starts from the previous day's stored closing state, and each
    day's stored state equals its last ledger row."""
    offending = _query(
        conn,
        """
        WITH days AS (
            SELECT CAST(d AS DATE) AS day, side
            FROM range(CAST($start AS TIMESTAMP), CAST($end AS TIMESTAMP), INTERVAL 1 DAY) t(d),
                 (VALUES ('long'), ('short')) s(side)
        ),
        runs AS (SELECT day FROM model_runs WHERE symbol = $symbol),
        state_totals AS (
            SELECT day, side, sum(remaining_usd) AS active_usd FROM model_state
            WHERE symbol = $symbol AND day >= CAST($first_day AS DATE) - 1 AND day < $end
            GROUP BY day, side
        ),
        ledger_ends AS (
            SELECT CAST(ts AS DATE) AS day, side,
                   arg_min(active_usd - opened_usd + consumed_usd + closed_usd, ts) AS opening,
                   arg_max(active_usd, ts) AS closing
            FROM candle_ledger WHERE symbol = $symbol AND ts >= $start AND ts < $end
            GROUP BY ALL
        ),
        compared AS (
            SELECT d.day, d.side,
                   d.day = $history_start OR (d.day - 1) IN (SELECT day FROM runs)
                       AS previous_state_stored,
                   d.day IN (SELECT day FROM runs) AS state_stored,
                   CASE WHEN d.day = $history_start THEN 0.0
                        ELSE coalesce(p.active_usd, 0.0) END AS previous_closing_usd,
                   e.opening AS ledger_opening_usd,
                   coalesce(c.active_usd, 0.0) AS state_closing_usd,
                   e.closing AS ledger_closing_usd
            FROM days d
            LEFT JOIN state_totals p ON p.day = d.day - 1 AND p.side = d.side
            LEFT JOIN state_totals c ON c.day = d.day AND c.side = d.side
            LEFT JOIN ledger_ends e ON e.day = d.day AND e.side = d.side
        )
        SELECT * FROM compared
        WHERE NOT previous_state_stored OR NOT state_stored OR ledger_opening_usd IS NULL
           OR abs(previous_closing_usd - ledger_opening_usd)
              > $relative_tolerance * abs(previous_closing_usd) + $absolute_tolerance
           OR abs(state_closing_usd - ledger_closing_usd)
              > $relative_tolerance * abs(state_closing_usd) + $absolute_tolerance
        ORDER BY day, side
        """,
        window,
    )
    return _result(
        "each day starts from the previous day's stored closing state and ends at its own",
        offending,
        days_checked=(window.end_day - window.first_day).days,
    )


def liquidation_prices_match_brackets(
    conn: duckdb.DuckDBPyConnection, window: AuditWindow
) -> AuditResult:
    """Recompute leverage caps and liquidation prices from entry, tier leverage, side, the
    stored bracket tables and the run's representative notional ``n_rep``."""
    frame = _query(
        conn,
        """
        WITH table_symbol AS (
            SELECT CASE WHEN count(*) > 0 THEN $symbol ELSE '*' END AS symbol
            FROM margin_brackets WHERE symbol = $symbol
        ),
        versions AS (
            SELECT DISTINCT effective_from FROM margin_brackets
            WHERE symbol = (SELECT symbol FROM table_symbol)
        ),
        levels AS (
            SELECT o.level_id, o.created_at, CAST(o.created_at AS DATE) AS day, o.side,
                   o.tier_leverage, o.leverage, o.entry_price, o.liq_price,
                   CAST(json_extract(r.assumptions, '$.n_rep') AS DOUBLE) AS n_rep
            FROM level_openings o
            LEFT JOIN model_runs r
              ON r.symbol = o.symbol AND r.day = CAST(o.created_at AS DATE)
            WHERE o.symbol = $symbol AND o.created_at >= $start AND o.created_at < $end
        ),
        -- the table in effect on the candle's day; days before the first table use it
        dated AS (
            SELECT l.*,
                   coalesce(v.effective_from,
                            (SELECT min(effective_from) FROM versions)) AS effective_from
            FROM levels l ASOF LEFT JOIN versions v ON l.day >= v.effective_from
        ),
        expected AS (
            SELECT d.*, b.mmr, b.maint_amount,
                   least(d.tier_leverage, b.max_leverage) AS expected_leverage
            FROM dated d
            LEFT JOIN margin_brackets b
              ON b.symbol = (SELECT symbol FROM table_symbol)
             AND b.effective_from = d.effective_from
             AND (d.n_rep > b.floor OR b.floor = 0) AND d.n_rep <= b.cap
        )
        SELECT level_id, created_at, side, entry_price, tier_leverage, leverage,
               expected_leverage, mmr, maint_amount, n_rep, liq_price,
               -- Binance isolated margin: wallet N/L plus PnL meets the maintenance margin
               -- N_LP*MMR - cum (so cum moves the price away from the entry).
               CASE side
                   WHEN 'long' THEN entry_price * (1 - 1 / expected_leverage
                                                   - maint_amount / n_rep) / (1 - mmr)
                   WHEN 'short' THEN entry_price * (1 + 1 / expected_leverage
                                                    + maint_amount / n_rep) / (1 + mmr)
               END AS expected_liq_price
        FROM expected
        ORDER BY created_at, level_id
        """,
        window,
    )
    tolerance = RELATIVE_TOLERANCE * frame["expected_liq_price"].abs()
    wrong_price = ~((frame["liq_price"] - frame["expected_liq_price"]).abs() <= tolerance)
    wrong_leverage = frame["leverage"] != frame["expected_leverage"]
    offending = frame[wrong_price | wrong_leverage.fillna(True)]
    return _result(
        "liquidation prices recomputed from entry, leverage, side and bracket match",
        offending,
        levels_checked=len(frame),
    )


# The numeric columns each audited model table must hold non-negative (keys and owning time
# columns are the table registry's, ``warehouse.TABLES``).
NON_NEGATIVE_COLUMNS: dict[str, tuple[str, ...]] = {
    "level_openings": ("notional_usd", "entry_price", "liq_price"),
    "level_consumptions": ("consumed_usd",),
    "candle_ledger": ("opened_usd", "consumed_usd", "closed_usd", "active_usd"),
    "heatmap_snapshots": ("active_usd", "consumed_usd"),
    "heatmap_snapshots_by_leverage": ("active_usd", "consumed_usd"),
    "model_state": ("notional_usd", "remaining_usd", "liq_price"),
}


def values_valid_and_keys_unique(
    conn: duckdb.DuckDBPyConnection, window: AuditWindow, tables: tuple[str, ...]
) -> AuditResult:
    """No NULL, NaN or negative notional/price, sides are long/short, and no duplicate key.

    Keys without a time column (level ids) are checked against the symbol's whole table, so a
    level opened or consumed twice on different days is caught too.
    """
    frames = []
    for table in tables:
        stored = warehouse.TABLES[table]
        in_window = stored.owned("$start", "$end")
        bad_value = " OR ".join(
            f"{column} IS NULL OR isnan({column}) OR {column} < 0"
            for column in NON_NEGATIVE_COLUMNS[table]
        )
        key_columns = stored.key_within_symbol
        key = ", ".join(key_columns)
        scope = in_window if stored.time_column in key_columns else "true"
        frames.append(
            _query(
                conn,
                f"""
                SELECT '{table}' AS table_name, 'bad value' AS problem,
                       CAST(({key}) AS VARCHAR) AS key
                FROM {table}
                WHERE symbol = $symbol AND {in_window}
                  AND ({bad_value} OR side IS NULL OR side NOT IN ('long', 'short'))
                UNION ALL
                SELECT '{table}', 'duplicate key (' || count(*) || ' rows)',
                       CAST(({key}) AS VARCHAR)
                FROM {table}
                WHERE symbol = $symbol AND {scope}
                GROUP BY {key}
                HAVING count(*) > 1 AND bool_or({in_window})
                """,
                window,
            )
        )
    offending = pd.concat(frames, ignore_index=True)
    return _result("no NULL/NaN/negative values and no duplicate keys", offending)
