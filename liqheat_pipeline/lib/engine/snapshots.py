"""Snapshots per (bucket, side) and per (bucket, side, leverage) as constant-weight segments.

Each level contributes its scale-free weight ``w`` to its cell from its first active candle up to
(not including) the candle it ends in; the cell's active notional after candle k is
``S_k × Σ w``. Per block of candles this is a difference array (one bincount) and a cumulative
sum down a grid of candles × the cells alive in the block; integer level counts, not float
residues, decide which cells exist. ``Σ w`` changes only where a level starts or ends in the
cell, so a cell is stored as segments: runs of candles with one weight sum, active notional
``weight × S_k`` in each candle of the run (the SQL views compute exactly this product, see
``expand``). A segment starts at every candle with a consumption in the cell, whose consumed
notional it carries, and so does every UTC day's first candle: a segment never spans two days
(the views and the daily partitions rely on it). The segments are read off each block's grid
where they start and end, column by column; a segment running on into the next block is
extended there. Cost: candles × live cells to compute; storage: about two segments per level
plus one per live cell and day.
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
    booked = np.flatnonzero(consumed_usd > 0)
    booked = booked[np.argsort(end_row[booked], kind="stable")]
    events = _Events(
        row=rows[order],
        level=np.concatenate([np.arange(len(weight)), np.flatnonzero(ended)])[order],
        weight=np.concatenate([weight, -weight[ended]])[order],
        count=np.concatenate([np.ones(len(weight)), -np.ones(int(ended.sum()))])[order],
        consumed_row=end_row[booked],
        consumed_level=booked,
        consumed_usd=consumed_usd[booked],
    )
    side_key = bucket * 2 + side
    cell_keys, level_cell = np.unique(side_key * _LEVERAGE_RADIX + leverage, return_inverse=True)
    # Cell keys are ordered by (bucket, side, leverage): a bucket's leverage cells are adjacent.
    bucket_keys, cell_bucket = np.unique(cell_keys // _LEVERAGE_RADIX, return_inverse=True)
    per_leverage, per_bucket = _SegmentRuns(cell_keys), _SegmentRuns(bucket_keys)
    event_cell = level_cell[events.level]
    consumed_cell = level_cell[events.consumed_level]
    carry_weight = np.zeros(len(cell_keys))
    carry_count = np.zeros(len(cell_keys))
    for start in range(0, candles, block_candles):
        stop = min(candles, start + block_candles)
        here = slice(*np.searchsorted(events.row, [start, stop]))
        booked = slice(*np.searchsorted(events.consumed_row, [start, stop]))
        marked = carry_count > 0.5
        marked[event_cell[here]] = True
        marked[consumed_cell[booked]] = True
        live = np.flatnonzero(marked)
        if not len(live):
            per_leverage.skip_block()
            per_bucket.skip_block()
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
        value = np.where(alive, grid[:, :width], 0.0)
        carry_weight[live] = value[-1]
        carry_count[live] = grid[-1, width:]

        # Consumptions are few: booked sparsely, at (row, column) positions of the grid.
        booked_at, which = np.unique(
            (events.consumed_row[booked] - start) * width
            + np.searchsorted(live, consumed_cell[booked]),
            return_inverse=True,
        )
        booked_usd = np.bincount(which, events.consumed_usd[booked], minlength=len(booked_at))
        stored = alive.copy()  # a cell is stored where it is alive or books a consumption
        stored.ravel()[booked_at] = True
        new_day = np.ones(height, dtype=bool)
        new_day[1:] = day_of_row[start + 1 : stop] != day_of_row[start : stop - 1]
        if start:
            new_day[0] = day_of_row[start] != day_of_row[start - 1]
        per_leverage.add_block(start, live, stored, value, booked_at, booked_usd, new_day)

        # A bucket's row is the sum of its stored leverage cells, added in leverage order (an
        # unstored cell's value is 0.0, which leaves the sum unchanged).
        bucket_of_column = cell_bucket[live]
        first_column = np.flatnonzero(np.diff(bucket_of_column, prepend=-1) != 0)
        members = np.diff(first_column, append=width)
        bucket_value = np.zeros((height, len(first_column)))
        for rank in range(int(members.max())):
            present = members > rank
            bucket_value[:, present] += value[:, first_column[present] + rank]
        group_of_column = np.repeat(np.arange(len(first_column)), members)
        bucket_booked_at, which = np.unique(
            booked_at // width * len(first_column) + group_of_column[booked_at % width],
            return_inverse=True,
        )
        per_bucket.add_block(
            start,
            bucket_of_column[first_column],
            np.logical_or.reduceat(stored, first_column, axis=1),
            bucket_value,
            bucket_booked_at,
            np.bincount(which, booked_usd, minlength=len(bucket_booked_at)),
            new_day,
        )
    return (
        per_bucket.segments(bucket_size, by_leverage=False),
        per_leverage.segments(bucket_size, by_leverage=True),
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


class _SegmentRuns:
    """Collects the segments of cells keyed by ``keys``, one block of candles after another.

    A segment starts where a cell is stored after a candle in which it was not, where its
    weight changes (bit for bit), where it books a consumption and at a UTC day's first candle.
    A segment still open at a block's last candle continues into the next block's first
    candle unless one of those rules starts a new one there."""

    def __init__(self, keys: np.ndarray) -> None:
        self._keys = keys
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._extensions: list[tuple[np.ndarray, np.ndarray]] = []
        self._count = 0
        # Per key: the segment open after the previous block's last candle, and its weight bits.
        self._open = np.full(len(keys), -1, dtype=np.int64)
        self._open_bits = np.zeros(len(keys), dtype=np.int64)

    def skip_block(self) -> None:
        """A block where no cell is stored ends every open segment."""
        self._open[:] = -1

    def add_block(
        self,
        start: int,
        columns: np.ndarray,
        stored: np.ndarray,
        value: np.ndarray,
        booked_at: np.ndarray,
        booked_usd: np.ndarray,
        new_day: np.ndarray,
    ) -> None:
        """One block of candles ``start`` .. ``start + height - 1``: ``stored`` and ``value``
        (height × columns) for the keys ``columns`` (indices into ``keys``), consumptions
        ``booked_usd`` at the flat (row, column) positions ``booked_at`` (sorted), and whether
        each candle begins a UTC day."""
        height, width = stored.shape
        bits = value.view(np.int64)
        begins = stored.copy()
        begins[1:] &= ~stored[:-1] | (bits[1:] != bits[:-1]) | new_day[1:, None]
        begins.ravel()[booked_at] = True
        open_before = self._open[columns]
        continuing = (
            begins[0] & (open_before >= 0) & (self._open_bits[columns] == bits[0]) & ~new_day[0]
        )
        continuing[booked_at[booked_at < width]] = False
        begins[0, continuing] = False
        ends = stored.copy()
        ends[:-1] &= begins[1:] | ~stored[1:]
        # Column by column, each segment's end follows its beginning; a continuing column's
        # first end closes the segment carried over from the previous block.
        begin_at = np.flatnonzero(begins.T)
        end_at = np.flatnonzero(ends.T)
        carried_end = np.searchsorted(end_at, np.flatnonzero(continuing) * height)
        self._extensions.append((open_before[continuing], start + end_at[carried_end] % height))
        end_at = np.delete(end_at, carried_end)
        column, first = np.divmod(begin_at, height)
        last = end_at % height
        flat = first * width + column
        order = np.argsort(flat, kind="stable")  # stored in candle order, then key order
        position = np.minimum(np.searchsorted(booked_at, flat), max(len(booked_at) - 1, 0))
        consumed = (
            np.where(booked_at[position] == flat, booked_usd[position], 0.0)
            if len(booked_at)
            else np.zeros(len(flat))
        )
        self._parts.append(
            (
                start + first[order],
                start + last[order],
                columns[column[order]],
                value[first, column][order],
                consumed[order],
            )
        )
        # The segments open after the block's last candle: a column's last segment, or the
        # carried one for a column continuing through the whole block.
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(self._count, self._count + len(order))
        self._count += len(order)
        open_after = np.where(continuing, open_before, -1)
        is_last = np.diff(column, append=-1) != 0
        open_after[column[is_last]] = rank[is_last]
        self._open[:] = -1
        self._open[columns] = np.where(stored[-1], open_after, -1)
        self._open_bits[columns] = bits[-1]

    def segments(self, bucket_size: float, *, by_leverage: bool) -> Segments:
        if not self._parts:
            nothing = np.array([], np.int64)
            self._parts.append((nothing, nothing, nothing, np.array([]), np.array([])))
        first_row, last_row, key_index, weight, consumed = (
            np.concatenate(part) for part in zip(*self._parts, strict=True)
        )
        # Blocks in order: a segment extended again by a later block ends where that one says.
        for target, last in self._extensions:
            last_row[target] = last
        key = self._keys[key_index]
        side_key = key // _LEVERAGE_RADIX if by_leverage else key
        return Segments(
            first_row=first_row,
            last_row=last_row,
            price_bucket=bucket_price(side_key // 2, bucket_size),
            side=(side_key % 2).astype(np.int8),
            leverage=(key % _LEVERAGE_RADIX).astype(np.int32) if by_leverage else None,
            weight=weight,
            consumed_usd=consumed,
        )
