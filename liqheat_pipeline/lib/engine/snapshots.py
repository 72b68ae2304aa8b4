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
    side: np.ndarray  # state.LONG / state.SHORT
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
    leverage_key = side_key * _LEVERAGE_RADIX + leverage
    ts, (keys, column), active, consumed = _cells(
        times, scale_end, leverage_key, events, block_candles
    )
    cell_side_key = keys // _LEVERAGE_RADIX
    cell_price = bucket_price(cell_side_key // 2, bucket_size)
    cell_side = (cell_side_key % 2).astype(np.int8)
    per_leverage = Cells(
        ts=ts,
        price_bucket=cell_price[column],
        side=cell_side[column],
        leverage=(keys % _LEVERAGE_RADIX).astype(np.int32)[column],
        active_usd=active,
        consumed_usd=consumed,
    )
    # Rows are ordered by (ts, bucket, side, leverage): a bucket's layers are adjacent, so the
    # per-bucket table is a sum over runs of equal (ts, bucket, side).
    row_side_key = cell_side_key[column]
    starts = np.empty(len(ts), dtype=bool)
    np.not_equal(row_side_key[1:], row_side_key[:-1], out=starts[1:])
    candle_starts = np.searchsorted(ts, times)  # each candle's first row (ts is sorted)
    starts[candle_starts[candle_starts < len(ts)]] = True
    group = np.cumsum(starts.view(np.int8), dtype=np.intp)  # 1-based group of each row
    first = np.flatnonzero(starts)
    first_column = column[first]
    per_bucket = Cells(
        ts=ts[first],
        price_bucket=cell_price[first_column],
        side=cell_side[first_column],
        leverage=None,
        active_usd=np.bincount(group, active, minlength=len(first) + 1)[1:],
        consumed_usd=np.bincount(group, consumed, minlength=len(first) + 1)[1:],
    )
    return per_bucket, per_leverage


def bucket_price(index: np.ndarray, bucket_size: float) -> np.ndarray:
    """Lower edge of bucket ``index``: floor(LP / b) × b rounded to 10 decimals."""
    return np.round(index * bucket_size, 10)


def _cells(times, scale_end, level_key, events: _Events, block_candles: int):
    """Stored cells when levels are grouped by ``level_key``: (ts, (cell keys, cell index per
    row), active USD, consumed USD), ordered by ts and then cell key."""
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
        marked = carry_count > 0.5
        marked[event_cell[here]] = True
        marked[consumed_cell[booked]] = True
        live = np.flatnonzero(marked)
        if not len(live):
            continue
        width, height = len(live), stop - start
        # One grid, weights in columns [0, width), level counts in [width, 2 width).
        flat = (events.row[here] - start) * (2 * width) + np.searchsorted(live, event_cell[here])
        grid = np.bincount(
            np.concatenate([flat, flat + width]),
            np.concatenate([events.weight[here], events.count[here]]),
            minlength=2 * width * height,
        )
        # With no event in the block bincount returns integers; the carried weights are floats.
        grid = grid.astype(np.float64, copy=False).reshape(height, 2 * width)
        grid[0, :width] += carry_weight[live]
        grid[0, width:] += carry_count[live]
        # Running sums down the candles (row by row: much faster than cumsum along axis 0).
        for row in range(1, height):
            np.add(grid[row], grid[row - 1], out=grid[row])
        alive = grid[:, width:] > 0.5  # counts are whole numbers held in floats
        # A cell with no level left holds exactly nothing, whatever the float residue.
        carry_weight[live] = np.where(alive[-1], grid[-1, :width], 0.0)
        carry_count[live] = grid[-1, width:]

        # Consumptions are few: book them sparsely into the stored cells.
        booked_at = (events.consumed_row[booked] - start) * width + np.searchsorted(
            live, consumed_cell[booked]
        )
        booked_at, which = np.unique(booked_at, return_inverse=True)
        booked_usd = np.bincount(which, events.consumed_usd[booked], minlength=len(booked_at))
        kept = alive.ravel()  # a view: consumed-only cells are added to ``alive`` as well
        was_alive = kept[booked_at]
        kept[booked_at] = True
        stored = np.flatnonzero(kept)
        per_row = np.diff(np.searchsorted(stored, np.arange(0, (height + 1) * width, width)))
        row_offset = np.repeat(np.arange(0, height * width, width), per_row)
        active = grid.ravel()[stored + row_offset]  # (row, column) of the 2-width grid
        active *= np.repeat(scale_end[start:stop], per_row)
        consumed = np.zeros(len(stored))
        position = np.searchsorted(stored, booked_at)
        consumed[position] = booked_usd
        active[position[~was_alive]] = 0.0
        rows.append(
            (
                np.repeat(times[start:stop], per_row),
                offset + stored - row_offset,
                active,
                consumed,
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
