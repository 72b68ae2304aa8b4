"""The model's Dagster asset checks on real stored rows: all pass, and each corruption fails.

BTCUSDT 2025-12-01..03 is materialized once; each test corrupts a copy of the DuckDB file in
SQL and runs only the asset checks (as the UI's "Execute checks" does) for a partition or range.
"""

from __future__ import annotations

import shutil

import pytest

from liqheat_pipeline.defs import day_checks
from liqheat_pipeline.defs.model.checks import MODEL_CHECKS
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.model.store import OUTPUT_TIME_COLUMNS
from liqheat_pipeline_tests.helpers.pipeline_runs import (
    load_definitions,
    materialize,
    pipeline_env,
    run_checks_by_day,
    run_checks_only,
)

pytestmark = pytest.mark.real_data
DAY_2 = "2025-12-02"


def _update_one_level(table: str, time_column: str, assignment: str, pick: str = "min") -> str:
    """SQL changing one level of day 2 (before 23:00, so a later candle exists that day)."""
    return (
        f"UPDATE {table} SET {assignment} WHERE level_id = (SELECT {pick}(level_id) FROM {table} "
        f"WHERE {time_column} >= '2025-12-02 00:00:00' AND {time_column} < '2025-12-02 23:00:00')"
    )


@pytest.fixture(scope="module")
def stored_db(tmp_path_factory, real_binance_dir, instance):
    db_path = tmp_path_factory.mktemp("checks") / "liqheat.duckdb"
    definitions = load_definitions(pipeline_env(real_binance_dir, db_path))
    assert materialize(definitions, instance, "2025-12-01", "2025-12-03").success
    return db_path


@pytest.fixture
def corrupt(stored_db, real_binance_dir, instance, tmp_path):
    """Apply SQL to a copy of the stored history; returns a runner of the checks over it."""
    copy = tmp_path / "corrupted.duckdb"
    shutil.copyfile(stored_db, copy)
    definitions = load_definitions(pipeline_env(real_binance_dir, copy))

    def apply(*statements: str):
        with warehouse.connect(copy) as conn:
            for statement in statements:
                conn.execute(statement)

        def checks(first: str, last: str | None = None) -> dict[str, bool]:
            return run_checks_only(definitions, instance, first, last)

        checks.by_day = lambda first, last: run_checks_by_day(definitions, instance, first, last)
        return checks

    return apply


def _failed(results: dict[str, bool]) -> set[str]:
    assert len(results) == len(MODEL_CHECKS)
    return {name for name, passed in results.items() if not passed}


@pytest.mark.parametrize(("first", "last"), [(DAY_2, None), ("2025-12-01", "2025-12-03")])
def test_every_check_passes_on_the_real_history(corrupt, first, last):
    assert _failed(corrupt()(first, last)) == set()


def test_a_consumption_moved_one_candle_later_fails(corrupt):
    checks = corrupt(
        _update_one_level(
            "level_consumptions", "consumed_at", "consumed_at = consumed_at + INTERVAL 5 MINUTE"
        )
    )
    assert "level_consumptions:consumed_at_first_crossing" in _failed(checks(DAY_2))


def test_a_ledger_row_off_by_a_millionth_fails(corrupt):
    # The modelled book holds billions of USD: a millionth is far above float noise (the
    # checks' relative tolerance is 1e-9) and far below anything visible on a page.
    checks = corrupt(
        "UPDATE candle_ledger SET active_usd = active_usd * (1 + 1e-6) WHERE side = 'long' "
        "AND ts = TIMESTAMP '2025-12-02 12:00:00'"
    )
    assert _failed(checks(DAY_2)) >= {
        "candle_ledger:ledger_identity",
        "heatmap_snapshots:snapshots_match_ledger",
    }


