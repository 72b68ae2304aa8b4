"""The ingest assets and raw-data checks, run by Dagster against hand-made archive files."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from liqheat_pipeline.defs.ingest import definitions as ingest_domain
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib.archive.plausibility import PlausibilityLimits
from liqheat_pipeline.lib.warehouse import connect
from liqheat_pipeline.settings import Settings
from liqheat_pipeline_tests.helpers.archive_fixtures import (
    KLINE_HEADER,
    METRICS_HEADER,
    csv_bytes,
    kline_rows,
    klines_path,
    metrics_path,
    metrics_rows,
    midnight,
    write_file,
    write_market,
)
from liqheat_pipeline_tests.helpers.pipeline_runs import ingest_definitions

SYMBOL = "TESTUSDT"
DAYS = [date(2025, 12, 1) + timedelta(days=i) for i in range(3)]
CANDLES_NODE = "testusdt__candles"
OI_NODE = "testusdt__open_interest"


@pytest.fixture
def settings(tmp_path) -> Settings:
    root = tmp_path / "archive"
    write_market(root, SYMBOL, DAYS)
    return Settings(
        data_dir=root,
        db_path=tmp_path / "liqheat.duckdb",
        symbols=(SYMBOL,),
        start_date=DAYS[0],
        download=False,
        model_config_path=None,
    )


def run(settings: Settings, instance, first: date, last: date | None = None):
    """One Dagster run over ``first`` (or the range first..last), never raising on failure."""
    tags = {}
    if last is not None:
        tags = {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        }
    return dg.materialize(
        ingest_definitions(settings),
        partition_key=None if last is not None else first.isoformat(),
        tags=tags,
        resources={"database": LiqheatDatabase(path=str(settings.db_path))},
        instance=instance,
        raise_on_error=False,
    )


def table(settings: Settings, name: str) -> pd.DataFrame:
    time_column = "ts" if name == "open_interest" else "open_time"
    with connect(settings.db_path, read_only=True) as conn:
        return conn.execute(f"SELECT * FROM {name} ORDER BY symbol, {time_column}").df()


def checks_by_name(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        f"{evaluation.asset_key.path[-1]}.{evaluation.check_name}": evaluation
        for evaluation in result.get_asset_check_evaluations()
    }


def failure_messages(result) -> str:
    return "\n".join(
        event.step_failure_data.user_failure_data.description
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.user_failure_data
    )


def rewrite_klines(settings: Settings, day: date, rows) -> None:
    path = klines_path(settings.data_dir, SYMBOL, day)
    write_file(path, csv_bytes(rows, KLINE_HEADER))


def rewrite_metrics(settings: Settings, day: date, rows) -> None:
    write_file(metrics_path(settings.data_dir, SYMBOL, day), csv_bytes(rows, METRICS_HEADER))


def test_one_day_lands_in_the_tables_with_metadata_and_passing_checks(settings, instance):
    result = run(settings, instance, DAYS[1])
    assert result.success

    candles = table(settings, "candles")
    rows = kline_rows(DAYS[1], base_price=180.0)
    assert len(candles) == 288 and set(candles["symbol"]) == {SYMBOL}
    assert candles["open_time"].iloc[0] == pd.Timestamp("2025-12-02 00:00")
    assert candles["close"].tolist() == [float(row[4]) for row in rows]
    assert candles["volume"].tolist() == [float(row[5]) for row in rows]
    assert candles["quote_volume"].isna().all() and candles["trades"].isna().all()

    oi = table(settings, "open_interest")
    assert len(oi) == 288
    assert oi["ts"].iloc[0] == pd.Timestamp("2025-12-02 00:05")
    assert oi["ts"].iloc[-1] == pd.Timestamp("2025-12-03 00:00")
    assert oi["open_interest"].tolist() == [float(row[2]) for row in metrics_rows(DAYS[1], SYMBOL)]

    (materialization,) = result.asset_materializations_for_node(CANDLES_NODE)
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert materialization.partition == "2025-12-02"
    assert metadata["dagster/partition_row_count"] == 288
    assert metadata["dagster/table_name"] == "candles"
    assert metadata["source_file"].endswith("TESTUSDT-5m-2025-12-02.csv")
    assert metadata["first_time"] == "2025-12-02 00:00:00 UTC"
    assert metadata["last_time"] == "2025-12-02 23:55:00 UTC"
    assert (metadata["missing_slots"], metadata["duplicates_dropped"]) == (0, 0)
    preview = materialization.metadata["preview"]
    assert [column.name for column in preview.schema.columns][:2] == ["open_time", "open"]
    assert preview.records[0].data["open_time"] == "2025-12-02 00:00:00"
    assert len(preview.records) == 6  # the first and last three rows

    (oi_materialization,) = result.asset_materializations_for_node(OI_NODE)
    oi_metadata = {key: value.value for key, value in oi_materialization.metadata.items()}
    assert oi_metadata["label_convention"] == (
        "create_time is the snapshot instant (from the content)"
    )
    assert oi_metadata["snapped_timestamps"] == 0

    evaluations = checks_by_name(result)
    assert set(evaluations) == {
        "candles.continuity",
        "candles.ohlc_sanity",
        "open_interest.positive_values",
        "open_interest.covers_candle_boundaries",
    }
    assert all(evaluation.passed for evaluation in evaluations.values())
    # Day D's 00:00 instant belongs to OI partition D-1, not ingested here: 288 of 289 covered.
    coverage = evaluations["open_interest.covers_candle_boundaries"].metadata
    assert (coverage["candle_instants"].value, coverage["instants_with_oi"].value) == (289, 288)


def test_a_range_is_one_run_writing_every_day(settings, instance):
    result = run(settings, instance, DAYS[0], DAYS[-1])
    assert result.success
    candles, oi = table(settings, "candles"), table(settings, "open_interest")
    assert len(candles) == len(oi) == 3 * 288
    assert candles["open_time"].is_monotonic_increasing and candles["open_time"].is_unique
    assert oi["ts"].iloc[0] == pd.Timestamp("2025-12-01 00:05")
    assert oi["ts"].iloc[-1] == pd.Timestamp("2025-12-04 00:00")

    materializations = result.asset_materializations_for_node(CANDLES_NODE)
    assert sorted(m.partition for m in materializations) == [day.isoformat() for day in DAYS]
    # Each partition's event carries that day's own figures.
    for materialization in materializations:
        metadata = {key: value.value for key, value in materialization.metadata.items()}
        assert metadata["dagster/partition_row_count"] == 288
        assert metadata["source_file"].endswith(f"-{materialization.partition}.csv")
        assert metadata["first_time"] == f"{materialization.partition} 00:00:00 UTC"
    # One evaluation per check and day, recorded against that day's partition.
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 4 * len(DAYS) and all(e.passed for e in evaluations)
    coverage = {
        e.partition: (e.metadata["candle_instants"].value, e.metadata["instants_with_oi"].value)
        for e in evaluations
        if e.check_name == "covers_candle_boundaries"
    }
    # Only the first day lacks its 00:00 snapshot (open_interest partition D-1, not ingested).
    assert coverage == {
        "2025-12-01": (289, 288),
        "2025-12-02": (289, 289),
        "2025-12-03": (289, 289),
    }


def test_rematerializing_a_day_replaces_exactly_its_rows(settings, instance):
    assert run(settings, instance, DAYS[0], DAYS[-1]).success
    candles_before, oi_before = table(settings, "candles"), table(settings, "open_interest")

    rewrite_klines(settings, DAYS[1], kline_rows(DAYS[1], base_price=200.0))
    changed_oi = metrics_rows(DAYS[1], SYMBOL)
    for row in changed_oi:
        row[2] = str(float(row[2]) * 2)
    rewrite_metrics(settings, DAYS[1], changed_oi)
    assert run(settings, instance, DAYS[1]).success

    candles_after, oi_after = table(settings, "candles"), table(settings, "open_interest")
    in_day = candles_after["open_time"].dt.normalize() == pd.Timestamp(DAYS[1])
    assert candles_after["open"][in_day].tolist() == [
        float(row[1]) for row in kline_rows(DAYS[1], base_price=200.0)
    ]
    pd.testing.assert_frame_equal(
        candles_after[~in_day].reset_index(drop=True),
        candles_before[
            candles_before["open_time"].dt.normalize() != pd.Timestamp(DAYS[1])
        ].reset_index(drop=True),
    )
    # open_interest partition D owns (D 00:00, D+1 00:00].
    owned = (oi_after["ts"] > pd.Timestamp(DAYS[1])) & (oi_after["ts"] <= pd.Timestamp(DAYS[2]))
    assert oi_after["open_interest"][owned].tolist() == [float(row[2]) for row in changed_oi]
    pd.testing.assert_frame_equal(
        oi_after[~owned].reset_index(drop=True), oi_before[~owned].reset_index(drop=True)
    )
    assert len(candles_after) == len(candles_before) and len(oi_after) == len(oi_before)


def test_a_bad_file_fails_the_run_and_writes_nothing(settings, instance):
    assert run(settings, instance, DAYS[0], DAYS[-1]).success
    candles_before = table(settings, "candles")

    # Day 0 gets new valid prices, day 2 a broken row: the range must not write day 0 either.
    rewrite_klines(settings, DAYS[0], kline_rows(DAYS[0], base_price=90.0))
    broken = kline_rows(DAYS[2], base_price=260.0)
    broken[9][2] = "abc"
    rewrite_klines(settings, DAYS[2], broken)
    result = run(settings, instance, DAYS[0], DAYS[-1])

    assert not result.success
    message = failure_messages(result)
    assert "TESTUSDT-5m-2025-12-03.csv, line 11: high 'abc' is not a number" in message
    pd.testing.assert_frame_equal(table(settings, "candles"), candles_before)
    assert not result.asset_materializations_for_node(CANDLES_NODE)


def test_a_missing_file_without_download_names_the_path_and_the_switch(settings, instance):
    metrics_path(settings.data_dir, SYMBOL, DAYS[1]).unlink()
    result = run(settings, instance, DAYS[1])
    assert not result.success
    message = failure_messages(result)
    assert "futures/um/daily/metrics/TESTUSDT/TESTUSDT-metrics-2025-12-02.zip" in message
    assert "LIQHEAT_DOWNLOAD=1" in message
    assert table(settings, "open_interest").empty


def stored_tables(settings: Settings) -> dict[str, pd.DataFrame]:
    return {name: table(settings, name) for name in ("candles", "open_interest")}


def assert_rejected_and_untouched(
    settings: Settings, instance, before: dict[str, pd.DataFrame], *fragments: str
) -> None:
    """A run over every day fails naming ``fragments`` and leaves the stored rows as they were."""
    result = run(settings, instance, DAYS[0], DAYS[-1])
    assert not result.success
    message = failure_messages(result)
    for fragment in fragments:
        assert fragment in message, message
    after = stored_tables(settings)
    for name, rows in before.items():
        pd.testing.assert_frame_equal(after[name], rows)


@pytest.mark.parametrize("dataset", ["klines", "metrics"])
def test_a_header_only_file_fails_and_keeps_the_stored_day(settings, instance, dataset):
    """It deleted the day's 288 rows before (issue 9, defect 4)."""
    assert run(settings, instance, DAYS[0], DAYS[-1]).success
    before = stored_tables(settings)
    if dataset == "klines":
        path, header = klines_path(settings.data_dir, SYMBOL, DAYS[1]), KLINE_HEADER
    else:
        path, header = metrics_path(settings.data_dir, SYMBOL, DAYS[1]), METRICS_HEADER
    write_file(path, csv_bytes([], header))
    assert_rejected_and_untouched(
        settings, instance, before, f"{path.name}: the file has a header but no data rows"
    )


