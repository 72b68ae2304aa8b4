"""The snapshot segments equal a candle-by-candle oracle exactly, whatever the block size.

Weights are whole numbers here, so every sum is exact in floats and the segments (where they
start and end, their weights and consumptions) can be compared bit for bit. Small blocks make
segments run on from one block into the next, which the pipeline's day-sized blocks meet only
in runs that start inside a day.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liqheat_pipeline.lib.engine.snapshots import Segments, bucket_price, snapshot_segments

BUCKET_SIZE = 10.0
LEVERAGES = (1, 2, 5)


@st.composite
def levels(draw):
    candles = draw(st.integers(1, 40))
    day_lengths = draw(st.lists(st.integers(1, 12), min_size=1, max_size=8))
    day_of_row = np.repeat(np.arange(len(day_lengths)), day_lengths)
    while len(day_of_row) < candles:  # the last day runs to the end
        day_of_row = np.append(day_of_row, day_of_row[-1])
    count = draw(st.integers(0, 30))
    first = np.array(draw(st.lists(st.integers(0, candles - 1), min_size=count, max_size=count)))
    length = np.array(draw(st.lists(st.integers(0, candles), min_size=count, max_size=count)))
    end = np.minimum(first.astype(np.int64) + length, candles) if count else first
    consumed = np.array(draw(st.lists(st.booleans(), min_size=count, max_size=count)), bool)
    return {
        "day_of_row": day_of_row[:candles],
        "bucket_size": BUCKET_SIZE,
        "bucket": np.array(draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))),
        "side": np.array(draw(st.lists(st.integers(0, 1), min_size=count, max_size=count))),
        "leverage": np.array(
            draw(st.lists(st.sampled_from(LEVERAGES), min_size=count, max_size=count))
        ),
        "weight": np.array(
            draw(st.lists(st.integers(1, 1000), min_size=count, max_size=count)), float
        ),
        "first_row": first.astype(np.int64),
        "end_row": np.asarray(end, np.int64),
        # Only levels that end within the run can be consumed.
        "consumed_usd": np.where(
            consumed & (np.asarray(end) < candles),
            np.array(draw(st.lists(st.integers(1, 50), min_size=count, max_size=count)), float)
            if count
            else np.zeros(0),
            0.0,
        ),
    }


def _oracle(inputs: dict, by_leverage: bool) -> list[tuple]:
    """Segments from per-candle cells: (first row, last row, bucket, side, leverage, weight,
    consumed), ordered by first row and cell."""
    candles = len(inputs["day_of_row"])
    cells: dict[tuple, dict[int, list[float]]] = {}
    for i in range(len(inputs["weight"])):
        cell = (int(inputs["bucket"][i]), int(inputs["side"][i]))
        cell += (int(inputs["leverage"][i]),) if by_leverage else (0,)
        rows = cells.setdefault(cell, {})
        for row in range(inputs["first_row"][i], inputs["end_row"][i]):
            entry = rows.setdefault(row, [0.0, 0.0, 0])
            entry[0] += inputs["weight"][i]
            entry[2] += 1
        if inputs["consumed_usd"][i] > 0:
            rows.setdefault(int(inputs["end_row"][i]), [0.0, 0.0, 0])[1] += inputs["consumed_usd"][
                i
            ]
    segments = []
    for cell, rows in cells.items():
        current = None
        for row in range(candles):
            entry = rows.get(row)
            if entry is None or (entry[2] == 0 and entry[1] == 0):
                current = None
                continue
            weight = entry[0] if entry[2] else 0.0
            continues = (
                current is not None
                and current[1] == row - 1
                and current[5] == weight
                and entry[1] == 0
                and inputs["day_of_row"][row] == inputs["day_of_row"][row - 1]
            )
            if continues:
                current[1] = row
            else:
                current = [row, row, *cell, weight, entry[1]]
                segments.append(current)
    return sorted((tuple(segment) for segment in segments), key=_engine_order)


def _engine_order(segment: tuple) -> tuple:
    first_row, _, bucket, side, leverage, *_ = segment
    return first_row, bucket, side, leverage


def _rows(segments: Segments, by_leverage: bool) -> list[tuple]:
    bucket = np.round(segments.price_bucket / BUCKET_SIZE).astype(int)
    assert np.array_equal(bucket_price(bucket, BUCKET_SIZE), segments.price_bucket)
    leverage = segments.leverage if by_leverage else np.zeros(len(bucket), int)
    rows = [
        (int(a), int(b), int(c), int(d), int(e), float(f), float(g))
        for a, b, c, d, e, f, g in zip(
            segments.first_row,
            segments.last_row,
            bucket,
            segments.side,
            leverage,
            segments.weight,
            segments.consumed_usd,
            strict=True,
        )
    ]
    assert rows == sorted(rows, key=_engine_order), "ordered by first row, then cell"
    return rows


@settings(max_examples=300, deadline=None)
@given(levels(), st.sampled_from([1, 2, 5, 288]))
def test_segments_equal_the_candle_by_candle_oracle(inputs, block_candles):
    per_bucket, per_leverage = snapshot_segments(**inputs, block_candles=block_candles)
    assert _rows(per_leverage, True) == _oracle(inputs, by_leverage=True)
    assert _rows(per_bucket, False) == _oracle(inputs, by_leverage=False)
