"""Read-only access to the DuckDB file per request, released whenever no request needs it.

DuckDB lets one process write a file or several read it, never both, so the API must not keep
the file open: the pipeline's scheduled runs need it. Opening a fresh DuckDB instance per request
would cost ~15 ms (every instance registers all built-in functions), a third of the latency
budget. Instead one long-lived in-memory instance ATTACHes the file read-only when a request
starts and DETACHes it when the last concurrent request ends (~2 ms). Overlapping requests
would keep it attached for as long as clients keep asking, so no request starts while a writer
announces that it waits (``warehouse.writer_waiting``): the writer gets the file once the
requests in flight end, and the others wait for it or get a 503.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from liqheat_pipeline.lib import warehouse

# A request waits at most this long for a writer to finish, then gets a 503.
LOCK_WAIT_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5
# First pause of the lock-wait backoff: shorter than the pipeline's, as a request's latency
# budget is tens of milliseconds.
FIRST_POLL_SECONDS = 0.02
_ALIAS = "liqheat"

log = logging.getLogger(__name__)


class DatabaseUnavailableError(RuntimeError):
    """The DuckDB file cannot be read right now (absent, being written, not built or damaged).

    Its message goes to clients: it names the file, never its directory.
    """


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
        """A cursor whose default database is the file; any DuckDB error becomes
        ``DatabaseUnavailableError`` with a message a client can act on (details in the log)."""
        cursor = self._acquire()
        try:
            cursor.execute(f"USE {_ALIAS}")
            yield cursor
        except duckdb.CatalogException as error:
            raise DatabaseUnavailableError(
                f"database {self.path.name} has no pipeline output yet ({error}); "
                "materialize the model first"
            ) from None
        except duckdb.Error as error:
            # A truncated or corrupted file fails only when a query reaches the damaged pages.
            raise self._unreadable(error) from None
        finally:
            cursor.close()
            self._release()

    def _acquire(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_wait_seconds
        self._wait_while_a_writer_waits(deadline)
        with self._guard:
            if self._users == 0:
                self._attach(deadline)
            self._users += 1
            return self._instance.cursor()

    def _release(self) -> None:
        with self._guard:
            self._users -= 1
            if self._users == 0:
                self._instance.execute(f"DETACH {_ALIAS}")

    def _wait_while_a_writer_waits(self, deadline: float) -> None:
        """Start no request while a pipeline write waits for the file: requests in flight end,
        the file is detached and the writer gets it, however many clients keep asking."""
        backoff = warehouse.Backoff(deadline, FIRST_POLL_SECONDS)
        while warehouse.writer_waiting(self.path):
            if not backoff.wait():
                raise self._being_written()

    def _attach(self, deadline: float) -> None:
        """Attach the file read-only, retrying with backoff while the writer holds it."""
        if not self.path.is_file():
            raise DatabaseUnavailableError(
                f"database {self.path.name} does not exist yet: run the pipeline first "
                "(e.g. `liqheat demo`)"
            )
        backoff = warehouse.Backoff(deadline, FIRST_POLL_SECONDS)
        while True:
            try:
                self._instance.execute(f"ATTACH ? AS {_ALIAS} (READ_ONLY)", [str(self.path)])
                return
            except duckdb.IOException as error:
                if not warehouse.is_lock_conflict(error):
                    raise self._unreadable(error) from None
                if not backoff.wait():
                    raise self._being_written() from None
            except duckdb.Error as error:
                raise self._unreadable(error) from None

    def _being_written(self) -> DatabaseUnavailableError:
        return DatabaseUnavailableError(
            f"database {self.path.name} is being written by the pipeline; retry in a few seconds"
        )

    def _unreadable(self, error: duckdb.Error) -> DatabaseUnavailableError:
        """The client learns the kind of failure; DuckDB's message (with the file's absolute
        path) goes to the server log only."""
        log.error("reading %s failed: %s", self.path, error)
        return DatabaseUnavailableError(
            f"database {self.path.name} cannot be read ({type(error).__name__}): it may be "
            "damaged or being replaced; rebuild it with the pipeline or retry later "
            "(details in the server log)"
        )
