"""DuckDB storage of the model: market input windows, carried end-of-day state, daily outputs.

Pure DuckDB + pandas (no Dagster): the pipeline asset converts between these plain frames/dicts
and the engine's objects. The end-of-day state is not stored as such: it is rebuilt from the
stored outputs with the engine's replay (``lib/engine/replay.py``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.days import day_end, day_start, naive_utc_now
from liqheat_pipeline.lib.engine.replay import StateReplayError, remaining_at_end

# The engine's output tables written per day, with the column that decides which day owns a row
# (the table registry's).
OUTPUT_TIME_COLUMNS: dict[str, str] = {
    table: warehouse.TABLES[table].time_column
    for table in (
        "level_openings",
        "level_consumptions",
        "level_closeouts",
        "candle_ledger",
        "snapshot_segments",
        "snapshot_segments_by_leverage",
    )
}

# The candle columns the engine reads.
MARKET_CANDLE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_volume",
)


@dataclass(frozen=True)
class MarketWindow:
    """Raw inputs of one symbol for whole days: candles, open interest (both midnights
    included) and mark-price candles (empty when the symbol has none)."""

    candles: pd.DataFrame
    open_interest: pd.DataFrame
    mark_price_candles: pd.DataFrame


def load_market(
    conn: duckdb.DuckDBPyConnection, symbol: str, first_day: date, end_day: date
) -> MarketWindow:
    """Read candles, open interest (inclusive of both midnights) and mark candles for the days."""
    start, end = day_start(first_day), day_start(end_day)
    candles = conn.execute(
        f"SELECT {', '.join(MARKET_CANDLE_COLUMNS)} FROM candles WHERE symbol = ? "
        "AND open_time >= ? "
        "AND open_time < ? ORDER BY open_time",
        [symbol, start, end],
    ).fetchdf()
    open_interest = conn.execute(
        "SELECT ts, open_interest FROM open_interest WHERE symbol = ? AND ts >= ? AND ts <= ? "
        "ORDER BY ts",
        [symbol, start, end],
    ).fetchdf()
    mark = conn.execute(
        "SELECT open_time, high, low FROM mark_price_candles WHERE symbol = ? "
        "AND open_time >= ? AND open_time < ? ORDER BY open_time",
        [symbol, start, end],
    ).fetchdf()
    return MarketWindow(candles, open_interest, mark)


def missing_inputs(conn: duckdb.DuckDBPyConnection, symbol: str, days: Sequence[date]) -> list[str]:
    """Human-readable list of days whose candles or own open-interest partition are absent
    (decided in SQL for the whole range, before its first chunk is loaded)."""
    start, end = day_start(days[0]), day_end(days[-1])
    with_candles = _days(
        conn,
        "SELECT DISTINCT CAST(open_time AS DATE) FROM candles WHERE symbol = ? "
        "AND open_time >= ? AND open_time < ?",
        [symbol, start, end],
    )
    # Day D owns the snapshots in (D 00:00, D+1 00:00]: one microsecond back lands in D.
    with_open_interest = _days(
        conn,
        "SELECT DISTINCT CAST(ts - INTERVAL 1 MICROSECOND AS DATE) FROM open_interest "
        "WHERE symbol = ? AND ts > ? AND ts <= ?",
        [symbol, start, end],
    )
    problems = []
    for day in days:
        if day not in with_candles:
            problems.append(f"{day}: no candles (materialize the `candles` partition {day})")
        if day not in with_open_interest:
            problems.append(
                f"{day}: no open-interest snapshots in ({day_start(day):%Y-%m-%d %H:%M}, "
                f"{day_end(day):%Y-%m-%d %H:%M}] (materialize the `open_interest` partition {day})"
            )
    return problems


def _days(conn: duckdb.DuckDBPyConnection, sql: str, params: list) -> set[date]:
    return {row[0] for row in conn.execute(sql, params).fetchall()}


@dataclass(frozen=True)
class StoredState:
    """End-of-day state rebuilt from the stored rows: the engine's metadata dict and its levels
    frame."""

    day: date
    config_hash: str
    metadata: dict[str, Any]
    levels: pd.DataFrame


class StateCorruptionError(RuntimeError):
    """The stored rows do not rebuild the end state their run record announces."""


# The levels active at the end of a day (the view model_state) opened since the chain's first
# day, in level_id order, the order the engine keeps them in; the tier index is the last two
# digits of the level id (docs/model.md).
_ACTIVE_LEVELS = """
    SELECT level_id, created_at, side, leverage, CAST(level_id % 100 AS INTEGER) AS tier_index,
           entry_price, liq_price, price_bucket, notional_usd
    FROM model_state WHERE symbol = $symbol AND day = $day AND created_at >= $start
    ORDER BY level_id
