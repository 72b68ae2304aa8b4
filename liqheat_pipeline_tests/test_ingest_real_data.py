"""Ingest of the real 30-day Binance sample (BTCUSDT, ETHUSDT), in one Dagster run per process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib.warehouse import connect
from liqheat_pipeline.settings import Settings
from liqheat_pipeline_tests.conftest import REAL_FIRST_DAY, REAL_LAST_DAY, REAL_SYMBOLS, REPO_ROOT
from liqheat_pipeline_tests.helpers.pipeline_runs import ingest_definitions

pytestmark = pytest.mark.real_data

SNAPSHOTS_PER_SYMBOL = 30 * 288


def ingest_real_sample(data_dir: str | Path, db_path: str | Path) -> dg.ExecuteInProcessResult:
    """Materialize every ingest asset and check for the whole sample in one ranged run."""
    settings = Settings(
        data_dir=Path(data_dir),
        db_path=Path(db_path),
        symbols=REAL_SYMBOLS,
        start_date=date.fromisoformat(REAL_FIRST_DAY),
        download=False,
        model_config_path=None,
    )
    return dg.materialize(
        ingest_definitions(settings),
        tags={
            "dagster/asset_partition_range_start": REAL_FIRST_DAY,
            "dagster/asset_partition_range_end": REAL_LAST_DAY,
        },
        resources={"database": LiqheatDatabase(path=str(db_path))},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def table_contents(db_path: Path) -> dict[str, pd.DataFrame]:
    with connect(db_path, read_only=True) as conn:
        return {
            "candles": conn.execute("SELECT * FROM candles ORDER BY symbol, open_time").df(),
            "open_interest": conn.execute("SELECT * FROM open_interest ORDER BY symbol, ts").df(),
        }


@pytest.fixture(scope="module")
def ingested(real_binance_dir, tmp_path_factory):
    db_path = tmp_path_factory.mktemp("real") / "liqheat.duckdb"
    result = ingest_real_sample(real_binance_dir, db_path)
    return result, db_path


def test_thirty_days_of_both_symbols_land_complete_ordered_and_unique(ingested):
    result, db_path = ingested
    assert result.success
    tables = table_contents(db_path)
    # open_interest partition D holds (D 00:00, D+1 00:00]: the sample starts at 00:05.
    first_and_last = {
        ("candles", "open_time"): ("2025-12-01 00:00", "2025-12-30 23:55"),
        ("open_interest", "ts"): ("2025-12-01 00:05", "2025-12-31 00:00"),
    }
    for (name, time_column), (first, last) in first_and_last.items():
        frame = tables[name]
        for symbol in REAL_SYMBOLS:
            times = frame.loc[frame["symbol"] == symbol, time_column]
            assert len(times) == SNAPSHOTS_PER_SYMBOL, (name, symbol)
            assert times.is_unique
            assert (times.diff().dropna() == pd.Timedelta(minutes=5)).all()
            assert (times.iloc[0], times.iloc[-1]) == (pd.Timestamp(first), pd.Timestamp(last))
    # Volume-type columns other than `volume` are empty in this sample: NULL, not zero.
    assert tables["candles"]["quote_volume"].isna().all()
    assert tables["candles"]["volume"].notna().all()


def test_every_check_passes_on_the_real_sample(ingested):
    result, _ = ingested
    evaluations = result.get_asset_check_evaluations()
    days = (date.fromisoformat(REAL_LAST_DAY) - date.fromisoformat(REAL_FIRST_DAY)).days + 1
    # One evaluation per check, symbol and day.
    assert len(evaluations) == 4 * len(REAL_SYMBOLS) * days
    assert {e.partition for e in evaluations} == {
        (date.fromisoformat(REAL_FIRST_DAY) + timedelta(days=i)).isoformat() for i in range(days)
    }
    failed = [
        f"{e.asset_key.to_user_string()}.{e.check_name}@{e.partition}"
        for e in evaluations
        if not e.passed
    ]
    assert failed == []


def test_open_interest_value_over_quantity_matches_the_candle_open_at_the_snapshot(ingested):
    """Two independent sources agree only if every OI row sits at its true snapshot instant.

    value / quantity is the price the snapshot was valued at; it should match the last-price open
    of the candle starting at that instant to a fraction of a basis point (5 bp and more when the
    instants are shifted by one slot).
    """
    _, db_path = ingested
    with connect(db_path, read_only=True) as conn:
        rows = conn.execute(
            """
            SELECT o.symbol, median(abs(o.open_interest_value / o.open_interest / c.open - 1))
            FROM open_interest o JOIN candles c ON c.symbol = o.symbol AND c.open_time = o.ts
            GROUP BY o.symbol
            """
        ).fetchall()
    assert {symbol for symbol, _ in rows} == set(REAL_SYMBOLS)
    for symbol, median_gap in rows:
        assert median_gap < 1e-4, symbol


def test_the_same_ingest_under_another_host_time_zone_writes_identical_tables(
    ingested, real_binance_dir, tmp_path
):
    _, db_path = ingested
    other_db = tmp_path / "new_york.duckdb"
    script = (
        "import sys, time\n"
        "from liqheat_pipeline_tests.test_ingest_real_data import ingest_real_sample\n"
        "assert ingest_real_sample(sys.argv[1], sys.argv[2]).success\n"
        "print(time.tzname[0])\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(real_binance_dir), str(other_db)],
        env={**os.environ, "TZ": "America/New_York"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().splitlines()[-1] == "EST"
    ours, theirs = table_contents(db_path), table_contents(other_db)
    for name in ours:
        pd.testing.assert_frame_equal(ours[name], theirs[name])
