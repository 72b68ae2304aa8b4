"""The model_skill asset on the real sample: BTCUSDT's 30 days against the CoinGlass hours.

The pipeline (raw data, model, realized liquidations, skill) runs over the developer window in
one range run; the stored skill of the last window must equal an independent recomputation
here: the buckets in SQL, the metrics with scipy (nothing from ``lib/skill``).
"""

from __future__ import annotations

import base64
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline_tests.conftest import REAL_FIRST_DAY, REAL_LAST_DAY
from liqheat_pipeline_tests.helpers.pipeline_runs import (
    MODEL_ASSETS,
    RAW_ASSETS,
    load_definitions,
    materialize,
    pipeline_env,
)

pytestmark = pytest.mark.real_data

SKILL_ASSETS = (*RAW_ASSETS, *MODEL_ASSETS, "realized_liquidations", "model_skill")
LAST_WINDOW_END = pd.Timestamp("2025-12-31")
SIDES = ("long", "short", "total")

# Per realized hour: the candles (all twelve needed), OI at each candle's open and 5 minutes
# later, both ledger sides, and the three predictors as the validation issue defines them.
BUCKETS_SQL = """
WITH per_candle AS (
    SELECT time_bucket(INTERVAL 60 MINUTE, c.open_time) AS bucket_start,
           oi0.open_interest IS NOT NULL AND oi1.open_interest IS NOT NULL
               AND l.consumed_usd IS NOT NULL AND s.consumed_usd IS NOT NULL AS complete,
           l.consumed_usd AS model_long, s.consumed_usd AS model_short,
           (c.open - c.low) / c.open * oi0.open_interest * c.close AS range_long,
           (c.high - c.open) / c.open * oi0.open_interest * c.close AS range_short,
           greatest(0, c.open - c.close) / c.open * oi0.open_interest * c.close AS return_long,
           greatest(0, c.close - c.open) / c.open * oi0.open_interest * c.close AS return_short
    FROM candles c
    LEFT JOIN open_interest oi0 ON oi0.symbol = c.symbol AND oi0.ts = c.open_time
    LEFT JOIN open_interest oi1
        ON oi1.symbol = c.symbol AND oi1.ts = c.open_time + INTERVAL 5 MINUTE
    LEFT JOIN candle_ledger l ON l.symbol = c.symbol AND l.ts = c.open_time AND l.side = 'long'
    LEFT JOIN candle_ledger s ON s.symbol = c.symbol AND s.ts = c.open_time AND s.side = 'short'
    WHERE c.symbol = $symbol AND c.open_time >= $start AND c.open_time < $end
)
SELECT b.*, r.long_usd AS realized_long, r.short_usd AS realized_short
FROM (
    SELECT bucket_start, sum(model_long) AS model_long, sum(model_short) AS model_short,
           sum(range_long) AS range_long, sum(range_short) AS range_short,
           sum(return_long) AS return_long, sum(return_short) AS return_short
    FROM per_candle GROUP BY bucket_start HAVING count(*) = 12 AND bool_and(complete)
) b
JOIN realized_liquidations r ON r.symbol = $symbol AND r.bucket_start = b.bucket_start
ORDER BY b.bucket_start
"""


@pytest.fixture(scope="module")
def btc_run(tmp_path_factory, real_binance_dir, real_liquidations_dir, instance):
    db_path = tmp_path_factory.mktemp("skill") / "liqheat.duckdb"
    env = pipeline_env(
        real_binance_dir, db_path, LIQHEAT_LIQUIDATIONS_DIR=str(real_liquidations_dir)
    )
    definitions = load_definitions(env)
    result = materialize(definitions, instance, REAL_FIRST_DAY, REAL_LAST_DAY, assets=SKILL_ASSETS)
    assert result.success
    return db_path, definitions, result


def _skill(db_path, window_end=LAST_WINDOW_END) -> pd.DataFrame:
    with warehouse.connect(db_path, read_only=True) as conn:
        return conn.execute(
            "SELECT * FROM model_skill WHERE symbol = 'BTCUSDT' AND window_end = ? "
            "ORDER BY side, predictor, metric",
            [window_end],
        ).fetchdf()