def test_an_impossible_candle_fails_before_anything_is_written(settings, instance):
    """A candle with high < low stayed stored after its blocking check failed (defect 3)."""
    assert run(settings, instance, DAYS[0], DAYS[-1]).success
    before = stored_tables(settings)
    rows = kline_rows(DAYS[0], base_price=100.0)
    rows[40][2], rows[40][3] = "99", "101"
    rewrite_klines(settings, DAYS[0], rows)
    assert_rejected_and_untouched(
        settings, instance, before, "TESTUSDT-5m-2025-12-01.csv, line 42: high 99 is below low 101"
    )


def test_open_interest_times_1000_fails_naming_the_line_and_value(settings, instance):
    """One metrics row ×1000 passed every check and reached the model (defect 5)."""
    assert run(settings, instance, DAYS[0], DAYS[-1]).success
    before = stored_tables(settings)
    rows = metrics_rows(DAYS[2], SYMBOL)
    rows[50][2] = str(float(rows[50][2]) * 1000)
    rewrite_metrics(settings, DAYS[2], rows)
    assert_rejected_and_untouched(
        settings,
        instance,
        before,
        "TESTUSDT-metrics-2025-12-03.csv, line 52: sum_open_interest 1076500 is +100040% in "
        "5 minutes from 1075 (line 51), beyond LIQHEAT_MAX_OI_CHANGE_PCT=50",
    )


