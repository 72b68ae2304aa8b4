"""Files of a former table layout are refused with the fix, never read as the current layout."""

from __future__ import annotations

import duckdb
import pytest

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.warehouse.schema import SchemaMigrationError

# model_state when it was a table: every day's levels, stored (since rebuilt from the rows).
STORED_STATE = """
    symbol VARCHAR NOT NULL, day DATE NOT NULL, level_id BIGINT NOT NULL,
    remaining_usd DOUBLE NOT NULL"""


def test_a_stored_model_state_is_refused_until_dropped(db_path):
    with warehouse.connect(db_path) as conn:
        conn.execute(f"CREATE TABLE model_state ({STORED_STATE})")
        with pytest.raises(SchemaMigrationError) as refused:
            warehouse.ensure_schema(conn)
        message = str(refused.value)
        assert "model_state (each day's stored end-of-day levels, now a view" in message
        assert "`DROP TABLE model_state;`" in message
        # Nothing was created on the refused file.
        assert conn.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == 1
        conn.execute("DROP TABLE model_state")
        warehouse.ensure_schema(conn)
        [(kind,)] = conn.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_name = 'model_state'"
        ).fetchall()
    assert kind == "VIEW"


def test_every_former_table_is_named_in_one_refusal(db_path):
    with warehouse.connect(db_path) as conn:
        conn.execute(f"CREATE TABLE model_state ({STORED_STATE})")
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


def _view_columns(conn, name: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [name],
        ).fetchall()
    ]


def test_a_view_of_an_older_definition_is_replaced_by_the_current_one(db_path):
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        current = _view_columns(conn, "model_state")
        # What an older version left behind: the same name, another query, no stamp.
        conn.execute("CREATE OR REPLACE VIEW model_state AS SELECT symbol, day FROM model_runs")
        conn.execute("COMMENT ON VIEW model_state IS NULL")
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        assert _view_columns(conn, "model_state") == current
        stamps = dict(
            conn.execute(
                "SELECT view_name, comment FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        )
    assert stamps == {
        name: warehouse.schema.view_stamp(query) for name, query in warehouse.VIEW_DDL.items()
    }
    assert "entry_price" in current


# What an older version of the code can leave behind, each made on a current file.
OUTDATED = {
    "a view of an older definition": (
        "CREATE OR REPLACE VIEW model_state AS SELECT symbol, day FROM model_runs; "
        "COMMENT ON VIEW model_state IS NULL"
    ),
    "a column added since": "ALTER TABLE candle_ledger DROP COLUMN coverage",
    "a table added since": "DROP TABLE level_closeouts",
}


@pytest.mark.parametrize("outdated", sorted(OUTDATED))
def test_a_pipeline_read_completes_an_outdated_file_then_reads_read_only(db_path, outdated):
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        assert warehouse.schema_is_current(conn)
        conn.execute(OUTDATED[outdated])
        assert not warehouse.schema_is_current(conn)
    with warehouse.read(db_path) as conn:
        assert warehouse.schema_is_current(conn)
    with warehouse.read(db_path) as conn, pytest.raises(duckdb.InvalidInputException):
        conn.execute("DELETE FROM candle_ledger")  # a current file is read read-only


def test_a_pipeline_read_refuses_a_former_layout_like_a_write(db_path):
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        conn.execute("DROP VIEW model_state")
        conn.execute(f"CREATE TABLE model_state ({STORED_STATE})")
    with (
        pytest.raises(SchemaMigrationError, match="DROP TABLE model_state"),
        warehouse.read(db_path),
    ):
        pass
