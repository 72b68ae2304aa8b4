"""DuckDB storage: the public SQL contract's tables, short connections, partition replacement.

Pure DuckDB code (no Dagster) shared by the pipeline, the checks and the HTTP API.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

# Tables carry no PRIMARY KEY: DuckDB's ART indexes make bulk delete-then-insert of large
# partitions slow and memory-hungry. Key uniqueness is verified by asset checks instead.
TABLE_DDL: dict[str, str] = {
    "candles": """
        symbol VARCHAR NOT NULL, open_time TIMESTAMP NOT NULL,
        open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE,
        volume DOUBLE, quote_volume DOUBLE, trades BIGINT,
        taker_buy_volume DOUBLE, taker_buy_quote_volume DOUBLE""",
    "mark_price_candles": """
        symbol VARCHAR NOT NULL, open_time TIMESTAMP NOT NULL,
        open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE""",
    "open_interest": """
        symbol VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
        open_interest DOUBLE, open_interest_value DOUBLE""",
    "level_openings": """
        symbol VARCHAR NOT NULL, level_id BIGINT NOT NULL, created_at TIMESTAMP NOT NULL,
        side VARCHAR NOT NULL, leverage INTEGER NOT NULL, entry_price DOUBLE NOT NULL,
        liq_price DOUBLE NOT NULL, notional_usd DOUBLE NOT NULL,
        tier_leverage INTEGER, mmr DOUBLE, maint_amount DOUBLE, price_bucket DOUBLE""",
    "level_consumptions": """
        symbol VARCHAR NOT NULL, level_id BIGINT NOT NULL, consumed_at TIMESTAMP NOT NULL,
        consumed_usd DOUBLE NOT NULL, side VARCHAR""",
    "candle_ledger": """
        symbol VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, side VARCHAR NOT NULL,
        opened_usd DOUBLE NOT NULL, consumed_usd DOUBLE NOT NULL,
        closed_usd DOUBLE NOT NULL, active_usd DOUBLE NOT NULL,
        open_interest_usd DOUBLE, coverage DOUBLE""",
    "heatmap_snapshots": """
        symbol VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, price_bucket DOUBLE NOT NULL,
        side VARCHAR NOT NULL, active_usd DOUBLE NOT NULL, consumed_usd DOUBLE NOT NULL""",
    "heatmap_snapshots_by_leverage": """
        symbol VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, price_bucket DOUBLE NOT NULL,
        side VARCHAR NOT NULL, leverage INTEGER NOT NULL,
        active_usd DOUBLE NOT NULL, consumed_usd DOUBLE NOT NULL""",
    # Observed liquidations (not modelled): one row per bucket of the source; a bucket the
    # source lacks is absent, never 0.
    "realized_liquidations": """
        symbol VARCHAR NOT NULL, bucket_start TIMESTAMP NOT NULL, bucket_minutes INTEGER NOT NULL,
        long_usd DOUBLE NOT NULL, short_usd DOUBLE NOT NULL, source VARCHAR NOT NULL,
        scope VARCHAR NOT NULL""",
    # The model's skill against realized_liquidations over a window (docs/validation.md).
    "model_skill": """
        symbol VARCHAR NOT NULL, window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL,
        bucket_minutes INTEGER NOT NULL, side VARCHAR NOT NULL, predictor VARCHAR NOT NULL,
        metric VARCHAR NOT NULL, value DOUBLE, n_buckets INTEGER NOT NULL, config_hash VARCHAR,
        computed_at TIMESTAMP NOT NULL""",
    # Tables the model adds beside the SQL contract. `model_state` holds each day's end-of-day
    # active levels (what the next day starts from); `model_runs` one row per symbol and day with
    # the configuration that produced it; `margin_brackets` the shipped bracket tables, so the
    # liquidation-price check can recompute prices in SQL.
    "model_state": """
        symbol VARCHAR NOT NULL, day DATE NOT NULL, state_position INTEGER NOT NULL,
        level_id BIGINT NOT NULL, created_at TIMESTAMP NOT NULL, side VARCHAR NOT NULL,
        leverage INTEGER NOT NULL, tier_index INTEGER NOT NULL, entry_price DOUBLE NOT NULL,
        liq_price DOUBLE NOT NULL, price_bucket DOUBLE NOT NULL, notional_usd DOUBLE NOT NULL,
        remaining_usd DOUBLE NOT NULL""",
    "model_runs": """
        symbol VARCHAR NOT NULL, day DATE NOT NULL, config_hash VARCHAR NOT NULL,
        assumptions JSON NOT NULL, bucket_size DOUBLE, last_candle_time TIMESTAMP,
        stats JSON NOT NULL, state_metadata JSON NOT NULL, computed_at TIMESTAMP NOT NULL""",
    "margin_brackets": """
        symbol VARCHAR NOT NULL, effective_from DATE NOT NULL, floor DOUBLE NOT NULL,
        cap DOUBLE NOT NULL, max_leverage INTEGER NOT NULL, mmr DOUBLE NOT NULL,
        maint_amount DOUBLE NOT NULL""",
}

VIEW_DDL: dict[str, str] = {
    "liquidation_levels": """
        SELECT o.*, c.consumed_at, c.consumed_usd
        FROM level_openings o
        LEFT JOIN level_consumptions c USING (symbol, level_id)""",
}


# Columns added to a table after its first release: files created earlier gain them (NULL for
# the old rows, which a recompute under the new model fills).
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "candle_ledger": ("open_interest_usd DOUBLE", "coverage DOUBLE"),
}


class DatabaseLockedError(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than we were willing to wait."""


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create every contract table and view that does not exist yet."""
    for name, columns in TABLE_DDL.items():
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    for name, added in ADDED_COLUMNS.items():
        for column in added:
            conn.execute(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {column}")
    for name, query in VIEW_DDL.items():
        conn.execute(f"CREATE VIEW IF NOT EXISTS {name} AS {query}")


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
    path: str | Path, *, read_only: bool = False, lock_wait_seconds: float = 60.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a short-lived connection, waiting with backoff while another process holds the lock.

    DuckDB allows one read-write process or many read-only ones; a user's SQL session or the
    HTTP API holding the file makes the writer wait here instead of failing at once. A writer
    announces itself (``writer_waiting``) from its first attempt until it closes the file.
    """
    path = Path(path)
    if read_only:
        with _open_when_unlocked(path, read_only, lock_wait_seconds) as conn:
            yield conn
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with _announce_writer(path), _open_when_unlocked(path, read_only, lock_wait_seconds) as conn:
        yield conn


