"""Small hand-made markets for the engine tests, and running the engine chunk by chunk."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.engine.brackets import bracket_table_frame
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.engine.run import MarketSeries, ModelOutput, run_model
from liqheat_pipeline.lib.engine.state import ModelState
from liqheat_pipeline.lib.model.store import (
    OUTPUT_TIME_COLUMNS,
    DayResult,
    history_stamps,
    load_state,
    write_days,
)

START = pd.Timestamp("2025-12-01 00:00")
OUTPUT_TABLES = (
    "level_openings",
    "level_consumptions",
    "candle_ledger",
    "heatmap_snapshots",
    "heatmap_snapshots_by_leverage",
)


def candle_frame(
    ohlc: Sequence[Sequence[float]],
    *,
    start: pd.Timestamp = START,
    interval_minutes: int = 5,
    volume: Sequence[float] | float = np.nan,
    quote_volume: Sequence[float] | float = np.nan,
    taker_buy_volume: Sequence[float] | float = np.nan,
    times: Sequence[pd.Timestamp] | None = None,
) -> pd.DataFrame:
    """Candles from (open, high, low, close) rows, one per interval from ``start``."""
    ohlc = np.asarray(ohlc, dtype=float).reshape(-1, 4)
    n = len(ohlc)
    if times is None:
        times = start + pd.to_timedelta(np.arange(n) * interval_minutes, unit="min")
    return pd.DataFrame(
        {
            "open_time": pd.DatetimeIndex(times),
            "open": ohlc[:, 0],
            "high": ohlc[:, 1],
            "low": ohlc[:, 2],
            "close": ohlc[:, 3],
            "volume": np.broadcast_to(np.asarray(volume, float), n),
            "quote_volume": np.broadcast_to(np.asarray(quote_volume, float), n),
            "taker_buy_volume": np.broadcast_to(np.asarray(taker_buy_volume, float), n),
        }
    )


def oi_frame(
    values: Sequence[float], *, start: pd.Timestamp = START, interval_minutes: int = 5
) -> pd.DataFrame:
    """Open interest at start + i × interval; NaN entries are left out (missing snapshots)."""
    values = np.asarray(values, dtype=float)
    times = start + pd.to_timedelta(np.arange(len(values)) * interval_minutes, unit="min")
    keep = ~np.isnan(values)
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex(times)[keep],
            "open_interest": values[keep],
            "open_interest_value": values[keep] * 100.0,
        }
    )


@dataclass
class Combined:
    """Outputs of several engine runs, concatenated, with the final state and summed stats."""

    frames: dict[str, pd.DataFrame]
    state: ModelState
    stats: dict
    outputs: list[ModelOutput]


def run_in_chunks(
    symbol: str,
    candles: pd.DataFrame,
    open_interest: pd.DataFrame,
    config: ModelConfig,
    *,
    splits: Sequence[int] = (),
    marks: pd.DataFrame | None = None,
    store: Path | None = None,
) -> Combined:
    """Run the engine over ``candles`` cut before the given candle positions, carrying the
    state; with ``store``, the runs are the UTC days (as the pipeline's), each is written to
    that DuckDB file and the next one starts from the state rebuilt from it."""
    candles = candles.sort_values("open_time").reset_index(drop=True)
    step = pd.Timedelta(minutes=config.interval_minutes)
    if store is not None:
        splits = day_starts(candles)
    bounds = [0, *sorted(set(splits)), len(candles)]
    state, outputs = None, []
    for first, stop in itertools.pairwise(bounds):
        if first == stop:
            continue
        chunk = candles.iloc[first:stop]
        start_time, end_time = chunk["open_time"].iloc[0], chunk["open_time"].iloc[-1] + step
        oi = open_interest[(open_interest["ts"] >= start_time) & (open_interest["ts"] <= end_time)]
        chunk_marks = None
        if marks is not None:
            chunk_marks = marks[marks["open_time"].isin(chunk["open_time"])]
        market = MarketSeries.from_frames(chunk, oi, chunk_marks)
        if state is not None and store is not None:
            state = state_through_duckdb(symbol, outputs, store)
        output = run_model(symbol, market, config, state)
        outputs.append(output)
        state = output.state
    combined = combine(outputs)
    if store is not None:
        # The last day is stored too, and the final state is the one rebuilt from the file.
        combined.state = state_through_duckdb(symbol, outputs, store)
    return combined


def day_starts(candles: pd.DataFrame) -> list[int]:
    """Positions of the candles (in time order) that start a UTC day, the first one excepted."""
    day = candles["open_time"].sort_values().dt.floor("D")
    return np.flatnonzero(day.ne(day.shift()).to_numpy())[1:].tolist()


def combine(outputs: Sequence[ModelOutput]) -> Combined:
    """Consecutive runs' outputs as one: frames concatenated, stats summed, last state."""
    frames = {
        table: pd.concat([getattr(output, table) for output in outputs], ignore_index=True)
        for table in OUTPUT_TABLES
    }
    stats = {key: sum(output.stats[key] for output in outputs) for key in outputs[0].stats}
    return Combined(frames=frames, state=outputs[-1].state, stats=stats, outputs=list(outputs))


def state_through_duckdb(symbol: str, outputs: Sequence[ModelOutput], path: Path) -> ModelState:
    """Write the last run's outputs (one UTC day) to a real DuckDB file as the pipeline does
    (``write_days``), rebuild the state from the stored rows in a new connection
    (``load_state``) and restore it."""
    output = outputs[-1]
    day = pd.Timestamp(output.candle_ledger["ts"].iloc[0]).date()
    result = DayResult(
        day=day,
        tables={table: getattr(output, table) for table in OUTPUT_TIME_COLUMNS},
        state_metadata=output.state.metadata(),
        state_levels=output.state.levels_frame(),
        stats=dict(output.stats),
        config_hash=output.state.config_hash,
        assumptions_json="{}",
        bucket_size=output.state.bucket_size,
        last_candle_time=output.state.last_candle_time,
    )
    with warehouse.connect(path) as conn:
        warehouse.ensure_schema(conn)
        history = history_stamps(conn, symbol, day - timedelta(days=1))
        write_days(conn, symbol, [result], bracket_table_frame(), expected_history=history)
    with warehouse.connect(path, read_only=True) as conn:
        stored = load_state(conn, symbol, day)
    return ModelState.restore(stored.metadata, stored.levels)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as strings, for comparisons with plain frames."""
    out = frame.copy()
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(str)
    return out


SEGMENT_TABLES = ("candle_ledger", "snapshot_segments", "snapshot_segments_by_leverage")
SNAPSHOT_VIEWS = ("heatmap_snapshots", "heatmap_snapshots_by_leverage")


def views_minus_engine_cells(outputs: Sequence[ModelOutput], path: Path) -> dict[str, int]:
    """Store the outputs' ledgers and segments in a DuckDB file and count, per snapshot view,
    the rows that differ (bit for bit, both ways) from the engine's own dense cells."""
    differing = {}
    with warehouse.connect(path) as conn:
        warehouse.ensure_schema(conn)
        for table in SEGMENT_TABLES:
            frame = plain(pd.concat([getattr(output, table) for output in outputs]))
            conn.register("incoming", frame)
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming").fetchall()
            conn.unregister("incoming")
        for view in SNAPSHOT_VIEWS:
            cells = plain(pd.concat([getattr(output, view) for output in outputs]))
            conn.register("cells", cells)
            columns = ", ".join(cells.columns)
            [(count, view_rows)] = conn.execute(
                f"SELECT (SELECT count(*) FROM ((SELECT {columns} FROM {view} EXCEPT ALL "
                f"SELECT {columns} FROM cells) UNION ALL (SELECT {columns} FROM cells "
                f"EXCEPT ALL SELECT {columns} FROM {view}))), (SELECT count(*) FROM {view})"
            ).fetchall()
            differing[view] = count + abs(view_rows - len(cells))
            conn.unregister("cells")
    return differing
