"""Read-only access to the DuckDB file per request, released whenever no request needs it.

DuckDB lets one process write a file or several read it, never both, so the API must not keep
the file open: the pipeline's scheduled runs need it. Opening a fresh DuckDB instance per request
would cost ~15 ms (every instance registers all built-in functions), a third of the latency
budget. Instead one long-lived in-memory instance ATTACHes the file read-only when a request
starts and DETACHes it when the last concurrent request ends (~2 ms), so the writer gets the
file between requests exactly as with short connections.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

# A request waits at most this long for the writer to release the file, then gets a 503.
LOCK_WAIT_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5
_ALIAS = "liqheat"


class DatabaseUnavailableError(RuntimeError):
    """The DuckDB file cannot be read right now (absent, locked by the writer, or not built)."""


class DatabaseReader:
    """Hands out read-only cursors on ``path``; the file stays attached only while in use."""

    def __init__(self, path: Path, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> None:
        self.path = path
        self.lock_wait_seconds = lock_wait_seconds
        # One thread per query: parallel aggregation adds floating-point sums in a varying
        # order, and the same request must give the same bytes every time.
        self._instance = duckdb.connect(":memory:", config={"threads": 1})
        self._guard = threading.Lock()
        self._users = 0

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor whose default database is the file; unavailability becomes
        ``DatabaseUnavailableError`` with a message a client can act on."""
        cursor = self._acquire()
        try:
            yield cursor
        except duckdb.CatalogException as error:
            raise DatabaseUnavailableError(
                f"database {self.path} has no pipeline output yet ({error}); "
                "materialize the model first"
            ) from None
        finally:
            cursor.close()
            self._release()

    def _acquire(self) -> duckdb.DuckDBPyConnection:
        with self._guard:
            if self._users == 0:
                self._attach()
            self._users += 1
            cursor = self._instance.cursor()
        cursor.execute(f"USE {_ALIAS}")
        return cursor

    def _release(self) -> None:
        with self._guard:
            self._users -= 1
            if self._users == 0:
                self._instance.execute(f"DETACH {_ALIAS}")

    def _attach(self) -> None:
        """Attach the file read-only, retrying with backoff while the writer holds it."""
        if not self.path.is_file():
            raise DatabaseUnavailableError(
                f"database {self.path} does not exist yet: run the pipeline first "
                "(e.g. `liqheat demo`)"
            )
        deadline = time.monotonic() + self.lock_wait_seconds
        delay = 0.02
        while True:
            try:
                self._instance.execute(f"ATTACH ? AS {_ALIAS} (READ_ONLY)", [str(self.path)])
                return
            except duckdb.IOException as error:
                if "lock" not in str(error).lower():
                    raise DatabaseUnavailableError(
                        f"database {self.path} cannot be opened: {error}"
                    ) from None
                if time.monotonic() >= deadline:
                    raise DatabaseUnavailableError(
                        f"database {self.path} is being written by the pipeline; "
                        "retry in a few seconds"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
