"""Snapshots per (bucket, side) and per (bucket, side, leverage) as constant-weight segments.

Each level contributes its scale-free weight ``w`` to its cell from its first active candle up to
(not including) the candle it ends in; the cell's active notional after candle k is
``S_k × Σ w``. Per block of candles this is a difference array (one bincount) and a cumulative
sum, restricted to the cells alive in the block; integer level counts, not float residues,
decide which cells exist. ``Σ w`` changes only where a level starts or ends in the cell, so a
cell is stored as segments: runs of candles with one weight sum, active notional
``weight × S_k`` in each candle of the run (the SQL views compute exactly this product, see
``expand``). A segment starts at every candle with a consumption in the cell, whose consumed
notional it carries, and so does every UTC day's first candle: a segment never spans two days
(the views and the daily partitions rely on it). Cost: candles × live cells to compute;
storage: about two segments per level plus one per live cell and day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Leverage values 1..125 (bracket caps can only lower a tier's leverage) fit in this radix.
_LEVERAGE_RADIX = 126
BLOCK_CANDLES = 288


@dataclass(frozen=True)
class Segments:
    """Cells over runs of candles ``first_row`` .. ``last_row`` (inclusive) with a constant
    weight sum: active notional ``weight × scale_end[k]`` in each candle k of the run,
    ``consumed_usd`` booked in candle ``first_row``. Ordered by (first_row, cell)."""

    first_row: np.ndarray
    last_row: np.ndarray
    price_bucket: np.ndarray
    side: np.ndarray  # state.LONG / state.SHORT
    leverage: np.ndarray | None
    weight: np.ndarray
    consumed_usd: np.ndarray


@dataclass(frozen=True)
class Cells:
    """Dense snapshot cells, one entry per (candle row, cell) with active or consumed notional,
    ordered by (row, price bucket, side[, leverage])."""

    row: np.ndarray
    price_bucket: np.ndarray
    side: np.ndarray
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


@dataclass(frozen=True)
class _Rows:
    """Stored (row, cell) entries before scaling: the cell's weight sum (0 where only a
    consumption is booked) and consumed USD, ordered by row and then cell key."""

    row: np.ndarray
    cell_key: np.ndarray
    weight: np.ndarray
    consumed_usd: np.ndarray


def snapshot_segments(
    *,
    day_of_row: np.ndarray,
    bucket_size: float,
    bucket: np.ndarray,
    side: np.ndarray,
    leverage: np.ndarray,
    weight: np.ndarray,
    first_row: np.ndarray,
    end_row: np.ndarray,
    consumed_usd: np.ndarray,
    block_candles: int = BLOCK_CANDLES,
) -> tuple[Segments, Segments]:
    """Segments per (bucket, side) and per (bucket, side, leverage).

    Per level: active in candles ``first_row`` .. ``end_row - 1``; ``consumed_usd`` > 0 is booked
    in ``end_row`` (``end_row == candles``: still active after the last candle). ``day_of_row``
    is each candle's UTC day number. The per-bucket weight is the sum of its leverage cells'
    weights (in leverage order).
    """
    candles = len(day_of_row)
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
    per_leverage = _stored_rows(
        candles, side_key * _LEVERAGE_RADIX + leverage, events, block_candles
    )
    # Rows are ordered by (row, bucket, side, leverage): a bucket's layers are adjacent, so the
    # per-bucket rows are sums over runs of equal (row, bucket, side).
    bucket_key = per_leverage.cell_key // _LEVERAGE_RADIX
    starts = np.ones(len(bucket_key), dtype=bool)
    starts[1:] = (bucket_key[1:] != bucket_key[:-1]) | (
        per_leverage.row[1:] != per_leverage.row[:-1]
    )
    group = np.cumsum(starts, dtype=np.intp) - 1
    first = np.flatnonzero(starts)
    per_bucket = _Rows(
        row=per_leverage.row[first],
        cell_key=bucket_key[first],
        weight=np.bincount(group, per_leverage.weight, minlength=len(first)),
        consumed_usd=np.bincount(group, per_leverage.consumed_usd, minlength=len(first)),
    )
    return (
        _segments(per_bucket, day_of_row, bucket_size, by_leverage=False),
        _segments(per_leverage, day_of_row, bucket_size, by_leverage=True),
    )


def bucket_price(index: np.ndarray, bucket_size: float) -> np.ndarray:
    """Lower edge of bucket ``index``: floor(LP / b) × b rounded to 10 decimals."""
    return np.round(index * bucket_size, 10)


def expand(segments: Segments, scale_end: np.ndarray) -> Cells:
    """The dense cells of ``segments``: one entry per candle of each segment, active notional
    ``weight × scale_end[row]`` (what the heatmap_snapshots views compute in SQL)."""
    lengths = segments.last_row - segments.first_row + 1
    which = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - lengths
    row = segments.first_row[which] + (np.arange(len(which)) - starts[which])
    consumed = np.zeros(len(which))
    consumed[starts] = segments.consumed_usd
    key_columns = [segments.side, segments.price_bucket]
    if segments.leverage is not None:
        key_columns.insert(0, segments.leverage)
    order = np.lexsort([column[which] for column in key_columns] + [row])
    which, row = which[order], row[order]
    return Cells(
        row=row,
        price_bucket=segments.price_bucket[which],
        side=segments.side[which],
        leverage=None if segments.leverage is None else segments.leverage[which],
        active_usd=segments.weight[which] * scale_end[row],
        consumed_usd=consumed[order],
    )


def _segments(
    rows: _Rows, day_of_row: np.ndarray, bucket_size: float, *, by_leverage: bool
) -> Segments:
    """Merge each cell's consecutive rows of one day with the same weight (bit for bit) into
    segments; a row with a consumption starts a new one."""
    by_cell = np.lexsort((rows.row, rows.cell_key))
    row, key = rows.row[by_cell], rows.cell_key[by_cell]
    weight, consumed = rows.weight[by_cell], rows.consumed_usd[by_cell]
    bits = weight.view(np.int64)
    starts = np.ones(len(row), dtype=bool)
    starts[1:] = (
        (key[1:] != key[:-1])
        | (row[1:] != row[:-1] + 1)
        | (bits[1:] != bits[:-1])
        | (consumed[1:] > 0)
        | (day_of_row[row[1:]] != day_of_row[row[:-1]])
    )
    first = np.flatnonzero(starts)
    last = np.append(first[1:], len(row)) - 1
    order = np.lexsort((key[first], row[first]))
    first, last = first[order], last[order]
    side_key = key[first] // _LEVERAGE_RADIX if by_leverage else key[first]
    return Segments(
        first_row=row[first],
        last_row=row[last],
        price_bucket=bucket_price(side_key // 2, bucket_size),
        side=(side_key % 2).astype(np.int8),
        leverage=(key[first] % _LEVERAGE_RADIX).astype(np.int32) if by_leverage else None,
        weight=weight[first],
        consumed_usd=consumed[first],
    )


def _stored_rows(candles: int, level_key, events: _Events, block_candles: int) -> _Rows:
    """Stored (row, cell) entries when levels are grouped by ``level_key``, with the cells'
    weight sums, ordered by row and then cell key."""
    cell_keys, level_cell = np.unique(level_key, return_inverse=True)
    event_cell = level_cell[events.level]
    consumed_cell = level_cell[events.consumed_level]
    carry_weight = np.zeros(len(cell_keys))
    carry_count = np.zeros(len(cell_keys))
    parts = []
    for start in range(0, candles, block_candles):
        stop = min(candles, start + block_candles)
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
        weight = grid.ravel()[stored + row_offset]  # (row, column) of the 2-width grid
        consumed = np.zeros(len(stored))
        position = np.searchsorted(stored, booked_at)
        consumed[position] = booked_usd
        weight[position[~was_alive]] = 0.0
        parts.append(
            (
                np.repeat(np.arange(start, stop), per_row),
                cell_keys[live][stored - row_offset],
                weight,
                consumed,
            )
        )
    if not parts:
        nothing = np.array([], np.int64)
        return _Rows(nothing, nothing, np.array([], np.float64), np.array([], np.float64))
    return _Rows(*(np.concatenate(part) for part in zip(*parts, strict=True)))
