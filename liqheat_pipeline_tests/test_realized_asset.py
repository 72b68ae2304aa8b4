"""The realized_liquidations asset end to end: real CoinGlass file, real DuckDB file, checks."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.defs.validation.assets import (
    build_realized_asset,
    build_realized_check,
)
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.project import build_project
from liqheat_pipeline.settings import Settings
from liqheat_pipeline_tests.helpers.archive_fixtures import csv_bytes, write_file
from liqheat_pipeline_tests.helpers.pipeline_runs import (
    failure_messages,
    load_definitions,
    pipeline_env,
)
from liqheat_pipeline_tests.test_realized_readers import (
    REAL_FILE,
    SNAPSHOT_HEADER,
    order,
    snapshot_path,
)

pytestmark = pytest.mark.usefixtures("real_liquidations_dir")


@pytest.fixture
def liquidations_dir(tmp_path: Path) -> Path:
    """A private copy of the real CoinGlass folder, so tests can add files beside it."""
    folder = tmp_path / "liquidations" / "coinglass" / "BTC"
    folder.mkdir(parents=True)
    shutil.copy(REAL_FILE, folder / REAL_FILE.name)
    return tmp_path / "liquidations"


def settings_for(tmp_path: Path, liquidations_dir: Path, symbols=("BTCUSDT", "ETHUSDT")):
    return Settings(
        data_dir=tmp_path / "binance",
        db_path=tmp_path / "liqheat.duckdb",
        symbols=symbols,
        start_date=date(2025, 12, 1),
        download=False,
        model_config_path=None,
        liquidations_dir=liquidations_dir,
    )


def run(settings: Settings, instance, first: str, last: str, *, raise_on_error: bool = True):
    """Materialize every symbol's asset and check over [first, last] in one run."""
    project = build_project(settings)
    definitions = [
        definition
        for spec in project.symbols
        for definition in (build_realized_asset(spec, project), build_realized_check(spec, project))
    ]
    return dg.materialize(
        definitions,
        instance=instance,
        resources={"database": LiqheatDatabase(path=str(settings.db_path))},
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=raise_on_error,
    )


def stored(settings: Settings, symbol: str = "BTCUSDT") -> pd.DataFrame:
    with warehouse.connect(settings.db_path, read_only=True) as conn:
        return conn.execute(
            "SELECT * FROM realized_liquidations WHERE symbol = ? ORDER BY bucket_start", [symbol]
        ).fetchdf()


def metadata_of(result: dg.ExecuteInProcessResult, symbol: str) -> dict[str, dict]:
    """Each partition's metadata (a range run records one materialization per partition)."""
    events = result.asset_materializations_for_node(f"{symbol.lower()}__realized_liquidations")
    return {
        event.partition: {name: value.value for name, value in event.metadata.items()}
        for event in events
    }


def test_a_month_writes_719_btc_buckets_and_eth_succeeds_without_data(
    tmp_path, liquidations_dir, instance
):
    settings = settings_for(tmp_path, liquidations_dir)
    result = run(settings, instance, "2025-12-01", "2025-12-30")
    assert result.success

    rows = stored(settings)
    assert len(rows) == 719
    assert rows["bucket_start"].min() == pd.Timestamp("2025-12-01 00:00")
    assert rows["bucket_start"].max() == pd.Timestamp("2025-12-30 23:00")
    assert pd.Timestamp("2025-12-27 02:00") not in set(rows["bucket_start"])
    assert set(rows["bucket_minutes"]) == {60}
    assert set(rows["source"]) == {REAL_FILE.name}
    raw = pd.read_csv(REAL_FILE)
    december = raw[(raw["timestamp"] >= 1764547200000) & (raw["timestamp"] < 1767139200000)]
    assert rows["long_usd"].sum() == pytest.approx(december["longUsd"].sum(), rel=1e-12)

    # Each day's event holds that day's own figures.
    btc = metadata_of(result, "BTCUSDT")
    assert len(btc) == 30
    assert sum(day["dagster/partition_row_count"] for day in btc.values()) == 719
    assert btc["2025-12-27"]["dagster/partition_row_count"] == 23
    assert btc["2025-12-27"]["missing_buckets"] == 1
    assert btc["2025-12-27"]["missing_buckets_sample"] == "2025-12-27 02:00"
    assert btc["2025-12-26"]["missing_buckets"] == 0
    assert btc["2025-12-05"]["sources"] == REAL_FILE.name
    assert (
        btc["2025-12-05"]["scope"] == "BTC all contracts; Binance+Bybit+OKX (CoinGlass aggregate)"
    )
    assert sum(day["long_usd"] for day in btc.values()) == pytest.approx(
        december["longUsd"].sum(), abs=30
    )
    first_day = december[december["timestamp"] < 1764547200000 + 86_400_000]
    assert btc["2025-12-01"]["long_usd"] == round(first_day["longUsd"].sum())

    eth = metadata_of(result, "ETHUSDT")
    assert {day["dagster/partition_row_count"] for day in eth.values()} == {0}
    assert all("no realized data" in day["sources"] for day in eth.values())
    assert stored(settings, "ETHUSDT").empty

    # One evaluation per symbol and day, all passing.
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 2 * 30 and all(e.passed for e in evaluations)
    assert {e.partition for e in evaluations} == set(btc)


