"""The daily job and its schedule: yesterday's UTC partition at 00:30 UTC, every asset."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from liqheat_pipeline.definitions import defs
from liqheat_pipeline.defs.automation.schedules import (
    DAILY_JOB_NAME,
    DAILY_SCHEDULE_NAME,
    IN_PROCESS_EXECUTION,
)
from liqheat_pipeline.lib import warehouse

SCHEDULE_NAME = f"{DAILY_JOB_NAME}_schedule"


@pytest.fixture
def definitions(monkeypatch, tmp_path, real_binance_dir):
    monkeypatch.setenv("LIQHEAT_DATA_DIR", str(real_binance_dir))
    monkeypatch.setenv("LIQHEAT_DB", str(tmp_path / "liqheat.duckdb"))
    monkeypatch.setenv("LIQHEAT_SYMBOLS", "BTCUSDT,ETHUSDT")
    # Past the sample's last day, so that ticks after it have a partition to request.
    monkeypatch.setenv("LIQHEAT_END_DATE", "2026-01-31")
    return defs()


def test_offline_partitions_end_at_the_last_day_the_mirror_has(monkeypatch, real_binance_dir):
    monkeypatch.setenv("LIQHEAT_DATA_DIR", str(real_binance_dir))
    monkeypatch.setenv("LIQHEAT_SYMBOLS", "BTCUSDT,ETHUSDT")
    monkeypatch.delenv("LIQHEAT_END_DATE", raising=False)
    monkeypatch.delenv("LIQHEAT_DOWNLOAD", raising=False)
    partitions = defs().resolve_job_def(DAILY_JOB_NAME).partitions_def
    keys = partitions.get_partition_keys()
    assert (keys[0], keys[-1], len(keys)) == ("2025-12-01", "2025-12-30", 30)


def _run_requests(definitions, when: datetime) -> list[dg.RunRequest]:
    schedule = definitions.resolve_schedule_def(SCHEDULE_NAME)
    with (
        dg.instance_for_test() as instance,
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when) as context,
    ):
        return list(schedule.evaluate_tick(context).run_requests)


def _requested_partitions(definitions, when: datetime) -> list[str]:
    return [request.partition_key for request in _run_requests(definitions, when)]


def test_schedule_runs_at_half_past_midnight_utc(definitions):
    schedule = definitions.resolve_schedule_def(SCHEDULE_NAME)
    assert schedule.cron_schedule == "30 0 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == DAILY_JOB_NAME


@pytest.mark.parametrize(
    "when",
    [
        datetime(2025, 12, 5, 0, 30, tzinfo=UTC),
        # The same instant seen from New York (the evening before, local time).
        datetime(2025, 12, 5, 0, 30, tzinfo=UTC).astimezone(ZoneInfo("America/New_York")),
    ],
    ids=["utc", "new_york"],
)
def test_a_tick_requests_the_day_that_just_ended(definitions, when):
    assert _requested_partitions(definitions, when) == ["2025-12-04"]


def test_a_tick_runs_its_day_in_one_process_once(definitions):
    """One day of every symbol: the in-process executor (no process start per step), and one
    run per day however often the tick is evaluated."""
    (request,) = _run_requests(definitions, datetime(2025, 12, 5, 0, 30, tzinfo=UTC))
    assert request.run_config == IN_PROCESS_EXECUTION
    job = definitions.resolve_job_def(DAILY_JOB_NAME)
    (executor,) = dg.validate_run_config(job, request.run_config)["execution"].values()
    assert set(executor) == {"in_process"}
    assert request.run_key == "2025-12-04"
    assert SCHEDULE_NAME == DAILY_SCHEDULE_NAME


def test_the_tick_after_a_month_end_requests_the_last_day_of_the_month(definitions):
    tick = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    assert _requested_partitions(definitions, tick) == ["2025-12-31"]


def test_the_job_selects_every_asset_and_check_of_every_symbol(definitions):
    job = definitions.resolve_job_def(DAILY_JOB_NAME)
    graph = definitions.resolve_asset_graph()
    selected = {key for node in job.asset_layer.asset_graph.asset_nodes for key in [node.key]}
    assert selected == set(graph.get_all_asset_keys()) - {
        key for key in graph.get_all_asset_keys() if graph.get(key).is_external
    }
    assert set(job.asset_layer.asset_graph.asset_check_keys) == set(graph.asset_check_keys)
    assert job.partitions_def == dg.DailyPartitionsDefinition(
        "2025-12-01", end_date="2026-02-01", timezone="UTC"
    )


def test_the_job_runs_one_day_for_every_symbol(definitions, tmp_path):
    job = definitions.resolve_job_def(DAILY_JOB_NAME)
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(partition_key="2025-12-01", instance=instance)
    assert result.success
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed == []
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"btcusdt/heatmap_snapshots", "ethusdt/model_state"} <= materialized
    with warehouse.connect(tmp_path / "liqheat.duckdb", read_only=True) as conn:
        ledger = conn.execute(
            "SELECT symbol, count(*), min(ts), max(ts) FROM candle_ledger GROUP BY symbol "
            "ORDER BY symbol"
        ).fetchall()
    day, last = datetime(2025, 12, 1), datetime(2025, 12, 1, 23, 55)
    assert ledger == [("BTCUSDT", 576, day, last), ("ETHUSDT", 576, day, last)]