def _expected(buckets: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    """Every metric of every side and predictor, with scipy and numpy only."""
    for name in ("model", "range", "return", "realized"):
        buckets[f"{name}_total"] = buckets[f"{name}_long"] + buckets[f"{name}_short"]
    size = math.ceil(len(buckets) / 10)
    expected = {}
    for side in SIDES:
        realized = buckets[f"realized_{side}"].to_numpy()
        control = stats.rankdata(buckets[f"range_{side}"])
        design = np.column_stack([np.ones(len(realized)), control])
        realized_top = stats.rankdata(-realized, method="ordinal") <= size
        for predictor, column in (
            ("model", "model"),
            ("baseline_range", "range"),
            ("baseline_return", "return"),
        ):
            predicted = buckets[f"{column}_{side}"].to_numpy()
            key = (side, predictor)
            expected[(*key, "spearman")] = stats.spearmanr(predicted, realized).statistic
            predicted_top = stats.rankdata(-predicted, method="ordinal") <= size
            expected[(*key, "top_decile_recall")] = (predicted_top & realized_top).sum() / size
            expected[(*key, "volume_ratio")] = predicted.sum() / realized.sum()
            if predictor != "baseline_range":
                residuals = [
                    ranks - design @ np.linalg.lstsq(design, ranks, rcond=None)[0]
                    for ranks in (stats.rankdata(predicted), stats.rankdata(realized))
                ]
                expected[(*key, "partial_spearman")] = stats.pearsonr(*residuals).statistic
    return expected


def test_the_last_window_equals_an_independent_recomputation(btc_run):
    db_path, _, _ = btc_run
    with warehouse.connect(db_path, read_only=True) as conn:
        buckets = conn.execute(
            BUCKETS_SQL,
            {"symbol": "BTCUSDT", "start": pd.Timestamp(REAL_FIRST_DAY), "end": LAST_WINDOW_END},
        ).fetchdf()
        (config_hash,) = conn.execute(
            "SELECT config_hash FROM model_runs WHERE symbol = 'BTCUSDT' AND day = ?",
            [pd.Timestamp(REAL_LAST_DAY).date()],
        ).fetchone()
    # 720 hours, less 00:00 of the first day (no OI snapshot at 2025-12-01 00:00 in the
    # sample) and the CoinGlass gap at 2025-12-27 02:00.
    hours = set(pd.date_range(REAL_FIRST_DAY, LAST_WINDOW_END, freq="h", inclusive="left"))
    assert hours - set(buckets["bucket_start"]) == {
        pd.Timestamp("2025-12-01 00:00"),
        pd.Timestamp("2025-12-27 02:00"),
    }
    stored = _skill(db_path)
    assert len(stored) == 33
    assert len(buckets) == 718
    assert (stored["n_buckets"] == len(buckets)).all()
    assert (stored["window_start"] == pd.Timestamp(REAL_FIRST_DAY)).all()
    assert (stored["bucket_minutes"] == 60).all()
    assert set(stored["config_hash"]) == {config_hash}
    values = stored.set_index(["side", "predictor", "metric"])["value"].to_dict()
    expected = _expected(buckets)
    assert values.keys() == expected.keys()
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_a_range_run_writes_one_cumulative_window_per_day(btc_run):
    db_path, _, _ = btc_run
    with warehouse.connect(db_path, read_only=True) as conn:
        windows = conn.execute(
            "SELECT window_end, count(*), min(n_buckets), max(n_buckets), "
            "count(DISTINCT window_start) FROM model_skill WHERE symbol = 'BTCUSDT' "
            "GROUP BY window_end ORDER BY window_end"
        ).fetchall()
    ends = [pd.Timestamp(row[0]) for row in windows]
    assert ends == list(pd.date_range("2025-12-02", LAST_WINDOW_END, freq="D"))
    assert all(row[1] == 33 and row[2] == row[3] and row[4] == 1 for row in windows)
    # Each window adds its day's 24 hours; the first day lacks 00:00, 2025-12-27 its 02:00.
    n_buckets = [row[2] for row in windows]
    days = pd.date_range(REAL_FIRST_DAY, REAL_LAST_DAY, freq="D")
    assert n_buckets == [
        24 * (i + 1) - 1 - (day >= pd.Timestamp("2025-12-27")) for i, day in enumerate(days)
    ]


def test_the_metadata_has_the_headline_and_a_small_figure(btc_run):
    db_path, _, result = btc_run
    # One materialization per partition of the range, each with its own window's figures; the
    # figure only on the run's last day.
    by_day = {
        event.partition: {key: value.value for key, value in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key.path == ["btcusdt", "model_skill"]
    }
    assert len(by_day) == 30
    assert [day for day, metadata in by_day.items() if "figure" in metadata] == [REAL_LAST_DAY]
    assert {metadata["dagster/partition_row_count"] for metadata in by_day.values()} == {33}
    assert by_day["2025-12-01"]["window"] == "[2025-12-01, 2025-12-02)"
    with warehouse.connect(db_path, read_only=True) as conn:
        stored = dict(
            conn.execute(
                "SELECT strftime(window_end - INTERVAL 1 DAY, '%Y-%m-%d'), max(n_buckets) "
                "FROM model_skill WHERE symbol = 'BTCUSDT' GROUP BY 1"
            ).fetchall()
        )
    assert {day: metadata["n_buckets"] for day, metadata in by_day.items()} == stored
    metadata = by_day[REAL_LAST_DAY]
    assert metadata["n_buckets"] == 718
    assert [record.data["side"] for record in metadata["headline"].records] == list(SIDES)
    png = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)\)", metadata["figure"])[1])
    assert png.startswith(b"\x89PNG")
    assert len(png) < 80_000


