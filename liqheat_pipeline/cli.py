"""The ``liqheat`` console script.

Each subcommand is one entry of ``SUBCOMMANDS``: a help line, a function adding its options to
an argparse parser, and a function running it that returns the exit status. Adding a subcommand
is one entry and its two functions.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from liqheat_pipeline.defs.automation.schedules import DAILY_JOB_NAME, IN_PROCESS_EXECUTION
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.demo.market import DEFAULT_SEED, DEMO_SYMBOL, write_demo_archive
from liqheat_pipeline.settings import (
    DEFAULT_DATA_DIR,
    DEFAULT_START_DATE,
    SettingsError,
    load_settings,
)

DEFAULT_DEMO_DAYS = 30
DEFINITIONS_MODULE = "liqheat_pipeline.definitions"
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# The demo's one symbol is a chain of steps: in one process they run without a process start
# (seconds of imports) per step.
DEMO_RUN_CONFIG = {**QUIET_RUN_CONFIG, **IN_PROCESS_EXECUTION}
# Relations reported after the demo run (rows and time span), for the demo symbol only, with
# their time columns.
SUMMARY_RELATIONS = {"candles": "open_time", "open_interest": "ts", "heatmap_snapshots": "ts"}


@dataclass(frozen=True)
class Subcommand:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Invalid options or settings found after parsing; reported like argparse's own errors."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        return arguments.subcommand.run(arguments)
    except UsageError as error:
        arguments.subparser.error(str(error))  # prints usage and the message, exits with 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liqheat", description="Time-evolving liquidation heatmap (Dagster + DuckDB)."
    )
    commands = parser.add_subparsers(metavar="COMMAND", required=True)
    for name, subcommand in SUBCOMMANDS.items():
        subparser = commands.add_parser(name, help=subcommand.help, description=subcommand.help)
        subcommand.add_arguments(subparser)
        subparser.set_defaults(subcommand=subcommand, subparser=subparser)
    return parser


# --- option types: argparse names the option in front of these messages -----------------------


def _iso_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {raw!r}") from None


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _add_demo_range_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--start",
        type=_iso_date,
        default=date.fromisoformat(DEFAULT_START_DATE),
        help=f"first UTC day (default {DEFAULT_START_DATE})",
    )
    parser.add_argument(
        "--days",
        type=_int_at_least(1),
        default=DEFAULT_DEMO_DAYS,
        help=f"number of days (default {DEFAULT_DEMO_DAYS})",
    )
    parser.add_argument(
        "--seed",
        type=_int_at_least(0),
        default=DEFAULT_SEED,
        help=f"random seed of the synthetic market (default {DEFAULT_SEED})",
    )


# --- demo-data ---------------------------------------------------------------------------------


def _demo_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("LIQHEAT_DATA_DIR") or DEFAULT_DATA_DIR),
        help=f"archive mirror root (default $LIQHEAT_DATA_DIR or {DEFAULT_DATA_DIR})",
    )
    _add_demo_range_arguments(parser)


def _demo_data(arguments: argparse.Namespace) -> int:
    _write_demo_data(arguments.root, arguments.start, arguments.days, arguments.seed)
    return 0


def _write_demo_data(root: Path, start: date, days: int, seed: int) -> None:
    written = write_demo_archive(root, start, days, seed=seed)
    last = start + timedelta(days=days - 1)
    print(
        f"Wrote the SYNTHETIC {DEMO_SYMBOL} market (seed {seed}, {start} … {last}) "
        f"under {root.resolve()}:"
    )
    by_folder: dict[Path, list[Path]] = {}
    for path in written:
        by_folder.setdefault(path.parent, []).append(path)
    for folder, paths in by_folder.items():
        names = paths[0].name if len(paths) == 1 else f"{paths[0].name} … {paths[-1].name}"
        print(f"  {len(paths):>4} in {folder.relative_to(root)}/: {names}")


# --- demo --------------------------------------------------------------------------------------


def _demo(arguments: argparse.Namespace) -> int:
    start, days, seed = arguments.start, arguments.days, arguments.seed
    end = start + timedelta(days=days - 1)
    last_partition = datetime.now(UTC).date() - timedelta(days=1)
    if end > last_partition:
        raise UsageError(
            f"--start {start} --days {days}: the range ends on {end}, after the last complete "
            f"UTC day ({last_partition}), which is the last daily partition"
        )
    environment = {
        **os.environ,
        "LIQHEAT_SYMBOLS": DEMO_SYMBOL,
        "LIQHEAT_START_DATE": start.isoformat(),
        "LIQHEAT_DOWNLOAD": "0",  # the demo is offline; DEMOUSDT exists nowhere else anyway
    }
    try:
        settings = load_settings(environment)
    except SettingsError as error:
        raise UsageError(str(error)) from None

    _write_demo_data(settings.data_dir, start, days, seed)
    command = [
        "dg",
        "launch",
        "--job",
        DAILY_JOB_NAME,
        "--partition-range",
        f"{start.isoformat()}...{end.isoformat()}",
        "-m",
        DEFINITIONS_MODULE,
        # The console logger at INFO: steps, checks and progress lines, without Dagster's
        # per-event DEBUG lines (hundreds for a month); the in-process executor.
        "--config-json",
        json.dumps(DEMO_RUN_CONFIG),
    ]
    home = os.environ.get("DAGSTER_HOME")
    where = f"recorded in DAGSTER_HOME={home}" if home else "on a temporary Dagster instance"
    print(f"\nRunning the whole pipeline for {DEMO_SYMBOL} in one Dagster run ({where}):")
    shown = shlex.join(command)
    print(f"  LIQHEAT_SYMBOLS={DEMO_SYMBOL} LIQHEAT_START_DATE={start} {shown}", flush=True)
    dg = Path(sys.executable).with_name("dg")
    status = subprocess.run([str(dg), *command[1:]], env=environment, check=False).returncode
    if status != 0:
        print(
            f"liqheat demo: the Dagster run failed (exit status {status}); see its output above. "
            f"Partitions that failed keep their previous rows in {settings.db_path}.",
            file=sys.stderr,
        )
        return status

    print(f"\nDuckDB file: {settings.db_path.resolve()}")
    for line in _summary_lines(settings.db_path):
        print(f"  {line}")
    page = settings.db_path.parent / "heatmaps" / DEMO_SYMBOL / "latest.html"
    print(f"Heatmap page (synthetic data): {page.resolve()}")
    print(
        "Browse and query it: `liqheat serve` (`make serve` in a checkout), then "
        f"http://127.0.0.1:8000/heatmap?symbol={DEMO_SYMBOL}"
    )
    return 0


def _summary_lines(db_path: Path) -> list[str]:
    lines = []
    with warehouse.connect(db_path, read_only=True) as conn:
        present = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM duckdb_tables() UNION ALL "
                "SELECT view_name FROM duckdb_views()"
            ).fetchall()
        }
        for table, time_column in SUMMARY_RELATIONS.items():
            if table not in present:
                lines.append(f"{table}: not present")
                continue
            rows, first, last = conn.execute(
                f"SELECT count(*), min({time_column}), max({time_column}) "
                f"FROM {table} WHERE symbol = ?",
                [DEMO_SYMBOL],
            ).fetchone()
            span = f", {first:%Y-%m-%d %H:%M} … {last:%Y-%m-%d %H:%M}" if rows else ""
            lines.append(f"{table}: {rows:,} rows for {DEMO_SYMBOL}{span}")
    return lines


# --- serve -------------------------------------------------------------------------------------


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine)"
    )
    parser.add_argument(
        "--port", type=_int_at_least(1), default=8000, help="TCP port (default 8000)"
    )


def _serve(arguments: argparse.Namespace) -> int:
    # Imported here: the web stack (FastAPI, plotly, matplotlib) would slow every other command.
    from liqheat_pipeline.api.server import is_loopback, serve

    if arguments.port > 65535:
        raise UsageError(f"--port {arguments.port}: must be at most 65535")
    if not is_loopback(arguments.host):
        print(
            f"warning: --host {arguments.host} exposes the API beyond this machine, and it has "
            "no authentication: anyone who can reach the port reads the whole database",
            file=sys.stderr,
            flush=True,
        )
    try:
        settings = load_settings()
    except SettingsError as error:
        raise UsageError(str(error)) from None
    serve(settings.db_path, arguments.host, arguments.port)
    return 0


# --- evaluate ----------------------------------------------------------------------------------


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbol", default="BTCUSDT", help="symbol to score (default BTCUSDT)")
    parser.add_argument(
        "--history-start",
        type=_iso_date,
        help="first day the engine runs from, empty (default: $LIQHEAT_START_DATE)",
    )
    parser.add_argument(
        "--start", type=_iso_date, required=True, help="first day of the scored buckets"
    )
    parser.add_argument(
        "--end", type=_iso_date, required=True, help="last day of the scored buckets (included)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        help='JSON file of model options, or {"configurations": {name: options}} (repeatable)',
    )
    parser.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="OPTION=V1,V2",
        help="cross every configuration with these values of one option (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write every metric row to this file")


def _evaluate(arguments: argparse.Namespace) -> int:
    # Imported here: the engine and pandas are not needed by the other commands' start-up.
    from liqheat_pipeline.lib import evaluation
    from liqheat_pipeline.lib.archive.readers import ArchiveFormatError

    try:
        settings = load_settings()
        window = evaluation.ScoringPeriod(
            arguments.history_start or settings.start_date,
            arguments.start,
            arguments.end + timedelta(days=1),
        )
        configs = evaluation.configurations(arguments.config, arguments.vary)
        market = evaluation.load_market(
            settings.data_dir, arguments.symbol, window.days, settings.plausibility
        )
        realized = evaluation.load_realized(
            settings.liquidations_dir, settings.data_dir, arguments.symbol, window
        )
    except (SettingsError, evaluation.EvaluationError, ArchiveFormatError) as error:
        raise UsageError(str(error)) from None
    rows = evaluation.evaluate(arguments.symbol, market, realized, configs, window)
    table = evaluation.summary(rows)
    print(
        f"{arguments.symbol}: {len(configs)} configuration(s), engine from {window.history_start}, "
        f"scored {window.start}…{arguments.end}, {realized.frame['scope'].iloc[0]}"
    )
    print(f"criterion: {evaluation.CRITERION}")
    print(evaluation.text_table(table))
    if arguments.json:
        arguments.json.write_text(
            json.dumps(
                {
                    "criterion": evaluation.CRITERION,
                    "summary": json.loads(
                        table.reset_index().to_json(orient="records", double_precision=15)
                    ),
                    "rows": json.loads(
                        rows.drop(columns="computed_at").to_json(
                            orient="records", date_format="iso", double_precision=15
                        )
                    ),
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        print(f"wrote {arguments.json}")
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {
    "demo-data": Subcommand(
        help=f"write the seeded SYNTHETIC {DEMO_SYMBOL} market in the Binance archive layout",
        add_arguments=_demo_data_arguments,
        run=_demo_data,
    ),
    "demo": Subcommand(
        help=(
            f"offline end to end: write the {DEMO_SYMBOL} archive into $LIQHEAT_DATA_DIR, then "
            "materialize every asset for the range in one Dagster run into $LIQHEAT_DB"
        ),
        add_arguments=_add_demo_range_arguments,
        run=_demo,
    ),
    "evaluate": Subcommand(
        help=(
            "run the engine in memory for model configurations and score them against realized "
            "liquidations (writes nothing to the warehouse)"
        ),
        add_arguments=_evaluate_arguments,
        run=_evaluate,
    ),
    "serve": Subcommand(
        help="serve the read-only HTTP API and heatmap page over $LIQHEAT_DB (uvicorn)",
        add_arguments=_serve_arguments,
        run=_serve,
    ),
}


if __name__ == "__main__":
    sys.exit(main())
