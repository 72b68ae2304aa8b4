"""Invariants of freshly computed model days, verified in memory BEFORE anything is written.

The SQL asset checks (``model_audit``) audit the stored rows afterwards; this module enforces
the rules that can be decided from the computed frames and the stored previous day, so a day
breaking them never reaches the file: non-negative finite values and long/short sides, unique
keys (level ids across the run's days), the ledger identity per candle and side chained from the
stored previous day's last ledger row, and each day's state equal to its last ledger row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.model.audit import (
    ABSOLUTE_TOLERANCE_USD,
    NON_NEGATIVE_COLUMNS,
    RELATIVE_TOLERANCE,
)
from liqheat_pipeline.lib.model.store import DayResult

SIDES = ("long", "short")
# Keys checked for uniqueness before writing: level ids and the ledger's (candle, side). The
# snapshot tables' keys come from a group-by (and are audited in SQL); checking their ~20 M rows
# per month in pandas would cost more than the whole write.
UNIQUE_KEYS = {
    table: warehouse.TABLES[table].key_within_symbol
    for table in ("level_openings", "level_consumptions", "level_closeouts", "candle_ledger")
} | {"model_state": ("level_id",)}
# What must be non-negative: the stored tables' columns, and the computed end state's remaining
# notional (stored as the view model_state).
CHECKED_COLUMNS = NON_NEGATIVE_COLUMNS | {"model_state": ("remaining_usd",)}
# Problems listed in the error (the count covers all of them).
SHOWN_PROBLEMS = 10


class ModelInvariantError(RuntimeError):
    """Computed model days break an invariant; nothing of them was written."""


def verify_days(
    symbol: str, results: Sequence[DayResult], opening: Mapping[str, float] | None
) -> dict[str, float]:
    """Raise ModelInvariantError naming every broken rule of ``results``; else return the active
    USD per side at the end of the last day (what the next chunk of days must start from).

    ``opening`` is the active USD per side the first day must start from: the stored ledger's
    last row before it (or the previous chunk's closing), or zeros on the first day of the
    history; None when the previous day has no stored ledger row (itself a broken chain).
    """
    problems: list[str] = []
    for table, columns in CHECKED_COLUMNS.items():
        frames = _frames(results, table)
        for day, frame in frames:
            problems += [f"{day} {p}" for p in _bad_values(table, frame, columns)]
        if table in UNIQUE_KEYS:
            problems += _duplicates(table, frames, UNIQUE_KEYS[table])
    chain_problems, closing = _chain(results, opening)
    problems += chain_problems
    if problems:
        shown = "\n".join(f"  {problem}" for problem in problems[:SHOWN_PROBLEMS])
        more = len(problems) - SHOWN_PROBLEMS
        raise ModelInvariantError(
            f"{symbol}: the computed days {results[0].day}…{results[-1].day} break "
            f"{len(problems)} model invariant(s); nothing was written:\n{shown}"
            + (f"\n  … and {more} more" if more > 0 else "")
        )
    return closing


def _frames(results: Sequence[DayResult], table: str) -> list[tuple[date, pd.DataFrame]]:
    return [(r.day, r.state_levels if table == "model_state" else r.tables[table]) for r in results]


def _duplicates(
    table: str, frames: Sequence[tuple[date, pd.DataFrame]], key: tuple[str, ...]
) -> list[str]:
    """Keys repeated within the run (across its days, except model_state: one day's levels)."""
    groups = frames if table == "model_state" else [(None, pd.concat([f for _, f in frames]))]
    problems = []
    for day, frame in groups:
        repeated = frame.loc[frame.duplicated(list(key)), list(key)]
        where = f"{day} " if day is not None else ""
        problems += [
            f"{where}{table}: duplicate key {tuple(row)}"
            for row in repeated.head(SHOWN_PROBLEMS).itertuples(index=False)
        ]
    return problems


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
    if "side" not in frame:
        return problems
    sides = frame["side"]
    if isinstance(sides.dtype, pd.CategoricalDtype):  # check the few categories, not every row
        unknown = set(sides.cat.categories) - set(SIDES) or (
            {None} if sides.isna().any() else set()
        )
    else:
        unknown = set(pd.unique(sides)) - set(SIDES)
    if unknown:
        problems.append(f"{table}.side: {sorted(map(repr, unknown))[0]} is not long/short")
    return problems


def _close(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.abs(a - b) <= RELATIVE_TOLERANCE * scale + ABSOLUTE_TOLERANCE_USD


def _chain(
    results: Sequence[DayResult], opening: Mapping[str, float] | None
) -> tuple[list[str], dict[str, float]]:
    """Ledger identity per candle and side from ``opening`` on, and state = last ledger row;
    the problems and the closing active USD per side."""
    if opening is None:
        problem = f"{results[0].day}: continuity: the previous day has no stored ledger rows"
        return [problem], {}
    problems: list[str] = []
    previous = {side: float(opening.get(side, 0.0)) for side in SIDES}
    for result in results:
        ledger = result.tables["candle_ledger"].sort_values("ts", kind="stable")
        ledger_sides = ledger["side"].astype(str).to_numpy()
        state = result.state_levels
        closing = state.groupby(state["side"].astype(str))["remaining_usd"].sum()
        for side in SIDES:
            rows = ledger[ledger_sides == side]
            problems += _side_identity(result.day, side, rows, previous[side])
            last = float(rows["active_usd"].iloc[-1]) if len(rows) else previous[side]
            held = float(closing.get(side, 0.0))
            if not _close(np.array(held), np.array(last), np.array(abs(last))):
                problems.append(
                    f"{result.day} {side}: end-of-day state holds {held!r} USD, "
                    f"the last ledger row {last!r} USD"
                )
            previous[side] = last
    return problems, previous


def _side_identity(day: date, side: str, rows: pd.DataFrame, previous: float) -> list[str]:
    """previous + opened - consumed - closed = active for one side's rows of one day."""
    if rows.empty:
        return []
    active = rows["active_usd"].to_numpy(dtype=float)
    terms = rows[["opened_usd", "consumed_usd", "closed_usd"]].to_numpy(dtype=float)
    flows = terms[:, 0] - terms[:, 1] - terms[:, 2]
    before = np.concatenate([[previous], active[:-1]])
    # The audit's scale: the largest magnitude among the terms of the identity.
    scale = np.maximum(np.maximum(np.abs(before), np.abs(active)), np.abs(terms).max(axis=1))
    broken = ~_close(before + flows, active, scale)
    problems = []
    if broken[0]:
        problems.append(
            f"{day} {side}: continuity with the previous day: the first candle starts from "
            f"{active[0] - flows[0]!r} USD, the stored history ends at {previous!r} USD"
        )
    for position in np.flatnonzero(broken[1:])[:SHOWN_PROBLEMS] + 1:
        problems.append(
            f"{day} {side}: ledger identity broken at {rows['ts'].iloc[position]}: "
            f"{before[position]!r} + {flows[position]!r} != {active[position]!r}"
        )
    return problems