def test_a_candle_high_of_1e300_fails_naming_the_line_and_value(settings, instance):
    """It consumed every short level before (defect 5)."""
    assert run(settings, instance, DAYS[0], DAYS[-1]).success
    before = stored_tables(settings)
    rows = kline_rows(DAYS[1], base_price=180.0)
    rows[7][2] = "1e300"
    rewrite_klines(settings, DAYS[1], rows)
    assert_rejected_and_untouched(
        settings,
        instance,
        before,
        "TESTUSDT-5m-2025-12-02.csv, line 9: high 1e+300 is beyond any real price",
        "LIQHEAT_MAX_VALUE=1e+15",
    )


def test_a_day_at_another_scale_fails_against_the_day_before_it(settings, instance):
    """Each candle is plausible beside the others; the first is not beside the day before."""
    assert run(settings, instance, DAYS[0], DAYS[-1]).success
    before = stored_tables(settings)
    rewrite_klines(settings, DAYS[1], kline_rows(DAYS[1], base_price=180_000.0))
    # Alone, day 1 is judged against the stored day 0; in a range, against day 0's file.
    result = run(settings, instance, DAYS[1])
    assert not result.success
    assert "of the previous close 171.875 (the stored candles row at 2025-12-01 23:55)" in (
        failure_messages(result)
    )
    assert_rejected_and_untouched(
        settings,
        instance,
        before,
        "TESTUSDT-5m-2025-12-02.csv, line 2: high 180000.5 and low 179999.75 span",
        "of the previous close 171.875 (the last row of TESTUSDT-5m-2025-12-01.csv)",
    )


