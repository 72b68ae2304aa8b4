"""Download mode end to end: the ingest assets fetch missing files from a mirror on 127.0.0.1."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from liqheat_pipeline.lib.archive.layout import find_daily_file
from liqheat_pipeline.lib.warehouse import connect
from liqheat_pipeline.settings import Settings
from liqheat_pipeline_tests.helpers.archive_fixtures import write_market
from liqheat_pipeline_tests.helpers.archive_mirror import serve_mirror
from liqheat_pipeline_tests.test_ingest_assets import run

SYMBOL = "TESTUSDT"
DAY = date(2025, 12, 1)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path / "local",
        db_path=tmp_path / "liqheat.duckdb",
        symbols=(SYMBOL,),
        start_date=DAY,
        download=True,
        model_config_path=None,
    )


def _row_counts(settings: Settings) -> tuple[int, int]:
    with connect(settings.db_path, read_only=True) as conn:
        candles = conn.execute("SELECT count(*) FROM candles").fetchone()[0]
        snapshots = conn.execute("SELECT count(*) FROM open_interest").fetchone()[0]
    return candles, snapshots


def test_missing_files_are_downloaded_verified_and_ingested(tmp_path, settings, instance):
    with serve_mirror(tmp_path / "remote") as mirror:
        write_market(mirror.directory, SYMBOL, [DAY], suffix=".zip")
        mirror.publish_checksums()
        result = run(replace(settings, archive_url=mirror.base_url), instance, DAY)

    assert result.success
    assert find_daily_file(settings.data_dir, "klines", SYMBOL, DAY).name.endswith(".zip")
    assert find_daily_file(settings.data_dir, "metrics", SYMBOL, DAY).name.endswith(".zip")
    assert _row_counts(settings) == (288, 288)


def test_unpublished_day_fails_clearly_and_writes_nothing(tmp_path, settings, instance):
    with serve_mirror(tmp_path / "remote") as mirror:
        result = run(replace(settings, archive_url=mirror.base_url), instance, DAY)

    assert not result.success
    failures = [
        event.event_specific_data.error.message
        for event in result.all_events
        if event.event_type_value == "STEP_FAILURE"
    ]
    assert any("not published" in message for message in failures), failures
    assert not settings.data_dir.exists() or not any(settings.data_dir.rglob("*.zip"))
    # The run fails before its write transaction: the database is not even created.
    assert not settings.db_path.exists() or _row_counts(settings) == (0, 0)
