"""Several symbols in one range run on both cores: the multiprocess executor runs their steps in
parallel processes and stores exactly the rows of an in-process run.

Two synthetic symbols (DEMOUSDT, DEMO2USDT: their own seeds, the generic bracket table) × two
days, launched as the README documents range runs (`dg launch --job daily_liqheat_job
--partition-range ...`), once with the definitions' default executor and once with the
in-process run config, each into its own DuckDB file and Dagster instance; and one symbol
alone with the default executor, which is then in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from liqheat_pipeline.cli import DEFINITIONS_MODULE, QUIET_RUN_CONFIG
from liqheat_pipeline.defs.automation.schedules import DAILY_JOB_NAME, IN_PROCESS_EXECUTION
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.demo.market import synthetic_symbols, write_demo_archive
from liqheat_pipeline.lib.heatmap.labels import SYNTHETIC_LABEL
from liqheat_pipeline_tests.conftest import REPO_ROOT
from liqheat_pipeline_tests.helpers.pipeline_runs import subprocess_env

START, DAYS = date(2025, 12, 1), 2
LAST = START + timedelta(days=DAYS - 1)
SYMBOLS = synthetic_symbols(2)
# Wall-clock columns: when a row was computed, not what it holds.
WALL_CLOCK_COLUMNS = {"model_runs": "computed_at", "model_skill": "computed_at"}


def _launch(root: Path, name: str, execution: dict, symbols: int = len(SYMBOLS)) -> Path:
    """One `dg launch` of the daily job over the two days for the first ``symbols``; its work
    folder."""
    work = root / name
    home = work / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = subprocess_env(
        DAGSTER_HOME=str(home),
        LIQHEAT_DATA_DIR=str(root / "archive"),
        LIQHEAT_DB=str(work / "liqheat.duckdb"),
        LIQHEAT_SYMBOLS=",".join(symbol for symbol, _ in SYMBOLS[:symbols]),
        LIQHEAT_START_DATE=START.isoformat(),
        LIQHEAT_END_DATE=LAST.isoformat(),
        LIQHEAT_LIQUIDATIONS_DIR=str(work / "no_liquidations"),
        LIQHEAT_DOWNLOAD="0",
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("dg")),
            "launch",
            "--job",
            DAILY_JOB_NAME,
            "--partition-range",
            f"{START.isoformat()}...{LAST.isoformat()}",
            "-m",
            DEFINITIONS_MODULE,
            "--config-json",
            json.dumps({**QUIET_RUN_CONFIG, **execution}),
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return work


def _step_pids(work: Path) -> tuple[int, dict[str, int]]:
    """The run's own process id and the process id each step started in."""
    with dg.DagsterInstance.from_config(str(work / "dagster_home")) as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        run_pid = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_START)[0]
        starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
        checks = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    failed = [
        entry.dagster_event.event_specific_data.check_name
        for entry in checks
        if not entry.dagster_event.event_specific_data.passed
    ]
    assert checks and failed == []
    return run_pid.dagster_event.pid, {e.step_key: e.dagster_event.pid for e in starts}


def _rows(db_path: Path) -> dict[str, pd.DataFrame]:
    """Every contract table's rows in a canonical order (wall-clock columns left out)."""
    with warehouse.connect(db_path, read_only=True) as conn:
        return {
            table: conn.execute(
                f"SELECT * EXCLUDE ({WALL_CLOCK_COLUMNS[table]}) FROM {table} ORDER BY ALL"
                if table in WALL_CLOCK_COLUMNS
                else f"SELECT * FROM {table} ORDER BY ALL"
            ).fetchdf()
            for table in warehouse.TABLES
        }


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parallel_symbols")
    for symbol, seed in SYMBOLS:
        write_demo_archive(root / "archive", START, DAYS, seed=seed, symbol=symbol)
    return {
        "multiprocess": _launch(root, "multiprocess", {}),
        "in_process": _launch(root, "in_process", IN_PROCESS_EXECUTION),
        "one_symbol": _launch(root, "one_symbol", {}, symbols=1),
    }


def test_the_default_executor_runs_steps_in_processes_of_their_own(runs):
    run_pid, step_pids = _step_pids(runs["multiprocess"])
    symbols = {step.split("_", 1)[0].upper() for step in step_pids}
    assert symbols == {symbol for symbol, _ in SYMBOLS}
    assert run_pid not in step_pids.values()
    assert len(set(step_pids.values())) == len(step_pids)


@pytest.mark.parametrize("run", ["in_process", "one_symbol"])
def test_in_process_runs_every_step_in_the_run_process(runs, run):
    """Chosen by the run config, or by default when there is one symbol (one chain)."""
    run_pid, step_pids = _step_pids(runs[run])
    assert step_pids and set(step_pids.values()) == {run_pid}


def test_parallel_symbols_store_exactly_the_rows_of_an_in_process_run(runs):
    parallel = _rows(runs["multiprocess"] / "liqheat.duckdb")
    serial = _rows(runs["in_process"] / "liqheat.duckdb")
    for table in ("candles", "open_interest", "snapshot_segments", "level_openings", "model_runs"):
        stored = set(parallel[table]["symbol"])
        assert stored == {symbol for symbol, _ in SYMBOLS}, table
    for table in warehouse.TABLES:
        pd.testing.assert_frame_equal(parallel[table], serial[table], check_exact=True, obj=table)


def test_every_synthetic_symbol_gets_pages_labelled_synthetic(runs):
    for symbol, _ in SYMBOLS:
        pages = runs["multiprocess"] / "heatmaps" / symbol
        for day in (START, LAST):
            assert SYNTHETIC_LABEL in (pages / f"{day.isoformat()}.html").read_text("utf-8")