"""


def _chain_days(conn: duckdb.DuckDBPyConnection, symbol: str, through: date) -> list[tuple]:
    """Run records (day, config_hash, state_metadata) from the symbol's first stored day while
    the days are consecutive, through ``through`` at most: the days whose end state the stored
    rows rebuild (each day starts from the one before; the first started empty)."""
    rows = conn.execute(
        "SELECT day, config_hash, state_metadata FROM model_runs WHERE symbol = ? AND day <= ? "
        "ORDER BY day",
        [symbol, through],
    ).fetchall()
    chain = rows[:1]
    for row in rows[1:]:
        if row[0] != chain[-1][0] + timedelta(days=1):
            break
        chain.append(row)
    return chain


def load_state(conn: duckdb.DuckDBPyConnection, symbol: str, day: date) -> StoredState | None:
    """The engine's state at the end of ``day``: the levels of the view model_state, with their
    remaining notional replayed exactly from the stored closure scales of every day since the
    first (lib/engine/replay.py); None when ``day`` is not stored or a day before it is
    missing.

    Raises StateCorruptionError when the rows do not rebuild the state the day's run record
    announces."""
    chain = _chain_days(conn, symbol, day)
    if not chain or chain[-1][0] != day:
        return None
    config_hash, metadata = chain[-1][1], json.loads(chain[-1][2])
    start = day_start(chain[0][0])
    levels = conn.execute(_ACTIVE_LEVELS, {"symbol": symbol, "day": day, "start": start}).fetchdf()
    scales = conn.execute(
        "SELECT ts, closure_scale FROM candle_ledger WHERE symbol = $symbol AND side = 'long' "
        "AND ts >= $start AND ts < $end ORDER BY ts",
        {"symbol": symbol, "start": start, "end": day_end(day)},
    ).fetchnumpy()

    def corrupt(problem: str) -> StateCorruptionError:
        return StateCorruptionError(
            f"{symbol}: the stored rows do not rebuild the model state at the end of {day}: "
            f"{problem}; re-materialize the model from the first day of the history."
        )

    try:
        levels["remaining_usd"] = remaining_at_end(
            scales["ts"],
            scales["closure_scale"],
            levels["created_at"].to_numpy(),
            levels["notional_usd"].to_numpy(),
        )
    except StateReplayError as error:
        raise corrupt(str(error)) from error
    if len(levels) != metadata.get("active_levels"):
        raise corrupt(
            f"{len(levels)} levels are active, its run record announces "
            f"{metadata.get('active_levels')}"
        )
    return StoredState(day, config_hash, metadata, levels)


def last_stored_day(conn: duckdb.DuckDBPyConnection, symbol: str, before: date) -> date | None:
    """The latest day before ``before`` whose state the stored rows rebuild (to tell the user
    where to resume)."""
    chain = _chain_days(conn, symbol, before - timedelta(days=1))
    return chain[-1][0] if chain else None


# One stored day's run record as a version stamp: (day, config_hash, computed_at).
RunStamp = tuple[date, str, datetime]


class HistoryChangedError(RuntimeError):
    """Another run rewrote the stored days this run depends on while it computed."""


def history_stamps(
    conn: duckdb.DuckDBPyConnection, symbol: str, since: date
) -> tuple[RunStamp, ...]:
    """Run records of every stored day from ``since`` on: a run reads them before computing and
    ``write_days`` compares them again inside its transaction (optimistic concurrency)."""
    rows = conn.execute(
        "SELECT day, config_hash, computed_at FROM model_runs WHERE symbol = ? AND day >= ? "
        "ORDER BY day",
        [symbol, since],
    ).fetchall()
    return tuple(rows)


def ledger_closing(
    conn: duckdb.DuckDBPyConnection, symbol: str, before: date
) -> dict[str, float] | None:
    """Active USD per side of the last stored ledger row before ``before`` (None: no rows)."""
    rows = conn.execute(
        "SELECT side, arg_max(active_usd, ts) FROM candle_ledger WHERE symbol = ? AND ts < ? "
        "GROUP BY side",
        [symbol, day_start(before)],
    ).fetchall()
    return dict(rows) if rows else None


@dataclass
class DayResult:
    """One day's engine output in storable form."""

    day: date
    tables: Mapping[str, pd.DataFrame]  # keyed by OUTPUT_TIME_COLUMNS' tables
    state_metadata: dict[str, Any]
    state_levels: pd.DataFrame
    stats: dict[str, Any]
    config_hash: str
    assumptions_json: str
    bucket_size: float | None
    last_candle_time: datetime | None


