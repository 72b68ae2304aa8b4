"""The `liqheat` console script: option validation, demo-data output, the post-run summary,
and `liqheat demo` end to end as README's quick start runs it (quiet, recorded in DAGSTER_HOME).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from liqheat_pipeline.cli import _summary_lines, main
from liqheat_pipeline.defs.automation.schedules import DAILY_JOB_NAME
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL, generate_demo_market
from liqheat_pipeline.lib.warehouse import TABLE_DDL, ensure_schema


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Run every test from an empty directory with the data and database inside it."""
    monkeypatch.chdir(tmp_path)
    for name in ("LIQHEAT_DATA_DIR", "LIQHEAT_DB", "LIQHEAT_MODEL_CONFIG", "LIQHEAT_SYMBOLS"):
        monkeypatch.delenv(name, raising=False)


def _usage_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo-data", "demo"])
@pytest.mark.parametrize("bad_date", ["2025-13-01", "yesterday", "2025/12/01"])
def test_a_bad_date_names_the_option_and_the_value(capsys, command, bad_date):
    error = _usage_error(capsys, [command, "--start", bad_date])

    assert "argument --start" in error
    assert repr(bad_date) in error
    assert "YYYY-MM-DD" in error


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--days", "0", "must be at least 1"),
        ("--days", "-4", "must be at least 1"),
        ("--days", "ten", "expected a whole number"),
        ("--seed", "-1", "must be at least 0"),
        ("--seed", "1.5", "expected a whole number"),
    ],
)
@pytest.mark.parametrize("command", ["demo-data", "demo"])
def test_bad_numbers_name_the_option(capsys, command, option, value, problem):
    error = _usage_error(capsys, [command, option, value])

    assert f"argument {option}" in error
    assert problem in error


def test_a_subcommand_is_required(capsys):
    error = _usage_error(capsys, [])

    assert "COMMAND" in error


def test_demo_refuses_a_range_past_the_last_complete_day_before_writing_anything(capsys, tmp_path):
    today = datetime.now(UTC).date().isoformat()

    error = _usage_error(capsys, ["demo", "--start", today, "--days", "1"])

    assert f"--start {today} --days 1" in error
    assert "last complete UTC day" in error
    assert list(tmp_path.iterdir()) == []


def test_demo_reports_an_invalid_setting_before_writing_anything(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("LIQHEAT_MODEL_CONFIG", str(tmp_path / "missing.json"))

    error = _usage_error(capsys, ["demo", "--days", "1"])

    assert "LIQHEAT_MODEL_CONFIG" in error
    assert list(tmp_path.iterdir()) == []


def test_demo_data_writes_the_archive_and_says_where(capsys, tmp_path):
    root = tmp_path / "mirror"

    assert main(["demo-data", "--root", str(root), "--start", "2025-12-01", "--days", "2"]) == 0

    output = capsys.readouterr().out
    klines = sorted((root / "futures/um/daily/klines/DEMOUSDT/5m").iterdir())
    metrics = sorted((root / "futures/um/daily/metrics/DEMOUSDT").iterdir())
    assert [path.name for path in klines] == [
        "DEMOUSDT-5m-2025-12-01.csv.gz",
        "DEMOUSDT-5m-2025-12-02.csv.gz",
    ]
    assert metrics[0].name == "DEMOUSDT-metrics-2025-11-30.csv.gz" and len(metrics) == 3
    assert "SYNTHETIC DEMOUSDT" in output
    assert str(root.resolve()) in output
    assert "2 in futures/um/daily/klines/DEMOUSDT/5m/" in output
    assert "3 in futures/um/daily/metrics/DEMOUSDT/" in output
    assert "SYNTHETIC.md" in output


def test_demo_data_defaults_to_the_configured_data_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("LIQHEAT_DATA_DIR", str(tmp_path / "configured"))

    assert main(["demo-data", "--days", "1", "--seed", "3"]) == 0

    note = tmp_path / "configured" / "futures" / "um" / "daily" / "SYNTHETIC.md"
    assert "seed 3" in note.read_text()


def test_the_console_script_is_installed_and_validates(tmp_path):
    script = Path(sys.executable).with_name("liqheat")

    result = subprocess.run(
        [str(script), "demo-data", "--start", "2025-02-30"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 2
    assert "argument --start" in result.stderr and "'2025-02-30'" in result.stderr


def test_summary_counts_the_demo_symbol_only(db_path):
    candles, open_interest = generate_demo_market(date(2025, 12, 1), 1)
    with duckdb.connect(str(db_path)) as conn:
        ensure_schema(conn)
        for symbol in (DEMO_SYMBOL, "BTCUSDT"):
            frame = candles.assign(symbol=symbol)
            conn.register("frame", frame)
            conn.execute("INSERT INTO candles BY NAME SELECT * FROM frame")
        conn.register("oi", open_interest.assign(symbol=DEMO_SYMBOL))
        conn.execute("INSERT INTO open_interest BY NAME SELECT * FROM oi")

    lines = _summary_lines(db_path)

    assert lines == [
        f"candles: 288 rows for {DEMO_SYMBOL}, 2025-12-01 00:00 … 2025-12-01 23:55",
        f"open_interest: 289 rows for {DEMO_SYMBOL}, 2025-12-01 00:00 … 2025-12-02 00:00",
        f"heatmap_snapshots: 0 rows for {DEMO_SYMBOL}",
    ]


def test_summary_says_when_a_table_is_not_present(db_path):
    with duckdb.connect(str(db_path)) as conn:
        conn.execute(f"CREATE TABLE candles ({TABLE_DDL['candles']})")
        conn.execute(f"CREATE TABLE open_interest ({TABLE_DDL['open_interest']})")

    assert _summary_lines(db_path) == [
        f"candles: 0 rows for {DEMO_SYMBOL}",
        f"open_interest: 0 rows for {DEMO_SYMBOL}",
        "heatmap_snapshots: not present",
    ]


def test_the_demo_runs_quietly_and_is_recorded_in_the_dagster_home(tmp_path):
    """What `make demo` does (DAGSTER_HOME = the project's dagster_home), on two days."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LIQHEAT_", "DAGSTER_"))
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("liqheat")), "demo", "--days", "2"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=tmp_path,
        env={**env, "DAGSTER_HOME": str(home)},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Steps and progress at INFO, none of Dagster's per-event DEBUG lines, no warnings.
    assert " - DEBUG - " not in output and "Warning" not in output, output
    assert "DEMOUSDT model: 2/2 days (100%), through 2025-12-02" in output
    assert len(output.splitlines()) < 40, output
    assert (tmp_path / "data" / "heatmaps" / "DEMOUSDT" / "latest.html").is_file()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.job_name == DAILY_JOB_NAME and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/asset_partition_range_start"] == "2025-12-01"
        assert run.tags["dagster/asset_partition_range_end"] == "2025-12-02"
