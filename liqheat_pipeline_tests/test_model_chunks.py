"""The model asset streams a range in chunks of LIQHEAT_MODEL_CHUNK_DAYS days, one transaction
each, on real BTCUSDT 12-01..04: the rows do not depend on the chunk size, a failure keeps the
chunks before it (and says so), and later stored days are still refused before the first chunk
is written."""

from __future__ import annotations

import shutil

import pytest

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline_tests.helpers.pipeline_runs import (
    MODEL_ASSETS,
    RAW_ASSETS,
    assert_same_rows,
    failure_messages,
    load_definitions,
    materialize,
    model_rows,
    pipeline_env,
    run_checks_only,
)

pytestmark = pytest.mark.real_data
DAYS = ("2025-12-01", "2025-12-02", "2025-12-03", "2025-12-04")
FIRST, LAST = DAYS[0], DAYS[-1]
# One candle of 12-03 with its low above its high: the engine refuses the day (ModelInputError).
BROKEN_CANDLE = "TIMESTAMP '2025-12-03 12:00:00'"
# The last candle of 12-02 widened: 12-02's end state changes (as with a corrected archive file).
WIDENED_CANDLE = "TIMESTAMP '2025-12-02 23:55:00'"


@pytest.fixture(scope="module")
def raw_db(tmp_path_factory, real_binance_dir, instance):
    """12-01..04 ingested, no model yet."""
    db_path = tmp_path_factory.mktemp("raw") / "liqheat.duckdb"
    definitions = load_definitions(pipeline_env(real_binance_dir, db_path))
    assert materialize(definitions, instance, FIRST, LAST, assets=RAW_ASSETS).success
    return db_path


@pytest.fixture(scope="module")
def one_chunk_db(raw_db, tmp_path_factory, real_binance_dir, instance):
    """The model of 12-01..04 written in a single chunk."""
    db_path = tmp_path_factory.mktemp("one_chunk") / "liqheat.duckdb"
    shutil.copyfile(raw_db, db_path)
    definitions = load_definitions(
        pipeline_env(real_binance_dir, db_path, LIQHEAT_MODEL_CHUNK_DAYS=str(len(DAYS)))
    )
    assert materialize(definitions, instance, FIRST, LAST, assets=MODEL_ASSETS).success
    return db_path


def _run(source, tmp_path, real_binance_dir, instance, first, last, *, days_per_chunk):
    """Copy ``source`` and run the model assets of first..last on the copy in chunks."""
    copy = tmp_path / "copy.duckdb"
    if not copy.exists():
        shutil.copyfile(source, copy)
    definitions = load_definitions(
        pipeline_env(real_binance_dir, copy, LIQHEAT_MODEL_CHUNK_DAYS=str(days_per_chunk))
    )
    result = materialize(
        definitions, instance, first, last, assets=MODEL_ASSETS, raise_on_error=False
    )
    return copy, definitions, result


def _execute(db_path, statement: str, params: list | None = None) -> None:
    with warehouse.connect(db_path) as conn:
        conn.execute(statement, params or [])


def _stored_days(db_path) -> list[str]:
    with warehouse.connect(db_path, read_only=True) as conn:
        rows = conn.execute("SELECT CAST(day AS VARCHAR) FROM model_runs ORDER BY day").fetchall()
    return [day for (day,) in rows]


def _break_candle(db_path) -> float:
    """Put the low of BROKEN_CANDLE above its high; returns the original low."""
    with warehouse.connect(db_path) as conn:
        (low,) = conn.execute(
            f"SELECT low FROM candles WHERE open_time = {BROKEN_CANDLE}"
        ).fetchone()
        conn.execute(f"UPDATE candles SET low = high * 1.01 WHERE open_time = {BROKEN_CANDLE}")
    return low


def _widen_candle(db_path) -> None:
    _execute(
        db_path,
        "UPDATE candles SET high = high * 1.05, low = low * 0.95 "
        f"WHERE open_time = {WIDENED_CANDLE}",
    )


def _rows_through(rows, day: str):
    """``model_rows`` frames keeping the days up to ``day`` (each table by its own day column)."""
    kept = {}
    for table, frame in rows.items():
        column = warehouse.TABLES[table].time_column
        kept[table] = frame[frame[column].astype("datetime64[ns]").dt.strftime("%F") <= day]
        kept[table] = kept[table].reset_index(drop=True)
    return kept


