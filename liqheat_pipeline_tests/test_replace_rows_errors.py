"""replace_rows reports the real cause when an insert fails inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd
import pytest

from liqheat_pipeline.lib import warehouse

DAY, NEXT_DAY = datetime(2025, 12, 2), datetime(2025, 12, 3)


def _ledger_rows(opened_usd: float | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": ["BTCUSDT"],
            "ts": [datetime(2025, 12, 2, 12)],
            "side": ["long"],
            "opened_usd": [opened_usd],
            "consumed_usd": [0.0],
            "closed_usd": [0.0],
            "active_usd": [1.0],
        }
    )


def _replace_day(conn: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> int:
    return warehouse.replace_rows(
        conn, "candle_ledger", frame, symbol="BTCUSDT", start=DAY, end=NEXT_DAY
    )


def test_a_not_null_violation_is_reported_as_itself_and_rolls_back(db_path):
    """An unregister in ``finally`` used to replace it with 'Current transaction is aborted'."""
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        _replace_day(conn, _ledger_rows(5.0))
        conn.execute("BEGIN")
        with pytest.raises(duckdb.ConstraintException, match=r"NOT NULL.*opened_usd"):
            _replace_day(conn, _ledger_rows(None))
        conn.execute("ROLLBACK")
        # The connection stays usable: the next replacement registers its rows again.
        assert _replace_day(conn, _ledger_rows(7.0)) == 1
        stored = conn.execute("SELECT opened_usd FROM candle_ledger").fetchall()
    assert stored == [(7.0,)]


def test_a_failed_insert_outside_a_transaction_keeps_the_connection_usable(db_path):
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        with pytest.raises(duckdb.ConstraintException, match="NOT NULL"):
            _replace_day(conn, _ledger_rows(None))
        assert _replace_day(conn, _ledger_rows(3.0)) == 1
        assert conn.execute("SELECT opened_usd FROM candle_ledger").fetchall() == [(3.0,)]