@contextmanager
def _open_when_unlocked(
    path: Path, read_only: bool, lock_wait_seconds: float
) -> Iterator[duckdb.DuckDBPyConnection]:
    deadline = time.monotonic() + lock_wait_seconds
    delay = 0.05
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                mode = "read-only" if read_only else "read-write"
                raise DatabaseLockedError(
                    f"DuckDB file {path} is locked by another process; gave up opening it {mode} "
                    f"after {lock_wait_seconds:.0f} s. Close other sessions on it (a SQL shell, "
                    f"notebook or `liqheat serve`) or retry. DuckDB said: {error}"
                ) from error
            time.sleep(delay)
            # Poll briskly: readers honouring a writer's intent let go within one request.
            delay = min(delay * 2, 0.25)
    try:
        yield conn
    finally:
        conn.close()


def replace_rows(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    *,
    symbol: str,
    time_column: str,
    start: datetime,
    end: datetime,
    include_end: bool = False,
) -> int:
    """Replace one symbol's rows of ``table`` whose ``time_column`` lies in [start, end).

    ``include_end`` switches to (start, end], the open-interest ownership rule. Runs inside the
    caller's transaction; columns are matched by name, never by position.
    """
    window = (
        f"{time_column} > ? AND {time_column} <= ?"
        if include_end
        else f"{time_column} >= ? AND {time_column} < ?"
    )
    conn.execute(f"DELETE FROM {table} WHERE symbol = ? AND {window}", [symbol, start, end])
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
