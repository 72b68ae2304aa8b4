"""DuckDB's single-writer lock with a REAL second process holding the file.

A SQL session (here a read-only `python -c` process) locks the file against writers. A pipeline
write waits for it with backoff and succeeds once it is gone; with a short wait it fails with a
clear DatabaseLockedError and leaves the previous data intact.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime

import pandas as pd
import pytest

from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib import warehouse

DAY, NEXT_DAY = datetime(2025, 12, 1), datetime(2025, 12, 2)

_HOLDER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
conn.execute("SELECT count(*) FROM open_interest").fetchall()
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _rows(value: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": "BTCUSDT",
            "ts": pd.to_datetime(["2025-12-01 00:05", "2025-12-01 00:10"]),
            "open_interest": value,
            "open_interest_value": value,
        }
    )


def _write(database: LiqheatDatabase, value: float) -> None:
    with database.transaction() as conn:
        warehouse.replace_rows(
            conn, "open_interest", _rows(value), symbol="BTCUSDT", time_column="ts",
            start=DAY, end=NEXT_DAY, include_end=True,
        )  # fmt: skip


def _stored_values(db_path) -> list[float]:
    with warehouse.connect(db_path, read_only=True) as conn:
        return [v for (v,) in conn.execute("SELECT open_interest FROM open_interest").fetchall()]


@pytest.fixture
def hold_file(db_path):
    """Start a process that opens the DuckDB file read-only and keeps it for ``seconds``."""
    holders: list[subprocess.Popen] = []

    def start(seconds: float) -> subprocess.Popen:
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(db_path), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout.readline().strip() == "holding"
        return holder

    yield start
    for holder in holders:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


def test_a_write_waits_for_a_reader_process_then_succeeds(db_path, hold_file):
    database = LiqheatDatabase(path=str(db_path), lock_wait_seconds=60)
    _write(database, 1.0)
    holder = hold_file(2.0)
    started = time.monotonic()
    _write(database, 2.0)
    waited = time.monotonic() - started
    assert holder.poll() is not None, "the write finished while the reader still held the file"
    assert waited >= 1.0
    assert _stored_values(db_path) == [2.0, 2.0]


def test_a_short_wait_fails_clearly_and_keeps_the_previous_data(db_path, hold_file):
    _write(LiqheatDatabase(path=str(db_path)), 1.0)
    holder = hold_file(60.0)
    impatient = LiqheatDatabase(path=str(db_path), lock_wait_seconds=0.5)
    with pytest.raises(warehouse.DatabaseLockedError) as error:
        _write(impatient, 2.0)
    message = str(error.value)
    assert str(db_path) in message
    assert "locked by another process" in message
    assert holder.poll() is None  # the lock really was held throughout
    holder.kill()
    holder.wait()
    assert _stored_values(db_path) == [1.0, 1.0]


def test_a_failure_inside_the_transaction_rolls_back(db_path):
    database = LiqheatDatabase(path=str(db_path))
    _write(database, 1.0)
    with pytest.raises(RuntimeError, match="boom"), database.transaction() as conn:
        conn.execute("DELETE FROM open_interest")
        raise RuntimeError("boom")
    assert _stored_values(db_path) == [1.0, 1.0]