def test_the_ingest_limits_come_from_the_settings(settings, instance):
    rows = kline_rows(DAYS[0], base_price=100.0)
    rows[100][2] = "140"  # 12 % above the previous close 124.875
    rewrite_klines(settings, DAYS[0], rows)
    assert run(settings, instance, DAYS[0]).success
    tight = replace(settings, plausibility=PlausibilityLimits(max_candle_range=0.1))
    result = run(tight, instance, DAYS[0])
    assert not result.success
    assert "line 102" in failure_messages(result)
    assert "LIQHEAT_MAX_CANDLE_RANGE_PCT=10" in failure_messages(result)


def test_gaps_fail_the_continuity_check_without_blocking(settings, instance):
    rows = kline_rows(DAYS[0], base_price=100.0)
    del rows[10]  # 00:50 is missing
    rewrite_klines(settings, DAYS[0], rows)
    result = run(settings, instance, DAYS[0])

    continuity = checks_by_name(result)["candles.continuity"]
    assert not continuity.passed
    assert continuity.metadata["missing_slots"].value == 1
    assert continuity.metadata["missing_slots_sample"].value == "2025-12-01 00:50"
    assert result.success
    assert len(table(settings, "candles")) == 287


def test_thin_open_interest_coverage_is_a_warning(settings, instance):
    rows = metrics_rows(DAYS[0], SYMBOL)
    rewrite_metrics(settings, DAYS[0], rows[:100] + rows[110:])
    result = run(settings, instance, DAYS[0])
    assert result.success
    coverage = checks_by_name(result)["open_interest.covers_candle_boundaries"]
    assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.WARN
    assert coverage.metadata["coverage"].value == pytest.approx(278 / 289, abs=1e-6)
    assert coverage.metadata["candles_with_oi_at_both_ends"].value == 288 - 12
    # Uncovered: 00:00 (from OI partition D-1, not ingested) and the ten removed snapshots.
    uncovered = [midnight(DAYS[0])] + [
        midnight(DAYS[0]) + timedelta(minutes=5 * slot) for slot in range(101, 111)
    ]
    assert coverage.metadata["uncovered_sample"].value == ", ".join(
        f"{moment:%Y-%m-%d %H:%M}" for moment in uncovered
    )


