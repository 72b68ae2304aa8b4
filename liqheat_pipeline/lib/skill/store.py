"""Reads the skill inputs of one symbol and window from DuckDB (pure DuckDB; writes nothing).

The ``model_skill`` asset writes its rows itself, through ``warehouse.replace_rows``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb

from liqheat_pipeline.lib.skill.predictors import SkillInputs

SKILL_TABLE = "model_skill"


@dataclass(frozen=True)
class ModelRun:
    """What the skill rows of a window record about the model run of its last day."""

    config_hash: str
    interval: timedelta


def model_runs(
    conn: duckdb.DuckDBPyConnection, symbol: str, first_day: date, end_day: date
) -> dict[date, ModelRun]:
    """The stored model runs of ``symbol`` for the days in [first_day, end_day), by day."""
    rows = conn.execute(
        "SELECT day, config_hash, assumptions FROM model_runs "
        "WHERE symbol = ? AND day >= ? AND day < ? ORDER BY day",
        [symbol, first_day, end_day],
    ).fetchall()
    return {
        day: ModelRun(
            config_hash, timedelta(minutes=int(json.loads(assumptions)["interval_minutes"]))
        )
        for day, config_hash, assumptions in rows
    }


def load_inputs(
    conn: duckdb.DuckDBPyConnection,
    symbol: str,
    start: datetime,
    end: datetime,
    interval: timedelta,
) -> SkillInputs:
    """Candles, ledger and realized buckets starting in [start, end) and the open interest of
    [start, end] (the snapshot at ``end`` closes the last candle)."""
    window = [symbol, start, end]
    candles = conn.execute(
        "SELECT open_time, open, high, low, close FROM candles "
        "WHERE symbol = ? AND open_time >= ? AND open_time < ? ORDER BY open_time",
        window,
    ).fetchdf()
    open_interest = conn.execute(
        "SELECT ts, open_interest FROM open_interest "
        "WHERE symbol = ? AND ts >= ? AND ts <= ? ORDER BY ts",
        window,
    ).fetchdf()
    ledger = conn.execute(
        "SELECT ts, side, consumed_usd FROM candle_ledger "
        "WHERE symbol = ? AND ts >= ? AND ts < ? ORDER BY ts, side",
        window,
    ).fetchdf()
    realized = conn.execute(
        "SELECT bucket_start, bucket_minutes, long_usd, short_usd FROM realized_liquidations "
        "WHERE symbol = ? AND bucket_start >= ? AND bucket_start < ? ORDER BY bucket_start",
        window,
    ).fetchdf()
    return SkillInputs(candles, open_interest, ledger, realized, interval)