def test_a_missing_partition_fails_its_own_and_the_next_days_checks(corrupt):
    checks = corrupt(
        *(
            f"DELETE FROM {table} WHERE CAST({column} AS DATE) = DATE '{DAY_2}'"
            for table, column in {
                **OUTPUT_TIME_COLUMNS,
                "model_runs": "day",
            }.items()
        )
    )
    assert _failed(checks(DAY_2)) >= {
        "model_state:continuity_with_previous_day",
        "model_state:active_levels_never_crossed",
        "candle_ledger:ledger_identity",
    }
    assert "model_state:continuity_with_previous_day" in _failed(checks("2025-12-03"))


def _state_level(condition: str) -> str:
    """SQL selecting the smallest id of day 2's end state whose opening meets ``condition``."""
    return (
        "(SELECT min(s.level_id) FROM model_state s JOIN level_openings o USING (symbol, "
        f"level_id) WHERE s.day = DATE '{DAY_2}' AND {condition})"
    )


def test_an_active_level_that_price_crossed_fails(corrupt):
    # Move one long level still active at the end of day 2 above the day's highest price (its
    # opening holds the price every day's state reads).
    checks = corrupt(
        "UPDATE level_openings SET liq_price = 1e9 WHERE level_id = "
        + _state_level("o.side = 'long'")
    )
    assert "model_state:active_levels_never_crossed" in _failed(checks(DAY_2))


def test_a_wrong_liquidation_price_fails(corrupt):
    checks = corrupt(
        _update_one_level("level_openings", "created_at", "liq_price = liq_price * 1.001", "max")
    )
    assert "level_openings:liquidation_prices_match_brackets" in _failed(checks(DAY_2))


def test_negative_notionals_and_duplicate_keys_fail(corrupt):
    checks = corrupt(
        _update_one_level("level_openings", "created_at", "notional_usd = -notional_usd"),
        "INSERT INTO snapshot_segments SELECT * FROM snapshot_segments "
        "WHERE first_ts::DATE = DATE '2025-12-02' LIMIT 1",
    )
    assert _failed(checks(DAY_2)) >= {
        "level_openings:values_valid_keys_unique",
        "heatmap_snapshots:values_valid_keys_unique",
    }


def test_a_level_closed_out_without_the_ledger_fails_every_day_it_misses_from(corrupt):
    # A level carried through day 2 gets a closeout at day 1's last candle: it leaves both
    # days' end states while both days' ledgers keep it active.
    checks = corrupt(
        "INSERT INTO level_closeouts SELECT symbol, level_id, TIMESTAMP '2025-12-01 23:55:00' "
        "FROM level_openings WHERE level_id = "
        + _state_level(f"o.created_at < TIMESTAMP '{DAY_2} 00:00:00'")
    )
    assert "model_state:continuity_with_previous_day" in _failed(checks("2025-12-01"))
    assert "model_state:continuity_with_previous_day" in _failed(checks(DAY_2))


def test_a_consumption_moved_to_the_next_day_fails_both_days(corrupt):
    checks = corrupt(
        _update_one_level(
            "level_consumptions", "consumed_at", "consumed_at = TIMESTAMP '2025-12-03 00:00:00'"
        )
    )
    # Day 2 leaves a crossed level unconsumed; day 3 consumes a level it did not start with.
    assert "level_consumptions:consumed_at_first_crossing" in _failed(checks(DAY_2))
    assert "level_consumptions:consumed_at_first_crossing" in _failed(checks("2025-12-03"))


@pytest.mark.parametrize("days_per_connection", [1, 2, 7])
def test_a_range_run_reports_each_day_on_its_own(corrupt, monkeypatch, days_per_connection):
    # However the range's days are grouped onto connections (2: day 3 starts a new one, from
    # day 2's state rebuilt afresh), only the corrupted day fails.
    monkeypatch.setattr(day_checks, "DAYS_PER_CONNECTION", days_per_connection)
    checks = corrupt(
        _update_one_level("level_openings", "created_at", "liq_price = liq_price * 1.001", "max")
    )
    results = checks.by_day("2025-12-01", "2025-12-03")
    assert len(results) == 3 * len(MODEL_CHECKS)
    failed = {key for key, passed in results.items() if not passed}
    assert failed == {("level_openings:liquidation_prices_match_brackets", DAY_2)}