@pytest.mark.parametrize("days_per_chunk", [1, 2, 3])
def test_the_rows_do_not_depend_on_the_chunk_size(
    raw_db, one_chunk_db, tmp_path, real_binance_dir, instance, days_per_chunk
):
    copy, _, result = _run(
        raw_db, tmp_path, real_binance_dir, instance, FIRST, LAST, days_per_chunk=days_per_chunk
    )
    assert result.success
    assert_same_rows(model_rows(copy), model_rows(one_chunk_db))
    # Every day partition still carries its own metadata, whichever chunk wrote it.
    partitions = {
        (event.asset_key.path[-1], event.partition)
        for event in result.get_asset_materialization_events()
        if event.asset_key.path[-1] in MODEL_ASSETS
        and "dagster/partition_row_count" in event.materialization.metadata
    }
    assert {day for asset, day in partitions if asset == "heatmap_snapshots"} == set(DAYS)


def test_a_failure_in_a_later_chunk_keeps_the_chunks_before_it_and_says_how_to_resume(
    raw_db, one_chunk_db, tmp_path, real_binance_dir, instance
):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(raw_db, copy)
    low = _break_candle(copy)
    _, definitions, result = _run(
        copy, tmp_path, real_binance_dir, instance, FIRST, LAST, days_per_chunk=2
    )
    assert not result.success
    message = failure_messages(result)
    assert "Days 2025-12-01…2025-12-02 of this run were written" in message
    assert "2025-12-03…2025-12-04 were not written." in message
    assert "--partition-range 2025-12-03...2025-12-04" in message
    # Chunk 1 is stored exactly as a whole-range run stores it; nothing of chunk 2.
    assert _stored_days(copy) == ["2025-12-01", "2025-12-02"]
    assert_same_rows(model_rows(copy), _rows_through(model_rows(one_chunk_db), "2025-12-02"))
    # The range the message names, once the input is fixed, completes the same history.
    _execute(copy, f"UPDATE candles SET low = ? WHERE open_time = {BROKEN_CANDLE}", [low])
    assert materialize(definitions, instance, "2025-12-03", LAST, assets=MODEL_ASSETS).success
    assert_same_rows(model_rows(copy), model_rows(one_chunk_db))


def test_later_days_a_multi_chunk_range_would_change_are_refused_before_its_first_chunk(
    one_chunk_db, tmp_path, real_binance_dir, instance
):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(one_chunk_db, copy)
    _widen_candle(copy)
    before = model_rows(copy)
    _, _, result = _run(
        copy, tmp_path, real_binance_dir, instance, FIRST, "2025-12-02", days_per_chunk=1
    )
    assert not result.success
    message = failure_messages(result)
    assert "days 2025-12-03, 2025-12-04 are stored after 2025-12-02" in message
    assert "were written" not in message
    assert_same_rows(model_rows(copy), before)


def test_a_multi_chunk_rerun_that_keeps_the_end_state_keeps_the_later_days(
    one_chunk_db, tmp_path, real_binance_dir, instance
):
    copy, _, result = _run(
        one_chunk_db, tmp_path, real_binance_dir, instance, FIRST, "2025-12-03", days_per_chunk=2
    )
    assert result.success
    assert_same_rows(model_rows(copy), model_rows(one_chunk_db))


def test_a_chunk_that_changes_the_state_deletes_the_stale_rest_of_the_range_on_failure(
    one_chunk_db, tmp_path, real_binance_dir, instance
):
    # 12-02 now ends in another state and 12-03 cannot be computed: after chunk 1 (12-01..02)
    # commits, the stored 12-03..04 would start from a state that no longer exists.
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(one_chunk_db, copy)
    _widen_candle(copy)
    low = _break_candle(copy)
    _, definitions, result = _run(
        copy, tmp_path, real_binance_dir, instance, FIRST, LAST, days_per_chunk=2
    )
    assert not result.success
    message = failure_messages(result)
    assert "Days 2025-12-01…2025-12-02 of this run were written" in message
    assert "their previous rows were deleted" in message
    assert _stored_days(copy) == ["2025-12-01", "2025-12-02"]
    with warehouse.connect(copy, read_only=True) as conn:
        (later_rows,) = conn.execute(
            "SELECT count(*) FROM heatmap_snapshots WHERE ts >= TIMESTAMP '2025-12-03'"
        ).fetchone()
    assert later_rows == 0
    # Resuming as the message says gives a history every model check accepts.
    _execute(copy, f"UPDATE candles SET low = ? WHERE open_time = {BROKEN_CANDLE}", [low])
    assert materialize(definitions, instance, "2025-12-03", LAST, assets=MODEL_ASSETS).success
    assert _stored_days(copy) == list(DAYS)
    failed = {
        name
        for name, passed in run_checks_only(definitions, instance, FIRST, LAST).items()
        if not passed
    }
    assert failed == set()
