"""DuckDB's single-writer lock with a REAL second process holding the file.

A SQL session (here a read-only `python -c` process) locks the file against writers. A pipeline
write waits for it with backoff and succeeds once it is gone; with a short wait it fails with a
clear DatabaseLockedError and leaves the previous data intact. A writer announces itself from
its first attempt until it closes the file (``warehouse.writer_waiting``), so that readers
honouring it (the pipeline's reads, the HTTP API) let it in; a writer killed with -9 leaves no
stale announcement. The pipeline's reads are read-only: they share the file with other readers.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

import duckdb
import pandas as pd
import pytest

from liqheat_pipeline.lib import warehouse

DAY, NEXT_DAY = datetime(2025, 12, 1), datetime(2025, 12, 2)

# Holds the file for argv[2] seconds or until a line arrives on its stdin (``_release``).
_HOLDER = """
import select, sys, time, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
conn.execute("SELECT count(*) FROM open_interest").fetchall()
print("holding", flush=True)
select.select([sys.stdin], [], [], float(sys.argv[2]))
conn.close()
print(f"released {time.time()!r}", flush=True)
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


def _write(db_path, value: float, lock_wait_seconds: float = 60.0) -> None:
    with warehouse.transaction(db_path, lock_wait_seconds=lock_wait_seconds) as conn:
        warehouse.replace_rows(
            conn, "open_interest", _rows(value), symbol="BTCUSDT", start=DAY, end=NEXT_DAY
        )


def _stored_values(db_path) -> list[float]:
    with warehouse.connect(db_path, read_only=True) as conn:
        return [v for (v,) in conn.execute("SELECT open_interest FROM open_interest").fetchall()]


@pytest.fixture
def hold_file(db_path):
    """Start a process that opens the DuckDB file read-only and keeps it for ``seconds`` (or
    until ``_release``)."""
    holders: list[subprocess.Popen] = []

    def start(seconds: float) -> subprocess.Popen:
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(db_path), str(seconds)],
            stdin=subprocess.PIPE,
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
    _write(db_path, 1.0)
    holder = hold_file(2.0)
    started = time.monotonic()
    _write(db_path, 2.0)
    waited, finished_at = time.monotonic() - started, time.time()
    # The holder reports when it let go (its process may take a while longer to exit).
    released, released_at = holder.stdout.readline().split()
    assert released == "released"
    assert float(released_at) <= finished_at, "the write finished while the reader held the file"
    assert waited >= 1.0
    assert _stored_values(db_path) == [2.0, 2.0]


def test_a_short_wait_fails_clearly_and_keeps_the_previous_data(db_path, hold_file):
    _write(db_path, 1.0)
    holder = hold_file(60.0)
    with pytest.raises(warehouse.DatabaseLockedError) as error:
        _write(db_path, 2.0, lock_wait_seconds=0.5)
    message = str(error.value)
    assert str(db_path) in message
    assert "locked by another process" in message
    assert holder.poll() is None  # the lock really was held throughout
    holder.kill()
    holder.wait()
    assert _stored_values(db_path) == [1.0, 1.0]


def test_a_failure_inside_the_transaction_rolls_back(db_path):
    _write(db_path, 1.0)
    with pytest.raises(RuntimeError, match="boom"), warehouse.transaction(db_path) as conn:
        conn.execute("DELETE FROM open_interest")
        raise RuntimeError("boom")
    assert _stored_values(db_path) == [1.0, 1.0]


