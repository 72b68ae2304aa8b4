"""The model assets in Dagster on real data: carried state, ranges, idempotence, failures, TZ.

Real BTCUSDT days 2025-12-01..04 are ingested and modelled into temporary DuckDB files, once as
four daily runs and once as one single-run range.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from liqheat_pipeline.defs.model.checks import MODEL_CHECKS
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline_tests.conftest import REPO_ROOT
from liqheat_pipeline_tests.helpers.pipeline_runs import (
    MODEL_ASSETS,
    RAW_ASSETS,
    assert_same_rows,
    failure_messages,
    load_definitions,
    materialize,
    model_rows,
    pipeline_env,
    subprocess_env,
)

DAYS = ("2025-12-01", "2025-12-02", "2025-12-03", "2025-12-04")
pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def daily_db(tmp_path_factory, real_binance_dir, instance):
    """The four days materialized one run per day."""
    db_path = tmp_path_factory.mktemp("daily") / "liqheat.duckdb"
    definitions = load_definitions(pipeline_env(real_binance_dir, db_path))
    for day in DAYS:
        assert materialize(definitions, instance, day).success
    return db_path


@pytest.fixture(scope="module")
def range_run(tmp_path_factory, real_binance_dir, instance):
    """The four days materialized in one single-run range."""
    db_path = tmp_path_factory.mktemp("range") / "liqheat.duckdb"
    definitions = load_definitions(pipeline_env(real_binance_dir, db_path))
    result = materialize(definitions, instance, DAYS[0], DAYS[-1])
    assert result.success
    return db_path, result


def _copy(db_path, tmp_path):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(db_path, copy)
    return copy


def _count(db_path, sql: str, params: list) -> int:
    with warehouse.connect(db_path, read_only=True) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_a_range_run_gives_exactly_the_rows_of_day_by_day_runs(daily_db, range_run):
    range_db, _ = range_run
    daily = model_rows(daily_db)
    # Nothing dusts out within a few days: a level's share falls below 1e-9 after months.
    assert all(len(daily[table]) > 0 for table in daily if table != "level_closeouts")
    assert set(daily["model_runs"]["day"].astype(str)) == set(DAYS)
    assert_same_rows(model_rows(range_db), daily)


def test_every_model_check_passes_on_the_range(range_run):
    _, result = range_run
    evaluations = result.get_asset_check_evaluations()
    model_checks = [e for e in evaluations if e.asset_key.path[-1] in MODEL_ASSETS]
    # One evaluation per check and day, each recorded against its own day's partition.
    assert sorted(
        (e.asset_key.path[-1], e.check_name, e.partition) for e in model_checks
    ) == sorted((asset, name, day) for asset, name in MODEL_CHECKS for day in DAYS)
    assert [e for e in model_checks if not e.passed] == []


@pytest.mark.parametrize(
    ("first", "last"), [("2025-12-02", None), ("2025-12-03", "2025-12-04")], ids=["day", "range"]
)
def test_rematerializing_inside_the_history_reproduces_identical_rows(
    daily_db, real_binance_dir, instance, tmp_path, first, last
):
    copy = _copy(daily_db, tmp_path)
    definitions = load_definitions(pipeline_env(real_binance_dir, copy))
    assert materialize(definitions, instance, first, last, assets=MODEL_ASSETS).success
    assert_same_rows(model_rows(copy), model_rows(daily_db))


def test_a_day_without_its_previous_state_fails_clearly_and_writes_nothing(
    real_binance_dir, instance, db_path
):
    definitions = load_definitions(pipeline_env(real_binance_dir, db_path))
    assert materialize(definitions, instance, DAYS[0], DAYS[2], assets=RAW_ASSETS).success
    assert materialize(definitions, instance, DAYS[0], assets=MODEL_ASSETS).success
    result = materialize(definitions, instance, DAYS[2], assets=MODEL_ASSETS, raise_on_error=False)
    assert not result.success
    message = failure_messages(result)
    assert "no stored model state at the end of 2025-12-02" in message
    # It says how to fix it: resume right after the last computed day.
    assert "--partition-range 2025-12-02...2025-12-03" in message
    written = _count(
        db_path, "SELECT count(*) FROM candle_ledger WHERE ts >= ?", ["2025-12-02 00:00:00"]
    )
    assert written == 0
    assert _count(db_path, "SELECT count(*) FROM model_runs", []) == 1


def test_a_changed_model_configuration_must_restart_from_the_first_day(
    daily_db, real_binance_dir, instance, tmp_path
):
    copy = _copy(daily_db, tmp_path)
    config = tmp_path / "model.json"
    config.write_text(json.dumps({"n_rep": 20_000}))
    env = pipeline_env(real_binance_dir, copy, LIQHEAT_MODEL_CONFIG=str(config))
    definitions = load_definitions(env)
    result = materialize(definitions, instance, DAYS[2], assets=MODEL_ASSETS, raise_on_error=False)
    assert not result.success
    message = failure_messages(result)
    assert "model configuration changed" in message
    # The range runs through the last stored day: no later day may keep the old configuration.
    assert "--partition-range 2025-12-01...2025-12-04" in message
    assert_same_rows(model_rows(copy), model_rows(daily_db))
    # The documented fix: re-run from the first day of the history through the last stored day.
    assert materialize(definitions, instance, DAYS[0], DAYS[3], assets=MODEL_ASSETS).success
    assert _count(copy, "SELECT count(DISTINCT config_hash) FROM model_runs", []) == 1


def test_an_invalid_model_configuration_fails_when_the_definitions_load(tmp_path):
    config = tmp_path / "model.json"
    config.write_text(json.dumps({"side_model": "coin_flip"}))
    result = subprocess.run(
        [sys.executable, "-c", "from liqheat_pipeline.definitions import defs; defs()"],
        env=subprocess_env(LIQHEAT_MODEL_CONFIG=str(config)),
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "side_model" in result.stderr
    assert "coin_flip" in result.stderr


def test_each_partition_carries_its_own_days_figures(range_run):
    db_path, result = range_run
    metadata = {
        (event.asset_key.path[-1], event.partition): event.metadata
        for event in result.get_asset_materialization_events()
        for event in [event.event_specific_data.materialization]
        if event.asset_key.path[-1] in MODEL_ASSETS
    }
    assert set(metadata) == {(asset, day) for asset in MODEL_ASSETS for day in DAYS}
    with warehouse.connect(db_path, read_only=True) as conn:
        active = {
            (str(day), side): usd
            for day, side, usd in conn.execute(
                "SELECT s.day, o.side, sum(s.remaining_usd) FROM model_state s "
                "JOIN level_openings o USING (symbol, level_id) GROUP BY ALL"
            ).fetchall()
        }
        liquidated = {
            (str(day), side): usd
            for day, side, usd in conn.execute(
                "SELECT consumed_at::DATE, side, sum(consumed_usd) FROM level_consumptions "
                "GROUP BY ALL"
            ).fetchall()
        }
        snapshot_rows = dict(
            (str(day), rows)
            for day, rows in conn.execute(
                "SELECT ts::DATE, count(*) FROM heatmap_snapshots GROUP BY ALL"
            ).fetchall()
        )
        segments = dict(
            (str(day), rows)
            for day, rows in conn.execute(
                "SELECT first_ts::DATE, count(*) FROM snapshot_segments GROUP BY ALL"
            ).fetchall()
        )
        coverage = {
            (str(day), side): value
            for day, side, value in conn.execute(
                "SELECT ts::DATE, side, arg_max(coverage, ts) FROM candle_ledger "
                "WHERE coverage IS NOT NULL GROUP BY ALL"
            ).fetchall()
        }
    for day in DAYS:
        state, ledger = metadata["model_state", day], metadata["candle_ledger", day]
        consumptions, snapshots = (
            metadata["level_consumptions", day],
            metadata["heatmap_snapshots", day],
        )
        for side in ("long", "short"):
            assert ledger[f"coverage_{side}"].value == f"{coverage[day, side]:.1%}"
            # USD as whole dollars (an int: the UI shows thousands separators).
            assert state[f"active_{side}_usd"].value == round(active[day, side])
            assert consumptions[f"liquidated_{side}_usd"].value == round(
                liquidated.get((day, side), 0.0)
            )
        assert snapshots["dagster/partition_row_count"].value == segments[day]
        assert snapshots["snapshot_rows"].value == snapshot_rows[day] > segments[day]
        clusters = snapshots["largest_active_clusters"].value
        assert len(clusters.records) == 5
        assert [c.name for c in clusters.schema.columns] == ["price_bucket", "side", "active_usd"]
        assert state["assumptions"].value["closure_model"] == "oi_share_net"


_RUN_IN_NEW_YORK = """
import time, sys
import dagster as dg
from liqheat_pipeline_tests.helpers.pipeline_runs import load_definitions, materialize, pipeline_env
assert time.tzname[0] == "EST", time.tzname
definitions = load_definitions(pipeline_env(sys.argv[1], sys.argv[2]))
with dg.instance_for_test() as instance:
    assert materialize(definitions, instance, sys.argv[3], sys.argv[4]).success
"""


def test_results_do_not_depend_on_the_host_time_zone(range_run, real_binance_dir, tmp_path):
    range_db, _ = range_run
    new_york_db = tmp_path / "new_york.duckdb"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_RUN_IN_NEW_YORK),
            str(real_binance_dir),
            str(new_york_db),
            DAYS[0],
            DAYS[-1],
        ],
        env=subprocess_env(TZ="America/New_York"),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_rows(model_rows(new_york_db), model_rows(range_db))
