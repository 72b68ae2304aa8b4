"""Invariants of freshly computed model days, verified in memory BEFORE anything is written.

The SQL asset checks (``model_audit``) audit the stored rows afterwards; this module enforces
the rules that can be decided from the computed frames and the stored previous day, so a day
breaking them never reaches the file: non-negative finite values and long/short sides, unique
keys (level ids across the run's days), the ledger identity per candle and side chained from the
stored previous day's last ledger row, and each day's state equal to its last ledger row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from liqheat_pipeline.lib.model_audit import ABSOLUTE_TOLERANCE_USD, RELATIVE_TOLERANCE, TABLE_RULES
from liqheat_pipeline.lib.model_store import DayResult

SIDES = ("long", "short")
# Problems listed in the error (the count covers all of them).
SHOWN_PROBLEMS = 10


class ModelInvariantError(RuntimeError):
    """Computed model days break an invariant; nothing of them was written."""


def verify_days(
    symbol: str, results: Sequence[DayResult], opening: Mapping[str, float] | None
) -> None:
    """Raise ModelInvariantError naming every broken rule of ``results``.

    ``opening`` is the active USD per side the first day must start from: the stored ledger's
    last row before it, or zeros on the first day of the history; None when the previous day has
    no stored ledger row (itself a broken chain).
    """
    problems: list[str] = []
    for table, rules in TABLE_RULES.items():
        frame = _table(results, table)
        problems += _bad_values(table, frame, rules.non_negative)
        duplicated = frame.duplicated(list(rules.key), keep="first")
        for key in frame.loc[duplicated, list(rules.key)].head(SHOWN_PROBLEMS).itertuples(False):
            problems.append(f"{table}: duplicate key {tuple(key)}")
    problems += _chain(results, opening)
    if problems:
        shown = "\n".join(f"  {problem}" for problem in problems[:SHOWN_PROBLEMS])
        more = len(problems) - SHOWN_PROBLEMS
        raise ModelInvariantError(
            f"{symbol}: the computed days {results[0].day}…{results[-1].day} break "
            f"{len(problems)} model invariant(s); nothing was written:\n{shown}"
            + (f"\n  … and {more} more" if more > 0 else "")
        )


def _table(results: Sequence[DayResult], table: str) -> pd.DataFrame:
    if table == "model_state":
        frames = [result.state_levels.assign(day=result.day) for result in results]
    else:
        frames = [result.tables[table] for result in results]
    return pd.concat(frames, ignore_index=True)


def _bad_values(table: str, frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    problems = []
    for column in columns:
        values = frame[column].to_numpy(dtype=float)
        bad = ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            problems.append(
                f"{table}.{column}: {int(bad.sum())} NaN, infinite or negative value(s), "
                f"first {values[first]!r} in row {first}"
            )
    sides = frame["side"].astype(str)
    unknown = ~sides.isin(SIDES)
    if unknown.any():
        problems.append(f"{table}.side: {sides[unknown].iloc[0]!r} is not long/short")
    return problems


def _close(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.abs(a - b) <= RELATIVE_TOLERANCE * scale + ABSOLUTE_TOLERANCE_USD


def _chain(results: Sequence[DayResult], opening: Mapping[str, float] | None) -> list[str]:
    """Ledger identity per candle and side from ``opening`` on, and state = last ledger row."""
    if opening is None:
        return [f"{results[0].day}: continuity: the previous day has no stored ledger rows"]
    problems = []
    previous = {side: float(opening.get(side, 0.0)) for side in SIDES}
    for result in results:
        ledger = result.tables["candle_ledger"]
        state = result.state_levels
        for side in SIDES:
            rows = ledger[ledger["side"] == side].sort_values("ts", kind="stable")
            active = rows["active_usd"].to_numpy(dtype=float)
            flows = (rows["opened_usd"] - rows["consumed_usd"] - rows["closed_usd"]).to_numpy(
                dtype=float
            )
            before = np.concatenate([[previous[side]], active[:-1]])
            # The audit's scale: the largest magnitude among the terms of the identity.
            scale = np.abs(rows[["opened_usd", "consumed_usd", "closed_usd"]].to_numpy(float))
            scale = np.maximum(
                np.abs(before), np.maximum(np.abs(active), scale.max(axis=1, initial=0))
            )
            broken = ~_close(before + flows, active, scale)
            if len(rows) and broken[0]:
                problems.append(
                    f"{result.day} {side}: continuity with the previous day: the first candle "
                    f"starts from {active[0] - flows[0]!r} USD, the stored history ends at "
                    f"{previous[side]!r} USD"
                )
            for position in np.flatnonzero(broken[1:])[:SHOWN_PROBLEMS] + 1:
                problems.append(
                    f"{result.day} {side}: ledger identity broken at {rows['ts'].iloc[position]}: "
                    f"{before[position]!r} + {flows[position]!r} != {active[position]!r}"
                )
            closing = float(state.loc[state["side"].astype(str) == side, "remaining_usd"].sum())
            last = float(active[-1]) if len(rows) else previous[side]
            if not _close(np.array(closing), np.array(last), np.array(abs(last))):
                problems.append(
                    f"{result.day} {side}: end-of-day state holds {closing!r} USD, "
                    f"the last ledger row {last!r} USD"
                )
            previous[side] = last
    return problems
