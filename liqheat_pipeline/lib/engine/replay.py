"""A carried level's remaining notional rebuilt from the stored ledger, bit for bit.

Between two runs the engine carries each active level's remaining notional ``r``. Within a run
(closures.py) a carried level has weight ``w = r``, a level opened at candle k has
``w = opening × (1 / S_before_k)``, and at the run's end ``r = w × S_end``; S, the closure
scale, starts at 1 in every run and is stored after each candle as
``candle_ledger.closure_scale``. So a level still active after a stretch of runs has
``r = (((opening × (1 / S_before_k)) × S_end_1) × S_end_2) …``: the same products of the same
doubles, in the same order, as the engine's.

Runs are the pipeline's: one per UTC day (``lib/model/days.run_days``), cut after a candle that
leaves S below ``RENORMALISE_BELOW`` (run.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from liqheat_pipeline.lib.engine.closures import RENORMALISE_BELOW

_NS_PER_DAY = 86_400_000_000_000


class StateReplayError(ValueError):
    """A level's creation is not one of the stored candles."""


def run_starts(candle_time: np.ndarray, closure_scale: np.ndarray) -> np.ndarray:
    """Whether each candle (in time order) starts an engine run: the first candle of a UTC day,
    or the candle after one whose scale fell below RENORMALISE_BELOW."""
    times = candle_time.astype("datetime64[ns]").astype(np.int64)
    starts = np.ones(len(times), dtype=bool)
    if len(times) > 1:
        new_day = times[1:] // _NS_PER_DAY != times[:-1] // _NS_PER_DAY
        starts[1:] = new_day | (closure_scale[:-1] < RENORMALISE_BELOW)
    return starts


def remaining_at_end(
    candle_time: np.ndarray,
    closure_scale: np.ndarray,
    created_at: np.ndarray,
    notional_usd: np.ndarray,
) -> np.ndarray:
    """Remaining notional after the last candle of levels opened at these candles and still
    active then. ``candle_time``/``closure_scale``: every candle since the first run, in time
    order, with S after it; ``created_at`` in time order."""
    times = candle_time.astype("datetime64[ns]")
    scale = np.asarray(closure_scale, dtype=np.float64)
    starts = run_starts(times, scale)
    run_of_candle = np.cumsum(starts) - 1
    run_last_candle = np.append(np.flatnonzero(starts)[1:], len(times)) - 1
    scale_before = np.where(starts, 1.0, np.concatenate([[1.0], scale[:-1]]))

    created = pd.to_datetime(created_at).to_numpy("datetime64[ns]")
    candle = np.minimum(np.searchsorted(times, created), max(len(times) - 1, 0))
    off_grid = np.ones(len(created), bool) if not len(times) else times[candle] != created
    if off_grid.any():
        raise StateReplayError(
            f"a level was opened at {pd.Timestamp(created[off_grid][0])}, "
            "which is not a stored ledger candle"
        )
    if (np.diff(created) < np.timedelta64(0)).any():
        raise ValueError("created_at must be in time order")
    remaining = np.asarray(notional_usd, dtype=np.float64) * (1.0 / scale_before[candle])
    # Levels opened in runs 0..j, in creation order, are the first opened_by[j] ones.
    opened_by = np.searchsorted(run_of_candle[candle], np.arange(len(run_last_candle)), "right")
    for run, last in enumerate(run_last_candle):
        remaining[: opened_by[run]] *= scale[last]  # the engine's r = w × S at the run's end
    return remaining
