"""Short-lived DuckDB connections: the lock-wait backoff, the writer's announcement, transactions.

DuckDB allows one read-write process or many read-only ones; whoever finds the file locked waits
here with ``Backoff`` instead of failing at once (the HTTP API's reader uses the same backoff).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from liqheat_pipeline.lib.warehouse.schema import ensure_schema, schema_is_current

# The longest pause between two attempts: readers honouring a writer's intent let go within one
# request, so the waiter polls briskly.
MAX_POLL_SECONDS = 0.25


class DatabaseLockedError(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than we were willing to wait."""


class Backoff:
    """Pauses doubling from ``first_delay`` up to MAX_POLL_SECONDS until a deadline."""

    def __init__(self, deadline: float, first_delay: float = 0.05) -> None:
        self.deadline = deadline  # on the time.monotonic() clock
        self._delay = first_delay

    def wait(self) -> bool:
        """Sleep before the next attempt and return True; False once the deadline has passed."""
        if time.monotonic() >= self.deadline:
            return False
        time.sleep(self._delay)
        self._delay = min(self._delay * 2, MAX_POLL_SECONDS)
        return True


def is_lock_conflict(error: duckdb.IOException) -> bool:
    """Whether DuckDB refused the file because another process holds its lock."""
    return "lock" in str(error).lower()


def write_intent_path(path: str | Path) -> Path:
    """The file beside the database a writer locks while it waits for or holds the file."""
    path = Path(path)
    return path.with_name(f"{path.name}.write-intent")


@contextmanager
def _announce_writer(path: Path) -> Iterator[None]:
    """Hold a shared lock on the write-intent file: readers that honour it (the HTTP API) stop
    opening the database, so a writer is not starved by overlapping read requests.

    The file stays in place; a lock, not its presence, is the signal, so a writer killed with
    -9 never leaves a stale intent behind (the kernel drops the lock with the process).
    """
    descriptor = os.open(write_intent_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH)  # writers share it: they never block each other
        yield
    finally:
        os.close(descriptor)  # releases the lock


def writer_waiting(path: str | Path) -> bool:
    """Whether some process waits for or holds ``path`` for writing (see ``connect``)."""
    try:
        descriptor = os.open(write_intent_path(path), os.O_RDONLY)
    except FileNotFoundError:
        return False
    except PermissionError:
        # Created by another user under a strict umask: this reader cannot see the signal and
        # relies on DuckDB's lock alone (it then waits for a writer that holds the file).
        return False
    try:
        # An exclusive probe fails exactly while a writer holds its shared lock; it is
        # released at once, so it delays a writer arriving meanwhile by microseconds only.
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


@contextmanager
def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    lock_wait_seconds: float = 60.0,
    memory_limit_mb: int | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a short-lived connection, waiting with backoff while another process holds the lock.

    A user's SQL session or the HTTP API holding the file makes the writer wait here instead of
    failing at once. A writer announces itself (``writer_waiting``) from its first attempt until
    it closes the file. ``memory_limit_mb`` bounds DuckDB's memory (its block cache included);
    None keeps DuckDB's default of 80 % of RAM.
    """
    path = Path(path)
    if read_only:
        with _open_when_unlocked(path, read_only, lock_wait_seconds, memory_limit_mb) as conn:
            yield conn
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        _announce_writer(path),
        _open_when_unlocked(path, read_only, lock_wait_seconds, memory_limit_mb) as conn,
    ):
        yield conn


@contextmanager
def read(
    path: str | Path, *, lock_wait_seconds: float = 60.0, memory_limit_mb: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection for the pipeline's reads, with every contract table present (so a query
    never meets a missing one).

    It is read-only, so the reads of several processes (checks and pages of other symbols, a
    user's read-only SQL session) share the file; only a file without the current schema (new,
    or written by an older version) is opened read-write to complete it. Like the HTTP API, a
    read does not start while a writer announces itself, so overlapping reads cannot starve it.
    """
    path = Path(path)
    deadline = time.monotonic() + lock_wait_seconds
    if path.is_file():
        backoff = Backoff(deadline)
        while writer_waiting(path) and backoff.wait():
            pass
        remaining = max(deadline - time.monotonic(), 0.0)
        with _open_when_unlocked(path, True, remaining, memory_limit_mb) as conn:
            if schema_is_current(conn):
                yield conn
                return
    remaining = max(deadline - time.monotonic(), 0.0)
    with _schema_complete(path, remaining, memory_limit_mb) as conn:
        yield conn


@contextmanager
def transaction(
    path: str | Path, *, lock_wait_seconds: float = 60.0, memory_limit_mb: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A write transaction on the schema-complete file: committed on success, rolled back (the
    previous data kept) on any error."""
    with _schema_complete(path, lock_wait_seconds, memory_limit_mb) as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


@contextmanager
def _schema_complete(
    path: str | Path, lock_wait_seconds: float, memory_limit_mb: int | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection on the file with every contract table and view created."""
    with connect(
        path, lock_wait_seconds=lock_wait_seconds, memory_limit_mb=memory_limit_mb
    ) as conn:
        ensure_schema(conn)
        yield conn


@contextmanager
def _open_when_unlocked(
    path: Path, read_only: bool, lock_wait_seconds: float, memory_limit_mb: int | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    backoff = Backoff(time.monotonic() + lock_wait_seconds)
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as error:
            if not is_lock_conflict(error):
                raise
            if not backoff.wait():
                mode = "read-only" if read_only else "read-write"
                raise DatabaseLockedError(
                    f"DuckDB file {path} is locked by another process; gave up opening it {mode} "
                    f"after {lock_wait_seconds:.0f} s. Close other sessions on it (a SQL shell, "
                    f"notebook or `liqheat serve`) or retry. DuckDB said: {error}"
                ) from error
    try:
        # Set, not passed as connect()'s config: a process holding another connection to the
        # same file (DuckDB shares one instance per file) would refuse a differing config.
        if memory_limit_mb is not None:
            conn.execute(f"SET memory_limit = '{int(memory_limit_mb)}MiB'")
        yield conn
    finally:
        conn.close()
