"""Benchmark one symbol-year through the documented CLI; prints one JSON object.

1. Writes 365 days of the synthetic DEMOUSDT market (``lib/demo/market.py``) into a temporary
   archive mirror.
2. Runs every asset and check of those days in ONE Dagster run, as the README documents it:
   ``dg launch --job daily_liqheat_job --partition-range ... -m liqheat_pipeline.definitions``
   with the console logger at INFO (``liqheat demo``'s run config). Measures the wall time, the
   peak RSS of the whole process tree (the sum over the tree, polled from /proc) and of its
   largest process (``getrusage(RUSAGE_CHILDREN).ru_maxrss``), and the DuckDB storage per table.
   The run is recorded in a Dagster instance of its own (``DAGSTER_HOME`` in the work directory,
   SQLite storage as ``make`` sets up): from its event log, the seconds before the run started
   (process start and the planned events), each step's seconds and the events per type.
3. The write floor, in the same run: DuckDB copying the produced snapshots into a fresh file
   (``ATTACH`` + ``CREATE TABLE AS SELECT``), timed, and the pipeline's ratio to it; once for
   the contract's snapshot relations (the views, every 5-minute cell: the dense rows the issue's
   floor was defined on) and once for the tables they are stored in (the segments).
4. One incremental day after that history, as the daily schedule runs it: the next day's
   partition of every asset and check, through the README's single-day command (``dagster
   asset materialize --select '*' --partition D``), timed including process start, with the
   seconds of each step from the run's log; beside it the Dagster floor, the same command for
   one day of a one-asset job that only logs (``dagster_floor_definitions.py``), fastest of 3.

The machine's load average is reported: other processes on the host skew every figure.

Usage: python scripts/bench_year.py [--days N] [--start YYYY-MM-DD] [--keep DIR]
       [--planned-partition-subsets]  (the range run with Dagster's one-planned-event-per-asset
       opt-in, README "Backfilling a date range")
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

# Run as `python scripts/bench_year.py`: its folder is on sys.path.
from bench_pipeline import step_seconds

from liqheat_pipeline.cli import DEFINITIONS_MODULE, QUIET_RUN_CONFIG
from liqheat_pipeline.defs.automation.schedules import DAILY_JOB_NAME
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL, write_demo_archive

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_START = date(2025, 12, 1)
DEFAULT_DAYS = 365
# The contract's snapshot relations (views) and the tables that store them.
SNAPSHOT_RELATIONS = {
    "dense_views": ("heatmap_snapshots", "heatmap_snapshots_by_leverage"),
    "stored_segments": ("snapshot_segments", "snapshot_segments_by_leverage"),
}
RSS_POLL_SECONDS = 0.2
RSS_TARGET_GIB = 1.5
STORAGE_TARGET_MB = 250
INCREMENTAL_TARGET_SECONDS = 3
# The one-asset job timed beside the incremental day, and how often (the fastest is reported).
FLOOR_DEFINITIONS = Path(__file__).resolve().with_name("dagster_floor_definitions.py")
DAGSTER_FLOOR_REPEAT = 3
# Dagster's opt-in: one planned event per asset for a range run instead of one per partition.
PLANNED_SUBSETS_VARIABLE = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# An INFO line of the run's console log: its time stamp and the step that logged it.
_LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}) - dagster - \w+ - [^-]+ - [0-9a-f-]+ - (\w+) - "
)


def _tree_rss_bytes(root_pid: int) -> int:
    """Resident bytes of ``root_pid`` and all its descendants (0 once they are gone)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            resident_pages = int((entry / "statm").read_text().split()[1])
        except OSError:  # the process ended while we read it
            continue
        # Fields after the parenthesised command name: state, ppid, ...
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
        rss[int(entry.name)] = resident_pages * PAGE_BYTES
    total, pending = 0, [root_pid]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0)
        pending.extend(children.get(pid, ()))
    return total


class TreePoller:
    """Calls ``sample()`` in a thread every ``interval`` seconds until ``stop()``."""

    def __init__(self, root_pid: int, interval: float = RSS_POLL_SECONDS) -> None:
        self._root_pid = root_pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def sample(self) -> None:
        raise NotImplementedError

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)

    def _join(self) -> None:
        self._stop.set()
        self._thread.join()


