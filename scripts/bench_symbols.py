"""Benchmark N synthetic symbols x D days in ONE range run through the documented CLI; prints JSON.

1. Writes the synthetic markets DEMOUSDT, DEMO2USDT, … (``synthetic_symbols``, one seed each)
   for D days into a temporary archive mirror.
2. Runs every asset and check of every symbol over those days in ONE Dagster run, as the README
   documents range runs: ``dg launch --job daily_liqheat_job --partition-range ... -m
   liqheat_pipeline.definitions`` with the console logger at INFO and the definitions' default
   executor (multiprocess: symbols' steps in parallel processes, as many as cores, forked from
   a server that has imported the definitions' modules), or ``--executor spawn`` (each step's
   process started afresh) or ``in_process``. Measures the wall time, the peak RSS of the whole
   process tree (the sum over the tree, polled from /proc), the CPU utilisation (user + sys CPU
   seconds of the tree, polled from /proc, over wall seconds: 2.0 is both cores busy the whole
   time), the DuckDB file size and,
   from the run's event log, each symbol's time (its first step's start to its last step's end,
   and the sum of its steps) and the seconds step processes took to start.
3. The comparison (``--compare``): ``in_process`` runs the same symbols and days again in one
   process (one after another, on one core) into a second file; ``one_symbol`` runs only the
   first symbol in one process and reports N times its wall time; ``none`` skips it.

The machine's load average is reported: other processes on the host skew every figure.

Usage: python scripts/bench_symbols.py [--symbols N] [--days D] [--start YYYY-MM-DD]
       [--executor multiprocess|spawn|in_process] [--compare one_symbol|in_process|none]
       [--keep DIR] [--planned-partition-subsets]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

# Run as `python scripts/bench_symbols.py`: its folder is on sys.path, and so is bench_year.
from bench_year import (
    PLANNED_SUBSETS_VARIABLE,
    TreePoller,
    TreeRssSampler,
    launch_command,
    launch_environment,
    run_event_figures,
)

from liqheat_pipeline.cli import QUIET_RUN_CONFIG
from liqheat_pipeline.defs.automation.schedules import IN_PROCESS_EXECUTION
from liqheat_pipeline.defs.definitions import MULTIPROCESS_EXECUTION
from liqheat_pipeline.lib.demo.market import synthetic_symbols, write_demo_archive

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_START = date(2025, 12, 1)
DEFAULT_SYMBOLS = 10
DEFAULT_DAYS = 365
# The run config of each --executor: multiprocess (the definitions' default for several
# symbols: step processes forked from a server that imported the definitions' modules), spawn
# (multiprocess, each step's process started afresh: seconds of imports a step), in process.
EXECUTION = {
    "multiprocess": {"execution": {"config": MULTIPROCESS_EXECUTION}},
    "spawn": {"execution": {"config": {"multiprocess": {}}}},
    "in_process": IN_PROCESS_EXECUTION,
}
CPU_POLL_SECONDS = 0.2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STEP_EVENTS = {
    dg.DagsterEventType.STEP_WORKER_STARTING,
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
}


class TreeCpuSampler(TreePoller):
    """Polls user + sys CPU seconds of every process of a tree (forked step processes are never
    waited for by this process, so getrusage does not see them); keeps each process's last
    reading, which misses at most the last poll interval of a process."""

    def __init__(self, root_pid: int) -> None:
        self._seconds: dict[int, float] = {}
        super().__init__(root_pid, CPU_POLL_SECONDS)
        self.start()

    def sample(self) -> None:
        parents, cpu = {}, {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended while we read it
                continue
            # After the command name: state, ppid, ... utime and stime are fields 12 and 13.
            parents[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        for pid, seconds in cpu.items():
            ancestor = pid
            while ancestor not in (self._root_pid, 0, 1) and ancestor in parents:
                ancestor = parents[ancestor]
            if ancestor == self._root_pid:
                self._seconds[pid] = max(self._seconds.get(pid, 0.0), seconds)

    def stop(self) -> float:
        self._join()
        return sum(self._seconds.values())


def _run(
    work: Path,
    symbols: list[str],
    start: date,
    days: int,
    executor: str,
    planned_subsets: bool = False,
) -> dict:
    """One `dg launch` of the daily job over the range for ``symbols``, in ``work``."""
    last = start + timedelta(days=days - 1)
    home = work / "dagster_home"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    db_path = work / "liqheat.duckdb"
    env = launch_environment(work.parent / "archive", db_path, symbols, start, last)
    env["DAGSTER_HOME"] = str(home)
    if planned_subsets:
        env[PLANNED_SUBSETS_VARIABLE] = "true"
    command = launch_command(start, last, {**QUIET_RUN_CONFIG, **EXECUTION[executor]})
    log_path = work / "run.log"
    launched_at = time.time()
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        sampler, cpu_sampler = TreeRssSampler(process.pid), TreeCpuSampler(process.pid)
        status = process.wait()
        samples, cpu = sampler.stop(), cpu_sampler.stop()
    wall = time.perf_counter() - started
    if status != 0:
        sys.stderr.write(log_path.read_text()[-5000:])
        raise SystemExit(f"benchmark run failed (exit {status}): {' '.join(command)}")
    return {
        "executor": executor,
        "symbols": len(symbols),
        "days": f"{start}...{last}",
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "cpu_utilisation": round(cpu / wall, 2),
        "peak_rss_tree_gib": round(max(rss for _, rss in samples) / 2**30, 3),
        "database_mb": round(db_path.stat().st_size / 1e6, 1),
        **_step_times(home),
        PLANNED_SUBSETS_VARIABLE: planned_subsets,
        "event_log": {
            key: value
            for key, value in run_event_figures(home, launched_at).items()
            if key != "step_seconds"  # per symbol above
        },
    }


def _step_times(home: Path) -> dict:
    """Per symbol, from the run's step events: wall seconds from its first step's start to its
    last step's end, and the sum of its steps' seconds; the seconds step processes took to start
    (worker starting to step start, 0 in process)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        events = instance.all_logs(run.run_id, of_type=STEP_EVENTS)
    stamps: dict[str, dict[dg.DagsterEventType, float]] = {}
    for entry in events:
        stamps.setdefault(entry.step_key, {})[entry.dagster_event_type] = entry.timestamp
    spans: dict[str, list[float]] = {}
    step_sums: dict[str, float] = {}
    worker_start = 0.0
    for step, times in stamps.items():
        symbol = step.split("_", 1)[0].upper()  # `demo2usdt_model_checks` -> DEMO2USDT
        begin = times[dg.DagsterEventType.STEP_START]
        end = times.get(
            dg.DagsterEventType.STEP_SUCCESS, times.get(dg.DagsterEventType.STEP_FAILURE)
        )
        span = spans.setdefault(symbol, [begin, end])
        span[0], span[1] = min(span[0], begin), max(span[1], end)
        step_sums[symbol] = step_sums.get(symbol, 0.0) + end - begin
        worker_start += begin - times.get(dg.DagsterEventType.STEP_WORKER_STARTING, begin)
    return {
        "steps": len(stamps),
        "step_process_start_seconds": round(worker_start, 1),
        "per_symbol_seconds": {
            symbol: {"span": round(last - first, 1), "steps_sum": round(step_sums[symbol], 1)}
            for symbol, (first, last) in sorted(spans.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=DEFAULT_SYMBOLS)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START)
    parser.add_argument("--executor", choices=sorted(EXECUTION), default="multiprocess")
    parser.add_argument(
        "--compare", choices=("one_symbol", "in_process", "none"), default="one_symbol"
    )
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument(
        "--planned-partition-subsets",
        action="store_true",
        help=f"launch the first run with {PLANNED_SUBSETS_VARIABLE}=true (README, Backfilling)",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="liqheat-bench-symbols-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        symbols = synthetic_symbols(args.symbols)
        written = time.perf_counter()
        for symbol, seed in symbols:
            write_demo_archive(work / "archive", args.start, args.days, seed=seed, symbol=symbol)
        archive_seconds = time.perf_counter() - written
        names = [symbol for symbol, _ in symbols]
        result: dict = {
            "archive_seconds": round(archive_seconds, 1),
            "run": _run(
                work / "run",
                names,
                args.start,
                args.days,
                args.executor,
                args.planned_partition_subsets,
            ),
        }
        if args.compare == "in_process":
            result["in_process_all_symbols"] = _run(
                work / "in_process", names, args.start, args.days, "in_process"
            )
            baseline = result["in_process_all_symbols"]["seconds"]
        elif args.compare == "one_symbol":
            one = _run(work / "one_symbol", names[:1], args.start, args.days, "in_process")
            result["in_process_one_symbol"] = one
            baseline = round(one["seconds"] * len(names), 1)
            result["in_process_one_symbol_times_n_seconds"] = baseline
        if args.compare != "none":
            result["speedup_over_in_process"] = round(baseline / result["run"]["seconds"], 2)
    result["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
