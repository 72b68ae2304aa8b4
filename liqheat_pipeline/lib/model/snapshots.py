"""Sparse per-candle snapshots per (bucket, side) and per (bucket, side, leverage).

Each level contributes its scale-free weight ``w`` to its cell from its first active candle up to
(not including) the candle it ends in; the cell's active notional after candle k is
``S_k × Σ w``. Per block of candles this is a difference array (one bincount) and a cumulative
sum, restricted to the cells alive in the block; integer level counts, not float residues,
decide which cells are stored. Cost: candles × live cells, i.e. about the size of the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Leverage values 1..125 (bracket caps can only lower a tier's leverage) fit in this radix.
_LEVERAGE_RADIX = 126
BLOCK_CANDLES = 288


@dataclass(frozen=True)
class Cells:
    """Stored snapshot cells, one entry per (candle, cell) with active or consumed notional."""

    ts: np.ndarray
    price_bucket: np.ndarray
    side: np.ndarray  # 0 = long, 1 = short
    leverage: np.ndarray | None
    active_usd: np.ndarray
    consumed_usd: np.ndarray


@dataclass(frozen=True)
class _Events:
    """Level starts and ends (+w/+1, -w/-1) and consumptions, sorted by candle."""

    row: np.ndarray
    level: np.ndarray
    weight: np.ndarray
    count: np.ndarray
    consumed_row: np.ndarray
    consumed_level: np.ndarray
    consumed_usd: np.ndarray


def snapshot_cells(
    *,
    times: np.ndarray,
    bucket_size: float,
    scale_end: np.ndarray,
    bucket: np.ndarray,
    side: np.ndarray,
    leverage: np.ndarray,
    weight: np.ndarray,
    first_row: np.ndarray,
    end_row: np.ndarray,
    consumed_usd: np.ndarray,
    block_candles: int = BLOCK_CANDLES,
) -> tuple[Cells, Cells]:
    """Cells per (bucket, side) and per (bucket, side, leverage) with active or consumed USD.

    Per level: active in candles ``first_row`` .. ``end_row - 1``; ``consumed_usd`` > 0 is booked
    in ``end_row`` (``end_row == len(times)``: still active after the last candle).
    """
    candles = len(times)
    ended = end_row < candles
    rows = np.concatenate([first_row, end_row[ended]])
    order = np.argsort(rows, kind="stable")
    levels = np.concatenate([np.arange(len(weight)), np.flatnonzero(ended)])[order]
    booked = np.flatnonzero(consumed_usd > 0)
    booked = booked[np.argsort(end_row[booked], kind="stable")]
    events = _Events(
        row=rows[order],
        level=levels,
        weight=np.concatenate([weight, -weight[ended]])[order],
        count=np.concatenate([np.ones(len(weight)), -np.ones(int(ended.sum()))])[order],
        consumed_row=end_row[booked],
        consumed_level=booked,
        consumed_usd=consumed_usd[booked],
    )
    side_key = bucket * 2 + side
    ts, keys, active, consumed = _cells(times, scale_end, side_key, events, block_candles)
    per_bucket = Cells(
        ts,
        *_decode(keys, bucket_size, with_leverage=False),
        active_usd=active,
        consumed_usd=consumed,
    )
    leverage_key = side_key * _LEVERAGE_RADIX + leverage
    ts, keys, active, consumed = _cells(times, scale_end, leverage_key, events, block_candles)
    per_leverage = Cells(
        ts,
        *_decode(keys, bucket_size, with_leverage=True),
        active_usd=active,
        consumed_usd=consumed,
    )
    return per_bucket, per_leverage


def bucket_price(index: np.ndarray, bucket_size: float) -> np.ndarray:
    """Lower edge of bucket ``index``: floor(LP / b) × b rounded to 10 decimals."""
    return np.round(index * bucket_size, 10)


def _decode(cell_of_row, bucket_size: float, *, with_leverage: bool):
    """(price_bucket, side, leverage) per stored row from (cell keys, cell index per row)."""
    keys, column = cell_of_row
    side_key = keys // _LEVERAGE_RADIX if with_leverage else keys
    price = bucket_price(side_key // 2, bucket_size)[column]
    side = (side_key % 2).astype(np.int8)[column]
    leverage = (keys % _LEVERAGE_RADIX).astype(np.int32)[column] if with_leverage else None
    return price, side, leverage


def _cells(times, scale_end, level_key, events: _Events, block_candles: int):
    """Stored cells when levels are grouped by ``level_key``: (ts, (cell keys, cell index per
    row), active USD, consumed USD)."""
    cell_keys, level_cell = np.unique(level_key, return_inverse=True)
    event_cell = level_cell[events.level]
    consumed_cell = level_cell[events.consumed_level]
    carry_weight = np.zeros(len(cell_keys))
    carry_count = np.zeros(len(cell_keys))
    rows, block_keys, offset = [], [], 0
    for start in range(0, len(times), block_candles):
        stop = min(len(times), start + block_candles)
        here = slice(*np.searchsorted(events.row, [start, stop]))
        booked = slice(*np.searchsorted(events.consumed_row, [start, stop]))
        live = np.unique(
            np.concatenate(
                [np.flatnonzero(carry_count > 0.5), event_cell[here], consumed_cell[booked]]
            )
        )
        if not len(live):
            continue
        width, height = len(live), stop - start
        weights = _grid(
            events.row[here], event_cell[here], events.weight[here], start, live, height
        )
        counts = _grid(events.row[here], event_cell[here], events.count[here], start, live, height)
        consumed = _grid(
            events.consumed_row[booked],
            consumed_cell[booked],
            events.consumed_usd[booked],
            start,
            live,
            height,
        )
        weights[0] += carry_weight[live]
        counts[0] += carry_count[live]
        # Running sums down the candles (row by row: much faster than cumsum along axis 0).
        for row in range(1, height):
            np.add(weights[row], weights[row - 1], out=weights[row])
            np.add(counts[row], counts[row - 1], out=counts[row])
        alive = counts > 0.5  # counts are whole numbers held in floats
        # A cell with no level left holds exactly nothing, whatever the float residue.
        np.multiply(weights, alive, out=weights)
        carry_weight[live] = weights[-1]
        carry_count[live] = counts[-1]
        np.multiply(weights, scale_end[start:stop, None], out=weights)
        kept = alive | (consumed > 0)
        stored = np.flatnonzero(kept)
        per_row = kept.sum(axis=1)
        rows.append(
            (
                np.repeat(times[start:stop], per_row),
                offset + stored - np.repeat(np.arange(0, height * width, width), per_row),
                weights.ravel()[stored],
                consumed.ravel()[stored],
            )
        )
        block_keys.append(cell_keys[live])
        offset += width
    if not rows:
        nothing = np.array([], np.float64)
        return times[:0], (np.array([], np.int64), np.array([], np.int64)), nothing, nothing
    if len(rows) == 1:  # one block: no copies
        ts, column, active, consumed = rows[0]
        return ts, (block_keys[0], column), active, consumed
    ts, column, active, consumed = (np.concatenate(part) for part in zip(*rows, strict=True))
    return ts, (np.concatenate(block_keys), column), active, consumed


def _grid(rows, cells, values, start, live, height) -> np.ndarray:
    """(height × live cells) sums of ``values`` per (row - start, cell)."""
    width = len(live)
    flat = (rows - start) * width + np.searchsorted(live, cells)
    return np.bincount(flat, values, minlength=height * width).reshape(height, width)