def test_the_value_audits_catch_rows_written_by_something_else(settings, instance):
    """Ingest rejects such rows itself; the blocking checks stay as independent audits."""
    assert run(settings, instance, DAYS[0]).success
    with connect(settings.db_path) as conn:
        conn.execute("UPDATE open_interest SET open_interest = 0 WHERE ts = '2025-12-01 12:00'")
        conn.execute("UPDATE candles SET high = low - 1 WHERE open_time = '2025-12-01 03:20'")
    # A checks-only run: the partition goes in as a tag (Dagster cannot derive a partitions
    # definition from a selection without assets).
    result = dg.materialize(
        ingest_definitions(settings),
        selection=dg.AssetSelection.checks_for_assets(
            dg.AssetKey(["testusdt", "open_interest"]), dg.AssetKey(["testusdt", "candles"])
        ),
        tags={"dagster/partition": DAYS[0].isoformat()},
        resources={"database": LiqheatDatabase(path=str(settings.db_path))},
        instance=instance,
        raise_on_error=False,
    )
    evaluations = checks_by_name(result)
    for name, when in [
        ("open_interest.positive_values", "2025-12-01 12:00:00"),
        ("candles.ohlc_sanity", "2025-12-01 03:20:00"),
    ]:
        assert not evaluations[name].passed
        assert evaluations[name].metadata["bad_rows"].value == 1
        (record,) = evaluations[name].metadata["bad_rows_sample"].records
        assert when in record.data.values()
    assert not result.asset_materializations_for_node(OI_NODE)


def test_mark_price_candles_exist_only_with_their_folder(settings, instance, tmp_path):
    keys = {
        key.to_user_string()
        for a in ingest_definitions(settings)
        if isinstance(a, dg.AssetsDefinition)
        for key in a.keys
    }
    assert keys == {"testusdt/candles", "testusdt/open_interest"}

    write_market(settings.data_dir, SYMBOL, DAYS, mark_price=True)
    assets = [a for a in ingest_definitions(settings) if isinstance(a, dg.AssetsDefinition)]
    by_key = {key.to_user_string(): a for a in assets for key in a.keys}
    assert set(by_key) == keys | {"testusdt/mark_price_candles"}
    mark = by_key["testusdt/mark_price_candles"]
    assert mark.group_names_by_key[mark.key] == "testusdt"
    assert mark.backfill_policy == dg.BackfillPolicy.single_run()

    result = run(settings, instance, DAYS[2])
    assert result.success
    marks = table(settings, "mark_price_candles")
    assert marks["high"].tolist() == [
        float(row[2]) for row in kline_rows(DAYS[2], base_price=260.01)
    ]
    evaluations = checks_by_name(result)
    assert evaluations["mark_price_candles.ohlc_sanity"].passed
    assert evaluations["mark_price_candles.continuity"].passed


def test_domain_definitions_follow_the_environment(monkeypatch, tmp_path):
    write_market(tmp_path, "ETHUSDT", DAYS[:1], mark_price=True)
    monkeypatch.setenv("LIQHEAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LIQHEAT_SYMBOLS", "BTCUSDT,ETHUSDT")
    definitions = ingest_domain.defs()
    asset_keys = {key.to_user_string() for asset in definitions.assets for key in asset.keys}
    assert asset_keys == {
        "btcusdt/candles",
        "btcusdt/open_interest",
        "ethusdt/candles",
        "ethusdt/open_interest",
        "ethusdt/mark_price_candles",
    }
    check_keys = {
        f"{key.asset_key.to_user_string()}.{key.name}"
        for check in definitions.asset_checks
        for key in check.check_keys
    }
    assert "ethusdt/mark_price_candles.ohlc_sanity" in check_keys
    assert "btcusdt/open_interest.covers_candle_boundaries" in check_keys
    assert len(check_keys) == 10
