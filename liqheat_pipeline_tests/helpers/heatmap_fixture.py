"""A small deterministic DuckDB in the SQL contract's shape, built from explicit levels.

The read side (queries, API, page) is tested against it with expectations recomputed from the
levels themselves, independently of the snapshot tables the code under test reads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from liqheat_pipeline.lib import warehouse


@dataclass(frozen=True)
class Fixture:
    symbol: str
    start: datetime
    candles: pd.DataFrame  # open_time, open, high, low, close
    levels: pd.DataFrame  # created (candle index), consumed (index or n), side, leverage, ...
    bucket_size: float
    interval_minutes: int

    @property
    def end(self) -> datetime:
        return self.start + len(self.candles) * timedelta(minutes=self.interval_minutes)

    def time(self, index: int) -> datetime:
        return self.start + index * timedelta(minutes=self.interval_minutes)


def make_fixture(
    *,
    symbol: str = "TESTUSDT",
    start: datetime = datetime(2025, 12, 1),
    days: int = 2,
    interval_minutes: int = 5,
    bucket_size: float = 10.0,
    tiers: tuple[tuple[int, float], ...] = ((10, 0.6), (50, 0.4)),
) -> Fixture:
    """Candles on a deterministic wave; each candle opens one level per tier on its side
    (long if it closes up, else short); a level is consumed by the first later candle reaching
    its price. No closures, so every level keeps its opening notional until consumed."""
    n = days * 24 * 60 // interval_minutes
    k = np.arange(n + 1)
    path = 1000.0 * (
        1 + 0.03 * np.sin(2 * math.pi * k / 230) + 0.012 * np.sin(2 * math.pi * k / 37)
    )
    open_, close = path[:-1], path[1:]
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    times = pd.date_range(start, periods=n, freq=f"{interval_minutes}min")
    candles = pd.DataFrame(
        {"open_time": times, "open": open_, "high": high, "low": low, "close": close}
    )
    rows = []
    for index in range(n):
        side = "long" if close[index] > open_[index] else "short"
        notional = 10_000.0 * (1 + index % 7)
        for tier_index, (leverage, weight) in enumerate(tiers):
            sign = -1 if side == "long" else 1
            liq_price = close[index] * (1 + sign / leverage)
            rows.append(
                {
                    "created": index,
                    "side": side,
                    "leverage": leverage,
                    "tier_index": tier_index,
                    "entry_price": close[index],
                    "liq_price": liq_price,
                    "notional_usd": notional * weight,
                }
            )
    levels = pd.DataFrame(rows)
    levels["price_bucket"] = np.round(np.floor(levels["liq_price"] / bucket_size) * bucket_size, 10)
    levels["consumed"] = [
        _first_crossing(level.side, level.liq_price, level.created, low, high)
        for level in levels.itertuples()
    ]
    return Fixture(symbol, start, candles, levels, bucket_size, interval_minutes)


def _first_crossing(
    side: str, liq_price: float, created: int, low: np.ndarray, high: np.ndarray
) -> int:
    """Index of the first candle after ``created`` reaching the level, or len(low) if none."""
    later = low[created + 1 :] <= liq_price if side == "long" else high[created + 1 :] >= liq_price
    hits = np.flatnonzero(later)
    return created + 1 + int(hits[0]) if hits.size else len(low)


def active_after(fixture: Fixture, index: int) -> pd.DataFrame:
    """Levels active after candle ``index``: created at or before it, not yet consumed."""
    levels = fixture.levels
    return levels[(levels["created"] <= index) & (levels["consumed"] > index)]


def write_fixture(fixture: Fixture, path: Path) -> None:
    """Write the fixture's contract tables (and a model_runs row per day) to ``path``."""
    n = len(fixture.candles)
    levels = fixture.levels
    ts = np.array([fixture.time(i) for i in range(n)], dtype="datetime64[ns]")
    # One snapshot row per (candle, level) while the level is active.
    lifetimes = (levels["consumed"] - levels["created"]).to_numpy()
    repeated = levels.loc[levels.index.repeat(lifetimes)].copy()
    repeated["k"] = np.concatenate(
        [np.arange(c, e) for c, e in zip(levels["created"], levels["consumed"], strict=True)]
    )
    active = repeated.assign(ts=ts[repeated["k"]], active_usd=repeated["notional_usd"])
    consumed = levels[levels["consumed"] < n]
    consumed = consumed.assign(ts=ts[consumed["consumed"]], consumed_usd=consumed["notional_usd"])
    keys = ["ts", "price_bucket", "side", "leverage"]
    by_leverage = (
        pd.concat(
            [
                active.groupby(keys)["active_usd"].sum(),
                consumed.groupby(keys)["consumed_usd"].sum(),
            ],
            axis=1,
        )
        .fillna(0.0)
        .reset_index()
    )
    by_leverage.insert(0, "symbol", fixture.symbol)
    snapshots = by_leverage.groupby(["symbol", *keys[:3]], as_index=False)[
        ["active_usd", "consumed_usd"]
    ].sum()
    ledger = _ledger(fixture, ts, active, consumed)
    with warehouse.connect(path) as conn:
        warehouse.ensure_schema(conn)
        candles = fixture.candles.assign(symbol=fixture.symbol)
        for table, frame in (
            ("candles", candles),
            ("candle_ledger", ledger),
            ("snapshot_segments", _one_candle_segments(snapshots)),
            ("snapshot_segments_by_leverage", _one_candle_segments(by_leverage)),
        ):
            conn.register("_rows", frame)
            columns = ", ".join(frame.columns)
            conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _rows")
            conn.unregister("_rows")
        assumptions = json.dumps({"leverage_tiers": sorted(levels["leverage"].unique().tolist())})
        for day in pd.date_range(fixture.start, fixture.end, freq="D", inclusive="left"):
            conn.execute(
                """
                INSERT INTO model_runs (symbol, day, config_hash, assumptions, bucket_size,
                                        stats, state_metadata, computed_at)
                VALUES (?, ?, 'fixture0hash', ?, ?, '{}', '{}', ?)
                """,
                [fixture.symbol, day.date(), assumptions, fixture.bucket_size, fixture.start],
            )


def _one_candle_segments(cells: pd.DataFrame) -> pd.DataFrame:
    """Snapshot cells as segments of one candle each (the ledger's closure scale is 1, so the
    views return exactly these cells)."""
    segments = cells.rename(columns={"ts": "first_ts", "active_usd": "weight"})
    return segments.assign(last_ts=segments["first_ts"])


def _ledger(
    fixture: Fixture, ts: np.ndarray, active: pd.DataFrame, consumed: pd.DataFrame
) -> pd.DataFrame:
    levels = fixture.levels
    frames = []
    for side in ("long", "short"):
        grid = pd.DataFrame({"ts": ts})
        opened = levels[levels["side"] == side].groupby("created")["notional_usd"].sum()
        gone = consumed[consumed["side"] == side].groupby("ts")["consumed_usd"].sum()
        still = active[active["side"] == side].groupby("ts")["active_usd"].sum()
        grid["opened_usd"] = opened.reindex(range(len(ts)), fill_value=0.0).to_numpy()
        grid["consumed_usd"] = gone.reindex(ts, fill_value=0.0).to_numpy()
        grid["closed_usd"] = 0.0
        grid["active_usd"] = still.reindex(ts, fill_value=0.0).to_numpy()
        grid["closure_scale"] = 1.0  # no closures
        frames.append(grid.assign(symbol=fixture.symbol, side=side))
    return pd.concat(frames, ignore_index=True)