def test_rematerializing_one_day_replaces_only_its_window(btc_run, instance):
    db_path, definitions, _ = btc_run
    with warehouse.connect(db_path, read_only=True) as conn:
        before = conn.execute(
            "SELECT * FROM model_skill WHERE symbol = 'BTCUSDT' ORDER BY ALL"
        ).fetchdf()
    assert materialize(definitions, instance, "2025-12-15", assets=("model_skill",)).success
    with warehouse.connect(db_path, read_only=True) as conn:
        after = conn.execute(
            "SELECT * FROM model_skill WHERE symbol = 'BTCUSDT' ORDER BY ALL"
        ).fetchdf()
    day = before["window_end"] == pd.Timestamp("2025-12-16")
    assert (after["window_end"] == pd.Timestamp("2025-12-16")).sum() == day.sum() == 33
    key = ["window_end", "side", "predictor", "metric"]
    merged = before.merge(after, on=key, suffixes=("_before", "_after"), validate="1:1")
    same_day = merged["window_end"] == pd.Timestamp("2025-12-16")
    pd.testing.assert_series_equal(merged["value_before"], merged["value_after"], check_names=False)
    assert (merged["computed_at_after"] > merged["computed_at_before"])[same_day].all()
    assert (merged["computed_at_after"] == merged["computed_at_before"])[~same_day].all()


def test_a_symbol_without_realized_liquidations_succeeds_with_no_rows(
    tmp_path, real_binance_dir, real_liquidations_dir, instance
):
    db_path = tmp_path / "liqheat.duckdb"
    env = pipeline_env(
        real_binance_dir,
        db_path,
        symbols="ETHUSDT",
        LIQHEAT_LIQUIDATIONS_DIR=str(real_liquidations_dir),
    )
    result = materialize(load_definitions(env), instance, REAL_FIRST_DAY, assets=SKILL_ASSETS)
    assert result.success
    [materialization] = [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key.path == ["ethusdt", "model_skill"]
    ]
    assert "no realized liquidations" in materialization.metadata["skill"].value
    assert materialization.metadata["dagster/partition_row_count"].value == 0
    with warehouse.connect(db_path, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM model_skill").fetchone()[0] == 0