class TreeRssSampler(TreePoller):
    """Polls the RSS sum of a process tree, keeping (epoch seconds, bytes)."""

    def __init__(self, root_pid: int) -> None:
        self.samples: list[tuple[float, int]] = []
        super().__init__(root_pid)
        self.start()

    def sample(self) -> None:
        self.samples.append((time.time(), _tree_rss_bytes(self._root_pid)))

    def stop(self) -> list[tuple[float, int]]:
        self._join()
        return self.samples


def _log_lines(log: str) -> list[tuple[float, str]]:
    """(epoch seconds, step kind) of each INFO line of the run's log (`demousdt_model` ->
    `model`)."""
    lines = []
    for line in log.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            stamp = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S %z").timestamp()
            lines.append((stamp, match[2].split("_", 1)[-1].lstrip("_")))
    return lines


def _step_log_spans(lines: list[tuple[float, str]]) -> dict[str, int]:
    """Seconds from each step's first to its last INFO line.

    The INFO log has no "step finished" events, so this is a lower bound of the step's time
    (whole seconds); it shows where a long range run spends its time.
    """
    spans: dict[str, list[float]] = {}
    for stamp, step in lines:
        spans.setdefault(step, [stamp, stamp])[1] = stamp
    return {step: round(last - first) for step, (first, last) in spans.items()}


def _peak_rss_by_step(
    samples: list[tuple[float, int]], lines: list[tuple[float, str]]
) -> dict[str, float]:
    """Peak tree RSS (GiB) per step: a sample counts for the step of the next log line (steps
    log while or when they finish; the in-process executor runs one step at a time)."""
    peaks: dict[str, int] = {}
    for stamp, rss in samples:
        # Log stamps are whole seconds: a line written after the sample has one >= its floor.
        step = next((s for logged, s in lines if logged >= math.floor(stamp)), "after the run")
        peaks[step] = max(peaks.get(step, 0), rss)
    return {step: round(peak / 2**30, 3) for step, peak in peaks.items()}


def launch_environment(
    archive: Path, db_path: Path, symbols: list[str], start: date, last: date
) -> dict[str, str]:
    """This process's environment without LIQHEAT_* and DAGSTER_HOME, plus the run's settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LIQHEAT_") and key != "DAGSTER_HOME"
    }
    env.update(
        LIQHEAT_DATA_DIR=str(archive),
        LIQHEAT_DB=str(db_path),
        LIQHEAT_SYMBOLS=",".join(symbols),
        LIQHEAT_START_DATE=start.isoformat(),
        LIQHEAT_END_DATE=last.isoformat(),
        LIQHEAT_LIQUIDATIONS_DIR=str(db_path.parent / "no_liquidations"),
        LIQHEAT_DOWNLOAD="0",
    )
    return env


def launch_command(start: date, last: date, run_config: dict) -> list[str]:
    """The README's range run: `dg launch` of the daily job over [start, last]."""
    return [
        str(Path(sys.executable).with_name("dg")),
        "launch",
        "--job",
        DAILY_JOB_NAME,
        "--partition-range",
        f"{start.isoformat()}...{last.isoformat()}",
        "-m",
        DEFINITIONS_MODULE,
        "--config-json",
        json.dumps(run_config),
    ]


def _dagster_home(home: Path) -> Path:
    """A Dagster instance directory with the default (SQLite) storage and no telemetry."""
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def _environment(work: Path, start: date, days: int) -> dict[str, str]:
    """The runs' settings: the range's days and the incremental day after them, recorded in
    the work directory's Dagster instance."""
    incremental_day = start + timedelta(days=days)
    home = _dagster_home(work / "dagster_home")
    return launch_environment(
        work / "archive", work / "liqheat.duckdb", [DEMO_SYMBOL], start, incremental_day
    ) | {"DAGSTER_HOME": str(home)}


