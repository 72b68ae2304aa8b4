"""Files of a former table layout are refused with the fix, never read as the current layout."""

from __future__ import annotations

import pytest

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.warehouse.schema import SchemaMigrationError

# model_state before it was narrowed to the remaining notional per level and day.
PER_LEVEL_STATE = """
    symbol VARCHAR NOT NULL, day DATE NOT NULL, state_position INTEGER NOT NULL,
    level_id BIGINT NOT NULL, created_at TIMESTAMP NOT NULL, side VARCHAR NOT NULL,
    leverage INTEGER NOT NULL, tier_index INTEGER NOT NULL, entry_price DOUBLE NOT NULL,
    liq_price DOUBLE NOT NULL, price_bucket DOUBLE NOT NULL, notional_usd DOUBLE NOT NULL,
    remaining_usd DOUBLE NOT NULL"""
FORMER_STATE_COLUMNS = (
    "state_position, created_at, side, leverage, tier_index, entry_price, liq_price, "
    "price_bucket, notional_usd"
)


def test_a_per_level_model_state_is_refused_until_dropped(db_path):
    with warehouse.connect(db_path) as conn:
        conn.execute(f"CREATE TABLE model_state ({PER_LEVEL_STATE})")
        with pytest.raises(SchemaMigrationError) as refused:
            warehouse.ensure_schema(conn)
        message = str(refused.value)
        assert f"model_state (the per-level state layout with {FORMER_STATE_COLUMNS};" in message
        assert "`DROP TABLE model_state;`" in message
        # Nothing was created on the refused file.
        assert conn.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == 1
        conn.execute("DROP TABLE model_state")
        warehouse.ensure_schema(conn)
        columns = conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'model_state' "
            "ORDER BY column_index"
        ).fetchall()
    assert [name for (name,) in columns] == ["symbol", "day", "level_id", "remaining_usd"]


def test_every_former_table_is_named_in_one_refusal(db_path):
    with warehouse.connect(db_path) as conn:
        conn.execute(f"CREATE TABLE model_state ({PER_LEVEL_STATE})")
        conn.execute("CREATE TABLE heatmap_snapshots (symbol VARCHAR, ts TIMESTAMP)")
        with pytest.raises(SchemaMigrationError) as refused:
            warehouse.ensure_schema(conn)
    message = str(refused.value)
    assert "heatmap_snapshots (the dense snapshot layout" in message
    assert "`DROP TABLE heatmap_snapshots; DROP TABLE model_state;`" in message


def test_a_current_file_is_not_refused(db_path):
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        warehouse.ensure_schema(conn)
        tables = conn.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0]
    assert tables == len(warehouse.TABLES)
