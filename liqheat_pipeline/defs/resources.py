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
    # DuckDB's memory limit per connection (LIQHEAT_DUCKDB_MEMORY_MB); None: DuckDB's default.
    memory_limit_mb: int | None = None

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.read(self.path, **self._options()) as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction: committed on success, rolled back (previous data kept) on error."""
        with warehouse.transaction(self.path, **self._options()) as conn:
            yield conn

    def _options(self) -> dict:
        return {
            "lock_wait_seconds": self.lock_wait_seconds,
            "memory_limit_mb": self.memory_limit_mb,
        }