def run_event_figures(home: Path, launched_at: float) -> dict:
    """From the instance's only run: seconds from launch to the run's start and, of them, the
    seconds writing its planned events (first to last); each step's seconds (STEP_START to its
    end) and how many events of each type the run stored."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs(limit=2)
        entries = instance.all_logs(run.run_id)
    counts: dict[str, int] = {}
    started: dict[str, float] = {}
    steps: dict[str, float] = {}
    run_start = None
    planned: list[float] = []
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        counts[event.event_type_value] = counts.get(event.event_type_value, 0) + 1
        if event.event_type_value in ("RUN_START", "PIPELINE_START"):  # the latter in 1.13
            run_start = entry.timestamp
        elif event.event_type_value.endswith("_PLANNED"):
            planned.append(entry.timestamp)
        elif event.event_type_value == "STEP_START":
            started[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            kind = event.step_key.split("_", 1)[1].lstrip("_")
            steps[kind] = round(entry.timestamp - started[event.step_key], 1)
    return {
        "seconds_before_run_start": None
        if run_start is None
        else round(run_start - launched_at, 1),
        "seconds_writing_planned_events": round(max(planned) - min(planned), 1) if planned else 0,
        "step_seconds": steps,
        "events": dict(sorted(counts.items(), key=lambda item: -item[1])),
    }


def _run_pipeline(work: Path, start: date, days: int, planned_subsets: bool) -> dict:
    """One `dg launch` of the daily job over the range; wall time, RSS and step times."""
    last = start + timedelta(days=days - 1)
    env = _environment(work, start, days)
    if planned_subsets:
        env[PLANNED_SUBSETS_VARIABLE] = "true"
    command = launch_command(start, last, QUIET_RUN_CONFIG)
    log_path = work / "run.log"
    launched_at = time.time()
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        sampler = TreeRssSampler(process.pid)
        status = process.wait()
        samples = sampler.stop()
    elapsed = time.perf_counter() - started
    text = log_path.read_text()
    if status != 0:
        sys.stderr.write(text[-5000:])
        raise SystemExit(f"benchmark run failed (exit {status}): {' '.join(command)}")
    largest_child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = _log_lines(text)
    return {
        "seconds": round(elapsed, 1),
        "peak_rss_tree_gib": round(max(rss for _, rss in samples) / 2**30, 3),
        "peak_rss_largest_process_gib": round(largest_child_kib / 2**20, 3),
        "target_peak_rss_gib": RSS_TARGET_GIB,
        "step_log_span_seconds": _step_log_spans(lines),
        "peak_rss_tree_gib_by_step": _peak_rss_by_step(samples, lines),
        "event_log": run_event_figures(Path(env["DAGSTER_HOME"]), launched_at),
        "days": f"{start}...{last}",
        PLANNED_SUBSETS_VARIABLE: planned_subsets,
    }


def _materialize_day_command(definitions: list[str], day: date) -> list[str]:
    """The README's single-day command: every asset and check of ``definitions`` for ``day``."""
    return [
        str(Path(sys.executable).with_name("dagster")),
        "asset",
        "materialize",
        *definitions,
        "--select",
        "*",
        "--partition",
        day.isoformat(),
    ]


