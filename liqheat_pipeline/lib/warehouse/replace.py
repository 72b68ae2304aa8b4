"""Replacing stored rows: one symbol's rows of one partition window, or a whole table.

Both run inside the caller's transaction and match columns by name, never by position.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from liqheat_pipeline.lib.warehouse.schema import TABLES


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    *,
    symbol: str,
    start: datetime,
    end: datetime,
) -> int:
    """Replace one symbol's rows of ``table`` that the partition window [start, end) owns.

    Ownership is the table's (``TABLES``): [start, end) of its time column, (start, end] for
    ``open_interest`` and ``model_skill``. Returns rows written.
    """
    rules = TABLES[table]
    conn.execute(f"DELETE FROM {table} WHERE symbol = ? AND {rules.owned()}", [symbol, start, end])
    return _insert(conn, table, frame)


def replace_table(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Replace every row of ``table`` (an unpartitioned one such as ``margin_brackets``)."""
    conn.execute(f"DELETE FROM {table}")
    return _insert(conn, table, frame)


def _insert(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    if frame.empty:
        return 0
    columns = ", ".join(frame.columns)
    conn.register("_incoming_rows", frame)
    # No cleanup on failure: a failed insert aborts the caller's transaction, where any further
    # statement (an unregister) would raise in place of the real error; the rollback drops the
    # view, and outside a transaction the next register replaces it.
    conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _incoming_rows")
    conn.unregister("_incoming_rows")
    return len(frame)