def test_a_run_replaces_only_its_range_and_an_archive_day_takes_over(
    tmp_path, liquidations_dir, instance
):
    settings = settings_for(tmp_path, liquidations_dir, symbols=("BTCUSDT",))
    assert run(settings, instance, "2025-12-01", "2025-12-30").success
    before = stored(settings)
    snapshot = [order(datetime(2025, 12, 5, 13, 30), "SELL", 90_000.0, 2.0)]
    write_file(
        snapshot_path(settings.data_dir, date(2025, 12, 5)), csv_bytes(snapshot, SNAPSHOT_HEADER)
    )

    result = run(settings, instance, "2025-12-05", "2025-12-05")
    after = stored(settings)
    day = after["bucket_start"].dt.date == date(2025, 12, 5)
    assert len(after) == 719 and after["bucket_start"].is_unique
    assert set(after.loc[day, "source"]) == {"BTCUSDT-liquidationSnapshot-2025-12-05.csv"}
    assert after.loc[day, "long_usd"].sum() == 180_000.0
    pd.testing.assert_frame_equal(
        after[~day].reset_index(drop=True),
        before[before["bucket_start"].dt.date != date(2025, 12, 5)].reset_index(drop=True),
    )
    assert metadata_of(result, "BTCUSDT")["2025-12-05"]["dagster/partition_row_count"] == 24


def test_a_bad_file_fails_the_run_and_keeps_the_previous_rows(tmp_path, liquidations_dir, instance):
    settings = settings_for(tmp_path, liquidations_dir, symbols=("BTCUSDT",))
    assert run(settings, instance, "2025-12-01", "2025-12-30").success
    before = stored(settings)
    # The real file's first December row again, with another value: a conflicting duplicate.
    bad = liquidations_dir / "coinglass" / "BTC" / "zz-1h.csv"
    bad.write_text(
        "timestamp,datetime_utc,longUsd,shortUsd,totalUsd\n"
        "1764547200000,2025-12-01T00:00:00.000Z,1.0,2.0,3.0\n"
        "1764550800000,2025-12-01T01:00:00.000Z,1.0,2.0,3.0\n"
    )

    result = run(settings, instance, "2025-12-01", "2025-12-30", raise_on_error=False)
    assert not result.success
    message = failure_messages(result)
    assert "zz-1h.csv" in message and "conflicting" in message and "2025-12-01 00:00:00" in message
    pd.testing.assert_frame_equal(stored(settings), before)


def test_the_check_fails_on_negative_values_and_duplicate_buckets(
    tmp_path, liquidations_dir, instance
):
    settings = settings_for(tmp_path, liquidations_dir, symbols=("BTCUSDT",))
    assert run(settings, instance, "2025-12-01", "2025-12-01").success
    with duckdb.connect(str(settings.db_path)) as conn:
        conn.execute(
            "INSERT INTO realized_liquidations SELECT * FROM realized_liquidations "
            "WHERE bucket_start = TIMESTAMP '2025-12-01 05:00'"
        )
        conn.execute(
            "UPDATE realized_liquidations SET short_usd = -1 "
            "WHERE bucket_start = TIMESTAMP '2025-12-01 07:00'"
        )
    project = build_project(settings)
    (spec,) = project.symbols
    check = build_realized_check(spec, project)
    asset = build_realized_asset(spec, project)
    job = dg.Definitions(
        assets=[asset],
        asset_checks=[check],
        resources={"database": LiqheatDatabase(path=str(settings.db_path))},
    ).resolve_implicit_global_asset_job_def()
    result = job.get_subset(
        asset_selection=set(), asset_check_selection=set(check.check_keys)
    ).execute_in_process(instance=instance, partition_key="2025-12-01", raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    metadata = {name: value.value for name, value in evaluation.metadata.items()}
    assert metadata["bad_value_rows"] == 1 and metadata["duplicate_buckets"] == 1
    assert metadata["first_bad_value"] == "2025-12-01 07:00 UTC"
    assert metadata["first_duplicate"] == "2025-12-01 05:00 UTC"


def test_the_code_location_has_one_realized_asset_per_symbol(tmp_path):
    definitions = load_definitions(
        pipeline_env(
            tmp_path / "binance",
            tmp_path / "liqheat.duckdb",
            "BTCUSDT,ETHUSDT",
            LIQHEAT_LIQUIDATIONS_DIR=str(tmp_path),
        )
    )
    graph = definitions.resolve_asset_graph()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        node = graph.get(dg.AssetKey([symbol.lower(), "realized_liquidations"]))
        assert node.group_name == symbol.lower()
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.partitions_def is not None
        assert "observed, not modelled" in node.description.lower()
        key = dg.AssetKey([symbol.lower(), "realized_liquidations"])
        assert any(check.asset_key == key for check in graph.asset_check_keys)
