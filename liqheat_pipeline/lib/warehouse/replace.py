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
    time_column: str | None = None,
    include_end: bool | None = None,
) -> int:
    """Replace one symbol's rows of ``table`` that the partition window [start, end) owns.

    Ownership is the table's (``TABLES``): [start, end) of its time column, (start, end] for
    ``open_interest`` and ``model_skill``. ``time_column`` and ``include_end``, when given, state
    the caller's expectation and must agree with it (ValueError otherwise). Returns rows written.
    """
    rules = TABLES[table]
    expected = (
        rules.time_column if time_column is None else time_column,
        rules.owns_end if include_end is None else include_end,
    )
    if expected != (rules.time_column, rules.owns_end):
        raise ValueError(
            f"{table}: a partition owns the rows with {rules.owned('start', 'end')}, not what "
            f"the caller expects (time_column={time_column!r}, include_end={include_end!r})"
        )
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
