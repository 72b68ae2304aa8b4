"""The DuckDB resource every asset and check reads and writes through."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from liqheat_pipeline.lib import warehouse


class LiqheatDatabase(dg.ConfigurableResource):
    """The DuckDB file of the SQL contract, opened briefly per read or write."""

    path: str
    lock_wait_seconds: float = 120.0

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.path, lock_wait_seconds=self.lock_wait_seconds) as conn:
            warehouse.ensure_schema(conn)
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction: committed on success, rolled back (previous data kept) on error."""
        with warehouse.connect(self.path, lock_wait_seconds=self.lock_wait_seconds) as conn:
            warehouse.ensure_schema(conn)
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