def write_days(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    results: Sequence[DayResult],
    brackets: pd.DataFrame,
    *,
    expected_history: tuple[RunStamp, ...],
    clear_through: date | None = None,
) -> dict[str, int]:
    """Replace the days' rows of every model table (call inside one transaction).

    ``results`` must be consecutive days; rows are inserted in time order. ``expected_history``
    is ``history_stamps`` from the day before the first result, as read before computing: if the
    stored records differ now, another run wrote meanwhile and nothing is written
    (HistoryChangedError). ``clear_through`` (after the last result) also deletes the stored
    rows of the days after the results through that day. Returns rows written per table.
    """
    warehouse.ensure_schema(conn)
    previous_day = results[0].day - timedelta(days=1)
    current = history_stamps(conn, symbol, previous_day)
    if current != expected_history:
        raise HistoryChangedError(_history_change(symbol, expected_history, current))
    start = day_start(results[0].day)
    end = day_end(max(results[-1].day, clear_through or results[-1].day))
    written: dict[str, int] = {}
    for table, time_column in OUTPUT_TIME_COLUMNS.items():
        frame = pd.concat([result.tables[table] for result in results], ignore_index=True)
        if not frame[time_column].is_monotonic_increasing:
            frame = frame.sort_values(time_column, kind="stable", ignore_index=True)
        written[table] = warehouse.replace_rows(
            conn, table, frame, symbol=symbol, start=start, end=end
        )
    written["model_runs"] = warehouse.replace_rows(
        conn, "model_runs", _run_rows(symbol, results), symbol=symbol, start=start, end=end
    )
    # The shipped bracket tables, the same for every symbol and day.
    warehouse.replace_table(conn, "margin_brackets", brackets)
    return written


def _history_change(
    symbol: str, expected: tuple[RunStamp, ...], current: tuple[RunStamp, ...]
) -> str:
    """The conflict message: which days another run wrote, rewrote or deleted."""
    before = {day: (config_hash, computed_at) for day, config_hash, computed_at in expected}
    now = {day: (config_hash, computed_at) for day, config_hash, computed_at in current}
    changed = sorted(day for day in before.keys() | now.keys() if before.get(day) != now.get(day))
    described = ", ".join(
        f"{day} (deleted)"
        if day not in now
        else f"{day} ({'rewritten' if day in before else 'written'} with configuration "
        f"{now[day][0]})"
        for day in changed[:5]
    )
    more = f" and {len(changed) - 5} more day(s)" if len(changed) > 5 else ""
    return (
        f"{symbol}: another run changed the stored model history while this run computed: "
        f"{described}{more}. This run's results start from the history it read before, so "
        f"nothing was written. Re-run once the other run has finished."
    )


def _run_rows(symbol: str, results: Sequence[DayResult]) -> pd.DataFrame:
    computed_at = naive_utc_now()
    return pd.DataFrame(
        {
            "symbol": symbol,
            "day": [result.day for result in results],
            "config_hash": [result.config_hash for result in results],
            "assumptions": [result.assumptions_json for result in results],
            "bucket_size": [result.bucket_size for result in results],
            "last_candle_time": pd.to_datetime(
                [result.last_candle_time for result in results]
            ).astype("datetime64[ns]"),
            "stats": [json.dumps(result.stats, sort_keys=True) for result in results],
            "state_metadata": [
                json.dumps(result.state_metadata, sort_keys=True) for result in results
            ],
            "computed_at": computed_at,
        }
    )