def _incremental_day(work: Path, start: date, days: int) -> dict:
    """The day after the range, every asset and check, in a process of its own; beside it the
    Dagster floor and the day's ratio to it."""
    day = start + timedelta(days=days)
    command = _materialize_day_command(["-m", DEFINITIONS_MODULE], day)
    started = time.perf_counter()
    completed = subprocess.run(
        command, env=_environment(work, start, days), cwd=REPO_ROOT, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stderr.write(completed.stderr[-5000:])
        raise SystemExit(f"incremental run failed: {' '.join(command)}")
    floor = _dagster_floor(work, day)
    return {
        "seconds": round(elapsed, 2),
        "target_seconds": INCREMENTAL_TARGET_SECONDS,
        "day": day.isoformat(),
        "history_days": days,
        "step_seconds": step_seconds(completed.stdout + completed.stderr),
        "dagster_floor": floor,
        "ratio_to_dagster_floor": round(elapsed / floor["seconds"], 1),
    }


def _dagster_floor(work: Path, day: date) -> dict:
    """Seconds of the single-day command for a one-asset job that only logs
    (``dagster_floor_definitions.py``), in a fresh process with a SQLite instance of its own as
    the incremental day has: the least a one-day Dagster run costs here (fastest of
    DAGSTER_FLOOR_REPEAT)."""
    home = _dagster_home(work / "dagster_floor_home")
    command = _materialize_day_command(["-f", str(FLOOR_DEFINITIONS)], day)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    runs = []
    for _ in range(DAGSTER_FLOOR_REPEAT):
        started = time.perf_counter()
        completed = subprocess.run(command, env=env, capture_output=True, text=True)
        runs.append(round(time.perf_counter() - started, 2))
        if completed.returncode != 0:
            sys.stderr.write(completed.stderr[-5000:])
            raise SystemExit(f"Dagster floor run failed: {' '.join(command)}")
    return {"seconds": min(runs), "all_runs": runs}


def _write_floor(db_path: Path, work: Path, relations: tuple[str, ...]) -> dict:
    """Seconds DuckDB takes to copy ``relations`` into tables of a fresh file, and their rows."""
    floor_path = work / "floor.duckdb"
    floor_path.unlink(missing_ok=True)
    with duckdb.connect(str(floor_path)) as conn:
        conn.execute("SET enable_progress_bar = false")
        conn.execute(f"ATTACH '{db_path}' AS produced (READ_ONLY)")
        rows = {
            name: conn.execute(f"SELECT count(*) FROM produced.{name}").fetchone()[0]
            for name in relations
        }
        started = time.perf_counter()
        for name in relations:
            conn.execute(f"CREATE TABLE {name} AS SELECT * FROM produced.{name}")
        conn.execute("CHECKPOINT")
        seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 1),
        "rows": rows,
        "file_mb": round(floor_path.stat().st_size / 1e6, 1),
    }


def _storage(db_path: Path, days: int) -> dict:
    """Rows and compressed megabytes per table (DuckDB's blocks holding its columns), and the
    file's megabytes scaled to a symbol-year."""
    with duckdb.connect(str(db_path), read_only=True) as conn:
        (block_size,) = conn.execute("SELECT block_size FROM pragma_database_size()").fetchone()
        tables = [
            row[0] for row in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        ]
        per_table = {}
        for table in tables:
            (rows,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            (blocks,) = conn.execute(
                f"SELECT count(DISTINCT block_id) FROM pragma_storage_info('{table}') "
                "WHERE block_id >= 0"
            ).fetchone()
            per_table[table] = {"rows": rows, "mb": round(blocks * block_size / 1e6, 1)}
    file_mb = db_path.stat().st_size / 1e6
    return {
        "file_mb": round(file_mb, 1),
        "mb_per_symbol_year": round(file_mb * 365 / days, 1),
        "target_mb_per_symbol_year": STORAGE_TARGET_MB,
        "tables": dict(sorted(per_table.items(), key=lambda item: -item[1]["mb"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument(
        "--planned-partition-subsets",
        action="store_true",
        help=f"launch the range run with {PLANNED_SUBSETS_VARIABLE}=true (README, Backfilling)",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="liqheat-bench-year-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        # One day more than the range: the incremental day after it.
        write_demo_archive(work / "archive", args.start, args.days + 1)
        pipeline = _run_pipeline(work, args.start, args.days, args.planned_partition_subsets)
        db_path = work / "liqheat.duckdb"
        storage = _storage(db_path, args.days)
        floors = {
            kind: _write_floor(db_path, work, relations)
            for kind, relations in SNAPSHOT_RELATIONS.items()
        }
        incremental = _incremental_day(work, args.start, args.days)
    print(
        json.dumps(
            {
                "pipeline_one_symbol_year": pipeline,
                "storage": storage,
                "write_floor_snapshot_copy": floors,
                "ratio_pipeline_to_floor": {
                    kind: round(pipeline["seconds"] / max(floor["seconds"], 0.1), 1)
                    for kind, floor in floors.items()
                },
                "incremental_day_after_the_range": incremental,
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_average_before": [round(value, 2) for value in load_before],
                    "load_average_after": [round(value, 2) for value in os.getloadavg()],
                    "python": sys.version.split()[0],
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
