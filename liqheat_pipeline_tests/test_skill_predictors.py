"""Bucket predictors and skill rows on hand-made frames whose answers are known."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from liqheat_pipeline.lib.skill import metrics
from liqheat_pipeline.lib.skill.predictors import (
    BUCKET_COLUMNS,
    SKILL_COLUMNS,
    SkillInputs,
    bucket_series,
    series_column,
    skill_rows,
)

START = pd.Timestamp("2025-12-01 00:00")
STEP = pd.Timedelta(minutes=5)
BUCKET_MINUTES = 15  # three 5-minute candles per bucket


def _inputs(n_buckets: int, *, bucket_minutes: int = BUCKET_MINUTES) -> SkillInputs:
    """``n_buckets`` complete buckets: candle k opens at 100 + k, high = open + 2 + k % 3,
    low = open - 1 - k % 2, close = open + (1 if k even else -3); OI(t) = 1000 + minutes/5."""
    n_candles = n_buckets * bucket_minutes // 5
    times = START + STEP * np.arange(n_candles)
    k = np.arange(n_candles, dtype=float)
    open_ = 100.0 + k
    candles = pd.DataFrame(
        {
            "open_time": times,
            "open": open_,
            "high": open_ + 2 + k % 3,
            "low": open_ - 1 - k % 2,
            "close": open_ + np.where(k % 2 == 0, 1.0, -3.0),
        }
    )
    oi_times = START + STEP * np.arange(n_candles + 1)
    open_interest = pd.DataFrame(
        {"ts": oi_times, "open_interest": 1000.0 + np.arange(n_candles + 1)}
    )
    ledger = pd.concat(
        [
            pd.DataFrame({"ts": times, "side": "long", "consumed_usd": 10.0 * k}),
            pd.DataFrame({"ts": times, "side": "short", "consumed_usd": 1.0 + k % 4}),
        ],
        ignore_index=True,
    )
    bucket_starts = START + pd.Timedelta(minutes=bucket_minutes) * np.arange(n_buckets)
    realized = pd.DataFrame(
        {
            "bucket_start": bucket_starts,
            "bucket_minutes": bucket_minutes,
            "long_usd": 1e6 * (1 + np.arange(n_buckets) % 5),
            "short_usd": 5e5 * (1 + np.arange(n_buckets) % 3),
        }
    )
    return SkillInputs(candles, open_interest, ledger, realized)


def _replace(inputs: SkillInputs, **frames: pd.DataFrame) -> SkillInputs:
    return SkillInputs(**{**inputs.__dict__, **frames})


def _starts(inputs: SkillInputs) -> list[str]:
    return [f"{ts:%H:%M}" for ts in bucket_series(inputs).buckets["bucket_start"]]


def test_each_predictor_sums_its_formula_over_the_buckets_candles():
    buckets = bucket_series(_inputs(2)).buckets
    assert list(buckets.columns) == list(BUCKET_COLUMNS)
    assert len(buckets) == 2
    second = buckets.iloc[1]  # candles k = 3, 4, 5 at 00:15, 00:20, 00:25
    expected = {"range_long": 0.0, "range_short": 0.0, "return_long": 0.0, "return_short": 0.0}
    for k in (3, 4, 5):
        o, h, lo = 100.0 + k, 100.0 + k + 2 + k % 3, 100.0 + k - 1 - k % 2
        c = o + (1.0 if k % 2 == 0 else -3.0)
        notional = (1000.0 + k) * c / o  # OI at the candle's open (t_k) times close, per open
        expected["range_long"] += (o - lo) * notional
        expected["range_short"] += (h - o) * notional
        expected["return_long"] += max(0.0, o - c) * notional
        expected["return_short"] += max(0.0, c - o) * notional
    assert second[series_column("baseline_range", "long")] == pytest.approx(expected["range_long"])
    assert second[series_column("baseline_range", "short")] == pytest.approx(
        expected["range_short"]
    )
    assert second[series_column("baseline_return", "long")] == pytest.approx(
        expected["return_long"]
    )
    assert second[series_column("baseline_return", "short")] == pytest.approx(
        expected["return_short"]
    )
    assert second[series_column("model", "long")] == 10.0 * (3 + 4 + 5)
    assert second[series_column("model", "short")] == (1 + 3) + (1 + 0) + (1 + 1)
    assert second[series_column("realized", "long")] == 2e6
    assert second[series_column("realized", "short")] == 1e6


def test_total_is_long_plus_short_for_every_series():
    buckets = bucket_series(_inputs(4)).buckets
    for name in ("model", "baseline_range", "baseline_return", "realized"):
        np.testing.assert_array_equal(
            buckets[series_column(name, "total")],
            buckets[series_column(name, "long")] + buckets[series_column(name, "short")],
        )


def test_hourly_buckets_take_twelve_candles():
    series = bucket_series(_inputs(3, bucket_minutes=60))
    assert series.bucket_minutes == 60
    assert series.n_buckets == 3
    assert series.buckets[series_column("model", "long")].iloc[0] == 10.0 * sum(range(12))


def test_a_bucket_with_a_missing_candle_is_left_out():
    inputs = _inputs(4)
    candles = inputs.candles.drop(index=7)  # 00:35, in the bucket 00:30
    assert _starts(_replace(inputs, candles=candles)) == ["00:00", "00:15", "00:45"]


def test_a_bucket_with_open_interest_missing_at_a_candle_open_is_left_out():
    inputs = _inputs(4)
    oi = inputs.open_interest
    missing_at_open = oi[oi["ts"] != START + 4 * STEP]  # t_k of candle 4 (00:20), bucket 00:15
    # ... which is also t_k + interval of candle 3: the same bucket, nothing else.
    assert _starts(_replace(inputs, open_interest=missing_at_open)) == ["00:00", "00:30", "00:45"]
    as_null = oi.assign(open_interest=oi["open_interest"].where(oi["ts"] != START + 4 * STEP))
    assert _starts(_replace(inputs, open_interest=as_null)) == ["00:00", "00:30", "00:45"]


def test_a_bucket_missing_the_open_interest_at_its_end_is_left_out():
    # OI(00:15) closes the last candle of bucket 00:00 (t_k + interval) and opens bucket 00:15.
    inputs = _inputs(3)
    oi = inputs.open_interest
    assert _starts(_replace(inputs, open_interest=oi[oi["ts"] != START + 3 * STEP])) == ["00:30"]
    # Without the snapshot after the last candle, the last bucket cannot be scored.
    assert _starts(_replace(inputs, open_interest=oi.iloc[:-1])) == ["00:00", "00:15"]


def test_a_realized_gap_is_left_out_not_counted_as_zero():
    inputs = _inputs(4)
    realized = inputs.realized.drop(index=2)
    series = bucket_series(_replace(inputs, realized=realized))
    assert [f"{ts:%H:%M}" for ts in series.buckets["bucket_start"]] == ["00:00", "00:15", "00:45"]
    assert series.buckets[series_column("model", "long")].iloc[2] == 10.0 * (9 + 10 + 11)


def test_buckets_without_ledger_rows_are_left_out():
    inputs = _inputs(4)
    ledger = inputs.ledger
    outside_history = ledger[ledger["ts"] >= START + 6 * STEP]  # modelled from 00:30 on
    assert _starts(_replace(inputs, ledger=outside_history)) == ["00:30", "00:45"]
    one_side_missing = ledger.drop(index=ledger.index[(ledger["side"] == "short")][10])
    assert _starts(_replace(inputs, ledger=one_side_missing)) == ["00:00", "00:15", "00:30"]


def test_candles_outside_every_realized_bucket_are_ignored():
    inputs = _inputs(4)
    realized = inputs.realized.iloc[1:3]
    assert _starts(_replace(inputs, realized=realized)) == ["00:15", "00:30"]


def test_no_realized_rows_give_an_empty_series_of_unknown_bucket_length():
    inputs = _inputs(2)
    series = bucket_series(_replace(inputs, realized=inputs.realized.iloc[:0]))
    assert series.n_buckets == 0
    assert series.bucket_minutes is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.assign(bucket_minutes=[15, 30, 15]), "mix bucket lengths"),
        (lambda r: r.assign(bucket_minutes=7), "not a whole number of 5-minute candles"),
        (
            lambda r: r.assign(
                bucket_start=r["bucket_start"] + pd.to_timedelta([0, 0, -15], "min")
            ),
            "overlap or repeat at 2025-12-01 00:15",
        ),
        (lambda r: r.assign(long_usd=[1.0, np.nan, 2.0]), "00:15:00 has no long or short"),
    ],
)
def test_an_inconsistent_realized_series_is_rejected(change, message):
    inputs = _inputs(3)
    with pytest.raises(ValueError, match=message):
        bucket_series(_replace(inputs, realized=change(inputs.realized)))


def test_window_keeps_the_buckets_lying_entirely_inside():
    series = bucket_series(_inputs(6))
    inside = series.window(datetime(2025, 12, 1, 0, 15), datetime(2025, 12, 1, 1, 10))
    assert [f"{ts:%H:%M}" for ts in inside.buckets["bucket_start"]] == ["00:15", "00:30", "00:45"]
    assert inside.bucket_minutes == BUCKET_MINUTES


def _rows(n_buckets: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    series = bucket_series(_inputs(n_buckets))
    frame = skill_rows(
        series,
        symbol="BTCUSDT",
        window_start=datetime(2025, 12, 1),
        window_end=datetime(2025, 12, 2),
        config_hash="abc",
        computed_at=datetime(2026, 1, 1, 12),
    )
    return frame, series.buckets


def test_skill_rows_score_every_side_and_predictor():
    frame, buckets = _rows(30)
    assert list(frame.columns) == list(SKILL_COLUMNS)
    # 3 sides x (3 predictors x 3 metrics + partial_spearman of model and baseline_return)
    assert len(frame) == 33
    assert not frame.duplicated(["side", "predictor", "metric"]).any()
    partial = frame[frame["metric"] == "partial_spearman"]
    assert set(partial["predictor"]) == {"model", "baseline_return"}
    assert (frame["n_buckets"] == 30).all()
    assert (frame["bucket_minutes"] == BUCKET_MINUTES).all()
    assert set(frame["config_hash"]) == {"abc"}
    values = frame.set_index(["side", "predictor", "metric"])["value"]
    realized = buckets[series_column("realized", "short")]
    model = buckets[series_column("model", "short")]
    control = buckets[series_column("baseline_range", "short")]
    assert values["short", "model", "spearman"] == metrics.spearman(model, realized)
    assert values["short", "model", "partial_spearman"] == metrics.partial_spearman(
        model, realized, control
    )
    assert values["short", "model", "top_decile_recall"] == metrics.top_decile_recall(
        model, realized
    )
    assert values["short", "model", "volume_ratio"] == pytest.approx(model.sum() / realized.sum())
    # On the long side the fixture's two baselines rank the buckets alike: nothing is left of
    # baseline_return once baseline_range is partialled out.
    assert values["long", "baseline_return", "spearman"] == pytest.approx(
        values["long", "baseline_range", "spearman"]
    )
    assert math.isnan(values["long", "baseline_return", "partial_spearman"])
    assert values.drop(("long", "baseline_return", "partial_spearman")).notna().all()


def test_skill_rows_of_too_few_buckets_are_nan_and_of_no_realized_series_absent():
    frame, _ = _rows(2)
    assert len(frame) == 33
    assert frame["value"].isna().all()
    assert (frame["n_buckets"] == 2).all()
    inputs = _inputs(2)
    empty = bucket_series(_replace(inputs, realized=inputs.realized.iloc[:0]))
    rows = skill_rows(
        empty,
        symbol="BTCUSDT",
        window_start=datetime(2025, 12, 1),
        window_end=datetime(2025, 12, 2),
        config_hash=None,
        computed_at=datetime(2026, 1, 1),
    )
    assert rows.empty
    assert list(rows.columns) == list(SKILL_COLUMNS)


def test_the_interval_sets_the_candles_per_bucket():
    inputs = _inputs(2)
    one_minute = SkillInputs(
        inputs.candles, inputs.open_interest, inputs.ledger, inputs.realized, timedelta(minutes=1)
    )
    # 15-minute buckets need fifteen 1-minute candles; the 5-minute fixture has three.
    assert bucket_series(one_minute).n_buckets == 0
