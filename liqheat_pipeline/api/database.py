"""Short read-only connections per request, so the pipeline's writer gets the file in between."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from liqheat_pipeline.lib import warehouse

# A request waits at most this long for the writer to release the file, then gets a 503.
LOCK_WAIT_SECONDS = 2.0
RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableError(RuntimeError):
    """The DuckDB file cannot be read right now (absent, locked by the writer, or not built)."""


@contextmanager
def read_connection(
    path: Path, lock_wait_seconds: float = LOCK_WAIT_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed when the request is done; unavailability becomes
    ``DatabaseUnavailableError`` with a message a client can act on."""
    if not path.is_file():
        raise DatabaseUnavailableError(
            f"database {path} does not exist yet: run the pipeline first (e.g. `liqheat demo`)"
        )
    try:
        with warehouse.connect(path, read_only=True, lock_wait_seconds=lock_wait_seconds) as conn:
            yield conn
    except warehouse.DatabaseLockedError:
        raise DatabaseUnavailableError(
            f"database {path} is being written by the pipeline; retry in a few seconds"
        ) from None
    except duckdb.CatalogException as error:
        raise DatabaseUnavailableError(
            f"database {path} has no pipeline output yet ({error}); materialize the model first"
        ) from None
    except duckdb.IOException as error:
        raise DatabaseUnavailableError(f"database {path} cannot be opened: {error}") from None
