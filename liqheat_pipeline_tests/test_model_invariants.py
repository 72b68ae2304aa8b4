"""Pre-write verification of computed model days, on real engine output for BTCUSDT 12-01..02.

The engine's real results pass; each corruption of a copy (what a faulty engine change or a
stored state not matching the history would produce) is named in the error.
"""

from __future__ import annotations

import copy as copying
from datetime import date

import numpy as np
import pytest

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.model import store
from liqheat_pipeline.lib.model.days import run_days
from liqheat_pipeline.lib.model.invariants import ModelInvariantError, verify_days
from liqheat_pipeline_tests.helpers.pipeline_runs import (
    RAW_ASSETS,
    load_definitions,
    materialize,
    pipeline_env,
)

pytestmark = pytest.mark.real_data
DAYS = [date(2025, 12, 1), date(2025, 12, 2)]
ZERO = {"long": 0.0, "short": 0.0}


@pytest.fixture(scope="module")
def computed(tmp_path_factory, real_binance_dir, instance):
    """The engine's results for the two real days, from raw inputs ingested into DuckDB."""
    db_path = tmp_path_factory.mktemp("invariants") / "liqheat.duckdb"
    definitions = load_definitions(pipeline_env(real_binance_dir, db_path))
    assert materialize(definitions, instance, "2025-12-01", "2025-12-02", assets=RAW_ASSETS).success
    with warehouse.connect(db_path, read_only=True) as conn:
        market = store.load_market(conn, "BTCUSDT", DAYS[0], date(2025, 12, 3))
    return run_days("BTCUSDT", DAYS, market, ModelConfig(), None)


@pytest.fixture
def results(computed):
    return copying.deepcopy(computed)


def _error(results, opening=ZERO) -> str:
    with pytest.raises(ModelInvariantError) as raised:
        verify_days("BTCUSDT", results, opening)
    return str(raised.value)


def test_the_engines_real_output_passes(results):
    verify_days("BTCUSDT", results, ZERO)


def test_a_negative_notional_is_named(results):
    openings = results[1].tables["level_openings"]
    openings.loc[3, "notional_usd"] = -openings.loc[3, "notional_usd"]
    assert "level_openings.notional_usd: 1 NaN, infinite or negative value(s)" in _error(results)


def test_a_nan_in_the_state_is_named(results):
    results[0].state_levels.loc[0, "remaining_usd"] = np.nan
    message = _error(results)
    assert "model_state.remaining_usd" in message
    assert "nothing was written" in message


def test_a_level_consumed_on_two_days_is_a_duplicate_key(results):
    first = results[0].tables["level_consumptions"]
    second = results[1].tables["level_consumptions"]
    second.loc[0, "level_id"] = first.loc[0, "level_id"]
    assert f"level_consumptions: duplicate key ({first.loc[0, 'level_id']},)" in _error(results)


def test_a_ledger_row_off_by_a_millionth_breaks_the_identity(results):
    ledger = results[1].tables["candle_ledger"]
    row = ledger.index[(ledger["side"] == "long")][100]
    ledger.loc[row, "active_usd"] *= 1 + 1e-6
    message = _error(results)
    assert "2025-12-02 long: ledger identity broken at 2025-12-02 08:20:00" in message


def test_a_first_day_that_does_not_start_from_the_stored_history_fails_continuity(results):
    message = _error(results, {"long": 1e6, "short": 0.0})
    assert "2025-12-01 long: continuity with the previous day" in message
    assert "the stored history ends at 1000000.0 USD" in message


def test_a_state_that_is_not_the_last_ledger_row_is_named(results):
    results[0].state_levels = results[0].state_levels.iloc[1:]
    assert "2025-12-01" in _error(results)
    assert "end-of-day state holds" in _error(results)
