"""Independent SQL audits of the stored model outputs (the asset checks' logic, no Dagster).

Nothing here calls the engine: every invariant is re-derived in SQL from the stored candles,
levels, ledger, snapshots, state and bracket tables, so an engine bug or a corrupted/missing
partition shows up as a failed audit. Each audit covers one symbol and a window of whole UTC
days [start, end), each day as if alone (``AuditResult.by_day``, from one query over the window
where the rules allow): a day's audit reads that day's rows and the stored state the day started
from (the view ``model_state`` of the previous day), and what holds across days
follows by induction over the days' audits (see ``active_levels_not_crossed`` and
``consumed_at_first_crossing``). The view rebuilds a day's end state from every day since the
first (openings not yet consumed or closed out, remaining notional from the stored closure
scales), a scan of one symbol's levels and ledger that stays small beside the day's own audits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    """Outcome of one audit over its window: counts for the UI and a few offending rows;
    ``by_day`` holds the same for each day of the window, as if that day were audited alone
    (the window's rows are read in one query and told apart by the day that owns them)."""

    passed: bool
    description: str
    counts: dict[str, int] = field(default_factory=dict)
    offending: pd.DataFrame = field(default_factory=pd.DataFrame)
    by_day: Mapping[date, AuditResult] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class AuditWindow:
    """One symbol, the days [first_day, end_day), and the first day of the whole history.

    ``states``: the relation the audits read end-of-day states from (the view model_state, or
    its rows for the window materialized once by ``with_materialized_states``)."""

    symbol: str
    first_day: date
    end_day: date
    history_start: date
    states: str = "model_state"

    @property
    def start(self) -> datetime:
        return day_start(self.first_day)

    @property
    def end(self) -> datetime:
        return day_start(self.end_day)

    @property
    def last_day(self) -> date:
        return self.end_day - timedelta(days=1)

    @property
    def dates(self) -> list[date]:
        return [self.first_day + timedelta(days=offset) for offset in range(self.day_count)]

    def days(self) -> list[AuditWindow]:
        """The window's days, each as a one-day window."""
        return [replace(self, first_day=day, end_day=day + timedelta(days=1)) for day in self.dates]

    @property
    def day_count(self) -> int:
        return (self.end_day - self.first_day).days

    def parameters(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "start": self.start,
            "end": self.end,
            "first_day": self.first_day,
            "last_day": self.last_day,
            "previous_day": self.first_day - timedelta(days=1),
            "history_start": self.history_start,
            "relative_tolerance": RELATIVE_TOLERANCE,
            "absolute_tolerance": ABSOLUTE_TOLERANCE_USD,
        }


MATERIALIZED_STATES = "audited_states"
# The columns of model_state the audits read (the others cost time to copy: 2.3 M rows a week at
# a year's end).
_AUDITED_STATE_COLUMNS = (
    "symbol, day, level_id, created_at, side, liq_price, notional_usd, remaining_usd"
)


def with_materialized_states(conn: duckdb.DuckDBPyConnection, window: AuditWindow) -> AuditWindow:
    """The window reading the end states of its days and of the day before from a temporary
    table of ``conn``, filled here from the view model_state (whatever ``window.states`` says)
    in one query: the view rebuilds a state from the symbol's whole history (0.2-0.3 s at a
    year's end), and a day's audits read two states several times."""
    _query(
        conn,
        f"CREATE OR REPLACE TEMP TABLE {MATERIALIZED_STATES} AS SELECT {_AUDITED_STATE_COLUMNS} "
        "FROM model_state WHERE symbol = $symbol AND day >= $previous_day AND day <= $last_day",
        window,
    )
    return replace(window, states=MATERIALIZED_STATES)


def _query(
    conn: duckdb.DuckDBPyConnection, sql: str, window: AuditWindow, **extra: object
) -> pd.DataFrame:
    return warehouse.execute(conn, sql, window.parameters() | extra)


def _count(conn: duckdb.DuckDBPyConnection, table: str, where: str, window: AuditWindow) -> int:
    frame = _query(
        conn, f"SELECT count(*) AS n FROM {table} WHERE symbol = $symbol AND {where}", window
    )
    return int(frame["n"].iloc[0])


def _as_date(value: object) -> date:
    return pd.Timestamp(value).date()


def _counts_by_day(
    conn: duckdb.DuckDBPyConnection, table: str, where: str, day: str, window: AuditWindow
) -> dict[date, int]:
    """Rows of ``table`` matching ``where``, per owning day (``day``, an SQL expression)."""
    frame = _query(
        conn,
        f"SELECT CAST({day} AS DATE) AS day, count(*) AS n FROM {table} "
        f"WHERE symbol = $symbol AND {where} GROUP BY ALL",
        window,
    )
    return {_as_date(day): int(n) for day, n in zip(frame["day"], frame["n"], strict=True)}


def _summary(description: str, offending: pd.DataFrame, **counts: int) -> AuditResult:
    failures = len(offending)
    return AuditResult(
        passed=failures == 0,
        description=description if failures == 0 else f"FAILED: {description}",
        counts={**counts, "failures": failures},
        offending=offending.head(SAMPLE_ROWS),
    )


def _result(
    window: AuditWindow,
    description: str,
    offending: pd.DataFrame,
    owning_days: Sequence[object],
    **counts: Mapping[date, int],
) -> AuditResult:
    """The window's result and each day's, the offending rows told apart by the day that owns
    each (``owning_days``, dates or timestamps in row order)."""
    days = window.dates
    row_days = pd.Series([_as_date(value) for value in owning_days], index=offending.index)
    outside = sorted(set(row_days) - set(days))
    if outside:  # the query read beyond its window: a bug here, never a finding to drop
        raise AssertionError(f"{description}: offending rows of days outside the window {outside}")
    by_day = {
        day: _summary(
            description,
            offending[row_days == day],
            **{name: int(per_day.get(day, 0)) for name, per_day in counts.items()},
        )
        for day in days
    }
    whole = _summary(
        description,
        offending,
        **{name: int(sum(per_day.values())) for name, per_day in counts.items()},
    )
    return replace(whole, by_day=by_day)


def _result_of_days(
    conn: duckdb.DuckDBPyConnection,
    window: AuditWindow,
    description: str,
    audit_day: Callable[[duckdb.DuckDBPyConnection, AuditWindow], tuple[pd.DataFrame, int]],
    count_name: str,
) -> AuditResult:
    """Run a one-day audit (offending rows, rows checked) for every day of the window."""
    by_day, frames = {}, []
    for day in window.days():
        offending, checked = audit_day(conn, day)
        by_day[day.first_day] = _summary(description, offending, **{count_name: checked})
        if not offending.empty:
            frames.append(offending)
    whole = _summary(
        description,
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
        **{count_name: sum(result.counts[count_name] for result in by_day.values())},
    )
    return replace(whole, by_day=by_day)


# Per candle of the window: mark-price high/low where a mark candle exists, else the last-price
# candle's, exactly as the model consumes levels.
_PRICES = """
    SELECT c.open_time,
           COALESCE(m.low, c.low) AS low,
           COALESCE(m.high, c.high) AS high
    FROM candles c
    LEFT JOIN (
        SELECT open_time, low, high FROM mark_price_candles
        WHERE symbol = $symbol AND open_time >= $start AND open_time < $end
    ) m USING (open_time)
    WHERE c.symbol = $symbol AND c.open_time >= $start AND c.open_time < $end
"""


# The stored end state of one day (``day``, an SQL expression): each active level's opening
# columns and remaining notional (the view model_state).
def _state_of(window: AuditWindow, day: str) -> str:
    return f"""
        SELECT level_id, created_at, side, liq_price, notional_usd, remaining_usd
        FROM {window.states} WHERE symbol = $symbol AND day = {day}"""


# The levels a day starts with (the previous day's stored end state; none on the first day of
# the history) and the levels it opens, with what the crossing and dust rules need.
def _day_levels(window: AuditWindow) -> str:
    return f"""
        SELECT level_id, created_at, side, liq_price, notional_usd,
               remaining_usd / notional_usd AS share_at_start, true AS carried
        FROM ({_state_of(window, "$previous_day")})
        WHERE $first_day > $history_start
        UNION ALL
        SELECT level_id, created_at, side, liq_price, notional_usd, 1.0, false
        FROM level_openings WHERE symbol = $symbol AND created_at >= $start AND created_at < $end
    """


# Per candle of the window, the share f_k of every active level that the proportional closure
# closes (model.md step 6), recomputed from the stored candles, open interest, ledger and the
# run's assumptions; ``expected`` is the last CTE.
_CLOSED_SHARES = """
    runs AS (
        SELECT day,
               json_extract_string(assumptions, '$.closure_model') AS closure_model,
               json_extract_string(assumptions, '$.entry_price') AS entry_price,
               CAST(json_extract(assumptions, '$.interval_minutes') AS INTEGER) AS minutes,
               CAST(json_extract(assumptions, '$.dust_share') AS DOUBLE) AS dust_share
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
    open_interest_window AS (
        -- OI(t_k + interval) of the window's last candles lies after its end (an interval
        -- is at most a day)
        SELECT ts, open_interest FROM open_interest
        WHERE symbol = $symbol AND ts >= $start AND ts <= $end + INTERVAL 1 DAY
    ),
    inputs AS (
        SELECT l.*, r.closure_model, r.dust_share, c.close,
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
        JOIN (
            SELECT * FROM candles
            WHERE symbol = $symbol AND open_time >= $start AND open_time < $end
        ) c ON c.open_time = l.ts
        LEFT JOIN open_interest_window o0 ON o0.ts = l.ts
        LEFT JOIN open_interest_window o1 ON o1.ts = l.ts + to_minutes(r.minutes)
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
"""

# A level's remaining share recomputed in SQL is compared with the dust share this loosely:
# the engine multiplies the closure factors in another order.
DUST_RELATIVE_TOLERANCE = 1e-6


def _active_levels_day(
    conn: duckdb.DuckDBPyConnection, day: AuditWindow
) -> tuple[pd.DataFrame, int]:
    if _count(conn, "model_runs", "day = $last_day", day) == 0:
        return pd.DataFrame({"problem": ["end-of-day state not stored"], "day": [day.last_day]}), 0
    offending = _query(
        conn,
        f"""
        WITH end_state AS ({_state_of(day, "$last_day")}),
        day_levels AS ({_day_levels(day)}),
        prices AS ({_PRICES}),
        later_extremes AS (
            SELECT open_time,
                   min(low) OVER later AS lowest_after,
                   max(high) OVER later AS highest_after
            FROM prices
            WINDOW later AS (ORDER BY open_time
                             ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
        ),
        day_extremes AS (SELECT min(low) AS lowest, max(high) AS highest FROM prices),
        checked AS (
            SELECT s.level_id, s.created_at, s.side, s.liq_price,
                   l.level_id IS NULL AS origin_missing,
                   l.carried AND s.created_at >= $start AS carried_before_opening,
                   s.created_at >= $start AND e.open_time IS NULL AS creation_candle_missing,
                   CASE WHEN s.created_at < $start THEN d.lowest ELSE e.lowest_after END
                       AS lowest_after,
                   CASE WHEN s.created_at < $start THEN d.highest ELSE e.highest_after END
                       AS highest_after
            FROM end_state s
            LEFT JOIN day_levels l ON l.level_id = s.level_id
            LEFT JOIN later_extremes e ON e.open_time = s.created_at
            CROSS JOIN day_extremes d
        )
        SELECT * FROM checked
        WHERE origin_missing OR carried_before_opening
           OR creation_candle_missing
           OR (side = 'long' AND lowest_after <= liq_price)
           OR (side = 'short' AND highest_after >= liq_price)
        ORDER BY created_at, level_id
        """,
        day,
    )
    return offending, _count(conn, day.states, "day = $last_day", day)


def active_levels_not_crossed(conn: duckdb.DuckDBPyConnection, window: AuditWindow) -> AuditResult:
    """No level of a day's stored end state was crossed by a candle after its creation.

    Checked per day D from D alone: every level of D's end state (``model_state`` day D: the
    levels opened by then and neither consumed nor closed out by then) is either opened on D,
    with its creation candle stored, or carried: then it is in D−1's end state and was opened
    before D; and no candle of D after its creation crosses it. By induction over the days, a
    level of D's end state was never crossed since its creation: a carried level was not
    crossed before D because it is in D−1's end state, which D−1's audit proved never crossed.
    Base case: the first day of the history starts empty, so every level of its end state must
    be opened on it. A carried level's price cannot change between the days (both days' states
    read its one opening row); that price is recomputed on its opening day by
    ``liquidation_prices_match_brackets``.
    """
    return _result_of_days(
        conn,
        window,
        "levels of each day's end state were never crossed after their creation "
        "(crossing-free on the day; carried from the previous day's end state)",
        _active_levels_day,
        "levels_checked",
    )


def _consumptions_day(
    conn: duckdb.DuckDBPyConnection, day: AuditWindow
) -> tuple[pd.DataFrame, int]:
    frame = _query(
        conn,
        f"""
        WITH {_CLOSED_SHARES},
        day_levels AS ({_day_levels(day)}),
        consumed AS (
            SELECT level_id, consumed_at FROM level_consumptions
            WHERE symbol = $symbol AND consumed_at >= $start AND consumed_at < $end
        ),
        end_state AS (
            SELECT level_id FROM {day.states} WHERE symbol = $symbol AND day = $last_day
        ),
        prices AS ({_PRICES}),
        -- The candles setting a new low (high) of the day, in time order: a carried level's
        -- first crossing is the first of them to reach its price, the one with the highest
        -- low <= a long's price (the lowest high >= a short's).
        price_records AS (
            SELECT open_time, low, high,
                   low < coalesce(min(low) OVER earlier, 'infinity') AS new_low,
                   high > coalesce(max(high) OVER earlier, '-infinity') AS new_high
            FROM prices
            WINDOW earlier AS (ORDER BY open_time
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
        ),
        -- The carried levels some candle of the day reaches (the others cannot be crossed).
        reached AS MATERIALIZED (
            SELECT level_id, side, liq_price FROM day_levels
            WHERE carried AND CASE side WHEN 'long' THEN liq_price >= (SELECT min(low) FROM prices)
                                        ELSE liq_price <= (SELECT max(high) FROM prices) END
        ),
        first_crossing AS (
            SELECT l.level_id, r.open_time AS first_crossing_at
            FROM reached l
            ASOF JOIN (SELECT * FROM price_records WHERE new_low) r ON l.liq_price >= r.low
            WHERE l.side = 'long'
            UNION ALL
            SELECT l.level_id, r.open_time
            FROM reached l
            ASOF JOIN (SELECT * FROM price_records WHERE new_high) r ON l.liq_price <= r.high
            WHERE l.side = 'short'
            UNION ALL
            -- levels opened on the day: the candles after their creation
            SELECT l.level_id, min(p.open_time)
            FROM day_levels l JOIN prices p
              ON p.open_time > l.created_at
             AND ((l.side = 'long' AND p.low <= l.liq_price)
                  OR (l.side = 'short' AND p.high >= l.liq_price))
            WHERE NOT l.carried
            GROUP BY l.level_id
        ),
        -- Per candle, the closure factors so far: log of the product of (1 - f_j) over the
        -- candles before it, and the full closures (f_j = 1) among them.
        closure_scale AS (
            SELECT ts, dust_share,
                   coalesce(sum(ln(1 - closed_share)) FILTER (WHERE closed_share < 1)
                                OVER earlier, 0) AS log_scale_before,
                   coalesce(count(*) FILTER (WHERE closed_share >= 1) OVER earlier, 0)
                       AS full_closures_before
            FROM expected
            WINDOW earlier AS (ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
        ),
        -- Only a consumed or a crossed level can break a rule.
        candidates AS (
            SELECT level_id FROM consumed UNION SELECT level_id FROM first_crossing
        ),
        checked AS (
            SELECT c.level_id, l.created_at, l.side, l.liq_price, k.consumed_at,
                   f.first_crossing_at,
                   k.level_id IS NOT NULL AND l.level_id IS NULL AS neither_carried_nor_opened,
                   k.level_id IS NOT NULL AND s.level_id IS NOT NULL AS consumed_but_still_active,
                   -- A crossed level the closures closed out before its crossing candle (a
                   -- full closure, or its remaining share below the dust share) is not consumed.
                   x.full_closures_before - coalesce(o.full_closures_before, 0) > 0
                       OR ln(l.share_at_start) + x.log_scale_before
                          - coalesce(o.log_scale_before, 0)
                          < ln(x.dust_share * (1 + $dust_tolerance)) AS closed_out_before_crossing
            FROM candidates c
            LEFT JOIN day_levels l ON l.level_id = c.level_id
            LEFT JOIN first_crossing f ON f.level_id = c.level_id
            LEFT JOIN consumed k ON k.level_id = c.level_id
            LEFT JOIN end_state s ON s.level_id = k.level_id
            LEFT JOIN closure_scale x ON x.ts = f.first_crossing_at
            -- the closure of a level's own creation candle applies to it (step 6 after step 2)
            LEFT JOIN closure_scale o ON o.ts = l.created_at AND NOT l.carried
        )
        SELECT * FROM checked
        WHERE neither_carried_nor_opened OR consumed_but_still_active
           OR (consumed_at IS NOT NULL AND first_crossing_at IS DISTINCT FROM consumed_at)
           OR (consumed_at IS NULL AND first_crossing_at IS NOT NULL
               AND NOT coalesce(closed_out_before_crossing, false))
        ORDER BY coalesce(consumed_at, first_crossing_at), level_id
        """,
        day,
        dust_tolerance=DUST_RELATIVE_TOLERANCE,
    )
    consumptions = _count(
        conn, "level_consumptions", "consumed_at >= $start AND consumed_at < $end", day
    )
    return frame, consumptions


def consumed_at_first_crossing(conn: duckdb.DuckDBPyConnection, window: AuditWindow) -> AuditResult:
    """Each level a day starts with or opens is consumed at its first crossing candle of the
    day after its creation, and only levels that start the day or open on it are consumed.

    Checked per day D from D alone. The day's levels are D−1's stored end state (none on the
    first day of the history) and the levels opened on D. A consumption on D must be of one of
    them, at the first candle of D after its creation that crosses it, and the level must not
    be in D's end state. A day's level crossed on D but not consumed on D must have been closed
    out before that candle by the closures recomputed in SQL (a full closure, or its remaining
    share below the run's dust share). A carried level was not crossed before D (D−1's
    ``active_levels_not_crossed``), so its first crossing on D is its first crossing since
    creation. By induction over the days, a level is consumed at most once (a consumed level
    leaves the end state, which every later day starts from).
    """
    return _result_of_days(
        conn,
        window,
        "each consumption is at the first candle after creation that crosses the level, and "
        "every crossed level is consumed there unless closed out before",
        _consumptions_day,
        "consumptions_checked",
    )


def ledger_identity(conn: duckdb.DuckDBPyConnection, window: AuditWindow) -> AuditResult:
    """active_k = active_{k-1} + opened - consumed - closed per side, across the day boundary,
    and every candle of the window has exactly one ledger row per side.

    The first candle chains to the last ledger row of the day before the window (the first day
    of the history to 0): a day reads its own rows and the previous day's.
    """
    offending = _query(
        conn,
        """
        WITH rows AS (
            SELECT ts, side, opened_usd, consumed_usd, closed_usd, active_usd, true AS in_window
            FROM candle_ledger WHERE symbol = $symbol AND ts >= $start AND ts < $end
            UNION ALL
            SELECT max(ts), side, NULL, NULL, NULL, arg_max(active_usd, ts), false
            FROM candle_ledger
            WHERE symbol = $symbol AND ts >= $start - INTERVAL 1 DAY AND ts < $start
            GROUP BY side
        ),
        chained AS (
            SELECT *, lag(active_usd) OVER earlier AS previous_active,
                   lag(ts) OVER earlier AS previous_ts
            FROM rows
            WINDOW earlier AS (PARTITION BY side ORDER BY ts)
        ),
        -- a day chains to its own rows and the previous day's, never further back
        checked AS (
            SELECT ts, side, opened_usd, consumed_usd, closed_usd, active_usd,
                   CASE WHEN previous_ts >= CAST(ts AS DATE) - INTERVAL 1 DAY THEN previous_active
                        WHEN CAST(ts AS DATE) = $history_start THEN 0.0 END AS previous_active
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
        window,
        "ledger identity per candle and side (previous active + opened - consumed - closed)",
        offending,
        offending["ts"],
        ledger_rows=_counts_by_day(
            conn, "candle_ledger", "ts >= $start AND ts < $end", "ts", window
        ),
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
        f"""
        WITH {_CLOSED_SHARES}
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
        window,
        "closed notional = f_k × active before the closure, f_k from open interest (step 6); "
        "open_interest_usd and coverage (step 7)",
        offending,
        offending["ts"],
        candles_checked=_counts_by_day(
            conn, "candle_ledger", "side = 'long' AND ts >= $start AND ts < $end", "ts", window
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
    return _result(
        window,
        "snapshot bucket sums equal the ledger per candle and side",
        offending,
        offending["ts"],
    )


def continuity_with_previous_day(
    conn: duckdb.DuckDBPyConnection, window: AuditWindow
) -> AuditResult:
    """Each day's first candle starts from the previous day's stored closing state, and each
    day's stored state equals its last ledger row."""
    offending = _query(
        conn,
        f"""
        WITH days AS (
            SELECT CAST(d AS DATE) AS day, side
            FROM range(CAST($start AS TIMESTAMP), CAST($end AS TIMESTAMP), INTERVAL 1 DAY) t(d),
                 (VALUES ('long'), ('short')) s(side)
        ),
        runs AS (
            SELECT day FROM model_runs
            WHERE symbol = $symbol AND day >= $previous_day AND day <= $last_day
        ),
        state_totals AS (
            SELECT day, side, sum(remaining_usd) AS active_usd
            FROM {window.states}
            WHERE symbol = $symbol AND day >= $previous_day AND day <= $last_day
            GROUP BY ALL
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
        window,
        "each day starts from the previous day's stored closing state and ends at its own",
        offending,
        offending["day"],
        days_checked=dict.fromkeys(window.dates, 1),
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
            LEFT JOIN (
                SELECT day, assumptions FROM model_runs
                WHERE symbol = $symbol AND day >= $first_day AND day <= $last_day
            ) r ON r.day = CAST(o.created_at AS DATE)
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
        window,
        "liquidation prices recomputed from entry, leverage, side and bracket match",
        offending,
        offending["created_at"],
        levels_checked=frame["created_at"].map(_as_date).value_counts().to_dict(),
    )


# The numeric columns each audited model table must hold non-negative (keys and owning time
# columns are the table registry's, ``warehouse.TABLES``).
NON_NEGATIVE_COLUMNS: dict[str, tuple[str, ...]] = {
    "level_openings": ("notional_usd", "entry_price", "liq_price"),
    "level_consumptions": ("consumed_usd",),
    "candle_ledger": ("opened_usd", "consumed_usd", "closed_usd", "active_usd"),
    "snapshot_segments": ("weight", "consumed_usd"),
    "snapshot_segments_by_leverage": ("weight", "consumed_usd"),
    "level_closeouts": (),
}


# docs/model.md: level_id = epoch_minutes(created_at) × 1000 + side code (0 long, 1 short) × 100
# + tier index.
# A snapshot segment spans candles of one day (the day that owns it).
_WITHIN_ONE_DAY = "first_ts <= last_ts AND CAST(last_ts AS DATE) = CAST(first_ts AS DATE)"
ROW_RULES: dict[str, str] = {
    "level_openings": "level_id // 1000 = epoch_ms(created_at) // 60000 "
    "AND level_id % 1000 // 100 = CASE side WHEN 'long' THEN 0 ELSE 1 END",
    "snapshot_segments": _WITHIN_ONE_DAY,
    "snapshot_segments_by_leverage": _WITHIN_ONE_DAY,
    # A closed-out level was opened by then and is never also consumed.
    "level_closeouts": """
        EXISTS (SELECT 1 FROM level_openings o WHERE o.symbol = $symbol
                AND o.level_id = level_closeouts.level_id
                AND o.created_at <= level_closeouts.closed_at)
        AND NOT EXISTS (SELECT 1 FROM level_consumptions k WHERE k.symbol = $symbol
                        AND k.level_id = level_closeouts.level_id)""",
}


def values_valid_and_keys_unique(
    conn: duckdb.DuckDBPyConnection, window: AuditWindow, tables: tuple[str, ...]
) -> AuditResult:
    """No NULL, NaN or negative notional/price, sides are long/short, the ``ROW_RULES`` hold,
    and no duplicate key among the rows of any one day of the window (each day is audited as
    if alone; duplicates across days are what the next paragraph covers).

    Duplicates are found among the rows whose key hashes collide (one 64-bit value per row
    groups 4x faster than the key's columns: 1.6 s -> 0.4 s for a synthetic day's 1.6 M
    by-leverage cells), then confirmed on the key itself, so a hash collision is never reported.

    Level ids are unique across days too: an opening's id must encode its creation minute and
    side (``ROW_RULES``), so openings of different days never share one; a level consumed
    on two days fails ``consumed_at_first_crossing`` (a consumed level leaves the end state
    every later day starts from).
    """
    frames = []
    for table in tables:
        stored = warehouse.TABLES[table]
        in_window = stored.owned("$start", "$end")
        owning_day = stored.owning_day()
        bad_values = [
            f"{column} IS NULL OR isnan({column}) OR {column} < 0"
            for column in NON_NEGATIVE_COLUMNS[table]
        ]
        if "side" in stored.column_names:
            bad_values.append("side IS NULL OR side NOT IN ('long', 'short')")
        bad_value = " OR ".join(bad_values) or "false"
        key = ", ".join(stored.key_within_symbol)
        row_rule = ROW_RULES.get(table, "true")
        overlapping = ""
        if stored.time_column == "first_ts":
            # Two segments of one cell covering the same candle would be two view rows.
            cell = ", ".join(column for column in stored.key_within_symbol if column != "first_ts")
            overlapping = f"""
                UNION ALL
                SELECT '{table}', 'overlapping segments', CAST(({key}) AS VARCHAR),
                       {owning_day}
                FROM (
                    SELECT *, lead(first_ts) OVER (PARTITION BY {cell}, {owning_day}
                                                 ORDER BY first_ts) AS next
                    FROM {table} WHERE symbol = $symbol AND {in_window}
                )
                WHERE next <= last_ts"""
        frames.append(
            _query(
                conn,
                f"""
                SELECT '{table}' AS table_name, 'bad value' AS problem,
                       CAST(({key}) AS VARCHAR) AS key, {owning_day} AS day
                FROM {table}
                WHERE symbol = $symbol AND {in_window}
                  AND ({bad_value} OR NOT ({row_rule}))
                UNION ALL
                SELECT '{table}', 'duplicate key (' || count(*) || ' rows)',
                       CAST(({key}) AS VARCHAR), min({owning_day})
                FROM {table}
                WHERE symbol = $symbol AND {in_window}
                  AND hash({key}) IN (
                      SELECT hash({key}) AS key_hash FROM {table}
                      WHERE symbol = $symbol AND {in_window}
                      GROUP BY key_hash HAVING count(*) > 1)
                GROUP BY {key}, {owning_day}
                HAVING count(*) > 1
                {overlapping}
                """,
                window,
            )
        )
    offending = pd.concat(frames, ignore_index=True)
    return _result(
        window, "no NULL/NaN/negative values and no duplicate keys", offending, offending["day"]
    )
