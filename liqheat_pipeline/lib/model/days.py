"""Run the engine over consecutive UTC days, carrying the state from one day to the next.

No Dagster here: the pipeline asset reads the inputs and the previous state with
``lib.model.store``, calls ``starting_state`` and ``run_chunks`` (``run_days`` per chunk of
days), and writes each chunk's results before the next chunk is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.engine.market import split_by_day
from liqheat_pipeline.lib.engine.run import run_model
from liqheat_pipeline.lib.engine.state import LEVEL_COLUMNS, ModelState
from liqheat_pipeline.lib.model.store import (
    OUTPUT_TIME_COLUMNS,
    DayResult,
    MarketWindow,
    StoredState,
)


class PreviousStateError(RuntimeError):
    """The day before the requested days has no usable stored state; the message says why
    and how to fix it."""


def starting_state(
    symbol: str,
    first_day: date,
    history_start: date,
    stored: StoredState | None,
    config: ModelConfig,
    *,
    last_computed_day: date | None,
    latest_stored_day: date | None,
) -> ModelState | None:
    """The state day ``first_day`` starts from: empty on the first day of the history, else
    the stored end state of the previous day, computed with the same configuration.

    ``last_computed_day`` is the latest stored day before ``first_day``, ``latest_stored_day``
    the latest of the whole history: the range the messages suggest runs through it, so that
    no later day keeps a state the fix changes.
    """
    if first_day <= history_start:
        return None
    previous_day = first_day - timedelta(days=1)
    through = max(first_day, latest_stored_day or first_day)
    if stored is None:
        resume = history_start if last_computed_day is None else last_computed_day + timedelta(1)
        raise PreviousStateError(
            f"{symbol}: no stored model state at the end of {previous_day}, which {first_day} "
            f"must start from (after the first day of the history, {history_start}, the model "
            f"never restarts empty). Materialize the days from {resume} on first, e.g. "
            f"`dagster asset materialize -m liqheat_pipeline.definitions --select "
            f"'group:{symbol.lower()}' --partition-range {resume}...{through}`, or select "
            f"those partitions in the UI."
        )
    current = config.config_hash(symbol)
    if stored.config_hash != current:
        raise PreviousStateError(
            f"{symbol}: the model configuration changed. The state at the end of "
            f"{previous_day} was computed with configuration {stored.config_hash}, the current "
            f"one (LIQHEAT_MODEL_CONFIG or the defaults) is {current}; results of two "
            f"configurations cannot be chained. Re-materialize the model from the first day "
            f"of the history, e.g. `dagster asset materialize -m liqheat_pipeline.definitions "
            f"--select 'group:{symbol.lower()}' --partition-range {history_start}...{through}`."
        )
    return ModelState.restore(stored.metadata, stored.levels)


class LaterDaysError(RuntimeError):
    """Days stored after the requested ones start from a state this run would change."""


def check_later_days(
    symbol: str,
    first_day: date,
    last: DayResult,
    stored_last: StoredState | None,
    later_days: Sequence[date],
) -> None:
    """Refuse to rewrite days that later stored days depend on, unless the end state stays.

    Days after the run start from the state at the end of its last day; when the recomputed
    state equals the stored one (same configuration, same levels), they stay valid. Otherwise
    they would keep state derived from the old days, so nothing may be written: the user must
    recompute through the last stored day.
    """
    if not later_days or same_state(last, stored_last):
        return
    shown = (
        ", ".join(str(day) for day in later_days)
        if len(later_days) <= 5
        else f"{later_days[0]}…{later_days[-1]} ({len(later_days)} days)"
    )
    if stored_last is None:
        changed = f"no state is stored for {last.day}"
    elif stored_last.config_hash != last.config_hash:
        changed = "the configuration changed"
    else:
        changed = "the recomputed levels differ from the stored ones"
    raise LaterDaysError(
        f"{symbol}: days {shown} are stored after {last.day} and start from its end-of-day "
        f"state, which this run would change ({changed}); re-materializing {first_day}…"
        f"{last.day} alone would leave them derived from the old state, so nothing was "
        f"written. Recompute through the last stored day in one run, e.g. `dagster asset "
        f"materialize -m liqheat_pipeline.definitions --select 'group:{symbol.lower()}' "
        f"--partition-range {first_day}...{later_days[-1]}`, or select those partitions in the UI."
    )


def same_state(result: DayResult, stored: StoredState | None) -> bool:
    """Whether the computed end-of-day state is exactly the stored one."""
    if stored is None or stored.config_hash != result.config_hash:
        return False
    # Compare the metadata as stored (JSON) and every level column exactly.
    if json.loads(json.dumps(result.state_metadata)) != stored.metadata:
        return False
    left, right = result.state_levels, stored.levels
    if len(left) != len(right):
        return False
    for column in LEVEL_COLUMNS:
        a, b = left[column].to_numpy(), right[column].to_numpy()
        if column == "created_at":
            a, b = (pd.to_datetime(v).to_numpy("datetime64[ns]") for v in (a, b))
        elif column == "side":
            a, b = a.astype(str), b.astype(str)
        if not np.array_equal(a, b):
            return False
    return True


def run_days(
    symbol: str,
    days: Sequence[date],
    market: MarketWindow,
    config: ModelConfig,
    state: ModelState | None,
    *,
    on_day: Callable[[DayResult], None] | None = None,
) -> list[DayResult]:
    """Run the engine day by day, each day from the previous day's end state (in memory);
    ``on_day`` sees each day's result as soon as it is computed (progress reports)."""
    config_hash = config.config_hash(symbol)
    assumptions_json = config.assumptions_json(symbol)
    marks = market.mark_price_candles
    daily = split_by_day(market.candles, market.open_interest, marks if len(marks) else None)
    found = [np.datetime64(day, "D") for day, _ in daily]
    if found != [np.datetime64(day, "D") for day in days]:
        raise ValueError(f"{symbol}: candles cover days {found}, expected {list(days)}")
    results = []
    for day, (_, series) in zip(days, daily, strict=True):
        output = run_model(symbol, series, config, state)
        state = output.state
        results.append(
            DayResult(
                day=day,
                tables={table: getattr(output, table) for table in OUTPUT_TIME_COLUMNS},
                state_metadata=state.metadata(),
                state_levels=state.levels_frame(),
                stats=dict(output.stats),
                config_hash=config_hash,
                assumptions_json=assumptions_json,
                bucket_size=state.bucket_size,
                last_candle_time=state.last_candle_time,
            )
        )
        if on_day is not None:
            on_day(results[-1])
    return results