def test_a_read_finds_every_contract_table_in_a_new_file(db_path):
    with warehouse.read(db_path) as conn:
        tables = {
            name for (name,) in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
    assert tables == set(warehouse.TABLES)


def test_a_read_shares_the_file_with_another_reading_process_and_cannot_write(db_path, hold_file):
    _write(db_path, 1.0)
    holder = hold_file(60.0)
    with warehouse.read(db_path, lock_wait_seconds=0.5) as conn:
        assert conn.execute("SELECT open_interest FROM open_interest").fetchall() == [(1.0,)] * 2
        with pytest.raises(duckdb.InvalidInputException, match="read-only"):
            conn.execute("DELETE FROM open_interest")
    assert holder.poll() is None  # read while the other process held the file
    assert _stored_values(db_path) == [1.0, 1.0]


def test_a_read_does_not_start_while_a_writer_is_announced(db_path, hold_file):
    """Readers let a waiting writer in first, so overlapping reads of several processes cannot
    keep it out until its lock wait runs out."""
    _write(db_path, 1.0)
    holder = hold_file(60.0)
    writer = _start_writer(db_path)
    opened: list[float] = []

    def read() -> None:
        with warehouse.read(db_path, lock_wait_seconds=30) as conn:
            opened.append(time.time())
            conn.execute("SELECT count(*) FROM open_interest").fetchall()

    reader = threading.Thread(target=read)
    try:
        assert _eventually(lambda: warehouse.writer_waiting(db_path))
        reader.start()
        time.sleep(0.5)
        assert not opened, "a read started although a writer was waiting"
        _release(holder)
        assert writer.stdout.readline().strip() == "writing"
        time.sleep(0.3)
        assert not opened, "a read started while the writer held the file"
        writer_closing = time.time()
    finally:
        writer.communicate("\n", timeout=30)
        reader.join(timeout=30)
    assert writer.returncode == 0
    assert len(opened) == 1 and opened[0] >= writer_closing


def test_the_backoff_doubles_its_pauses_up_to_the_cap_and_stops_at_the_deadline():
    deadline = time.monotonic() + 0.7
    backoff = warehouse.Backoff(deadline, first_delay=0.1)
    pauses = []
    while True:
        before = time.monotonic()
        if not backoff.wait():
            break
        pauses.append(time.monotonic() - before)
    stopped = time.monotonic()
    # 0.1, 0.2, then capped at MAX_POLL_SECONDS (0.25) until the deadline has passed.
    planned = [0.1, 0.2] + [warehouse.connection.MAX_POLL_SECONDS] * (len(pauses) - 2)
    assert len(pauses) >= 3
    for pause, delay in zip(pauses, planned, strict=True):
        assert delay <= pause < delay + 0.1
    assert stopped >= deadline
    assert stopped - before < 0.01  # the last call returned at once


# A writer process: it opens the file read-write (waiting as long as needed) and keeps it.
_WRITER = """
import sys
from liqheat_pipeline.lib import warehouse
print("starting", flush=True)
with warehouse.connect(sys.argv[1], lock_wait_seconds=60) as conn:
    print("writing", flush=True)
    sys.stdin.readline()
"""


def _start_writer(db_path) -> subprocess.Popen:
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "starting"
    return writer


def _eventually(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _release(holder: subprocess.Popen) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()


def test_a_writer_is_announced_while_it_waits_and_while_it_writes(db_path, hold_file):
    _write(db_path, 1.0)
    assert not warehouse.writer_waiting(db_path)
    # Held until released, so a slow machine cannot end the wait before it is observed.
    holder = hold_file(60.0)
    writer = _start_writer(db_path)
    try:
        assert _eventually(lambda: warehouse.writer_waiting(db_path))
        assert holder.poll() is None  # announced while still waiting for the lock
        _release(holder)
        assert writer.stdout.readline().strip() == "writing"
        assert warehouse.writer_waiting(db_path)
    finally:
        writer.communicate("\n", timeout=30)
    assert writer.returncode == 0
    assert not warehouse.writer_waiting(db_path)
    assert warehouse.write_intent_path(db_path).exists()  # the lock, not the file, is the signal


def test_a_killed_writer_leaves_no_announcement(db_path):
    writer = _start_writer(db_path)
    assert writer.stdout.readline().strip() == "writing"
    assert warehouse.writer_waiting(db_path)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert not warehouse.writer_waiting(db_path)


def test_a_second_writer_still_gives_up_in_time_and_the_first_stays_announced(db_path):
    """Writers share the announcement: waiting on it never outlasts ``lock_wait_seconds``."""
    writer = _start_writer(db_path)
    try:
        assert writer.stdout.readline().strip() == "writing"
        started = time.monotonic()
        with (
            pytest.raises(warehouse.DatabaseLockedError),
            warehouse.connect(db_path, lock_wait_seconds=0.5),
        ):
            pass
        assert time.monotonic() - started < 5.0
        assert warehouse.writer_waiting(db_path)
    finally:
        writer.communicate("\n", timeout=30)
    assert not warehouse.writer_waiting(db_path)
