"""Shared resources and the executor for every run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.settings import load_settings


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


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    return dg.Definitions(
        resources={"database": LiqheatDatabase(path=str(settings.db_path))},
        # DuckDB has a single writer, and per-step processes would cost seconds of imports each:
        # run every step of a run in one process, in dependency order.
        executor=dg.in_process_executor,
    )