def chunks_of(days: Sequence[date], chunk_days: int) -> list[list[date]]:
    """Consecutive runs of at most ``chunk_days`` days, in order."""
    return [list(days[i : i + chunk_days]) for i in range(0, len(days), chunk_days)]


def state_after(result: DayResult) -> ModelState:
    """The engine state at the end of ``result``'s day, rebuilt from its storable form (as the
    next run rebuilds it from the stored rows)."""
    return ModelState.restore(result.state_metadata, result.state_levels)


def run_chunks(
    symbol: str,
    chunks: Iterable[Sequence[date]],
    load_market: Callable[[Sequence[date]], MarketWindow],
    config: ModelConfig,
    state: ModelState | None,
    *,
    on_chunk: Callable[[list[DayResult]], None] | None = None,
    on_day: Callable[[DayResult], None] | None = None,
) -> DayResult:
    """Run chunk after chunk, each from the previous chunk's end state, and return the last
    day's result. Only one chunk's inputs and results are held at a time: ``on_chunk`` (which
    writes them) sees each chunk's results before the next chunk's inputs are loaded, and must
    not keep them."""
    last = None
    for chunk in chunks:
        results = run_days(symbol, chunk, load_market(chunk), config, state, on_day=on_day)
        if on_chunk is not None:
            on_chunk(results)
        last = results[-1]
        state = state_after(last)
        del results  # before the next chunk's inputs are loaded
    if last is None:
        raise ValueError(f"{symbol}: no days to run")
    return last
