"""Helpers for tests that run the real Dagster definitions on the real sample into temp DuckDBs."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd

from liqheat_pipeline import project
from liqheat_pipeline.definitions import defs
from liqheat_pipeline.defs.automation.schedules import DAILY_JOB_NAME
from liqheat_pipeline.defs.ingest.assets import build_ingest_assets
from liqheat_pipeline.defs.ingest.checks import build_ingest_checks
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.model.store import OUTPUT_TIME_COLUMNS
from liqheat_pipeline.settings import Settings

RAW_ASSETS = ("candles", "open_interest", "mark_price_candles")
MODEL_ASSETS = (
    "model_state",
    "level_openings",
    "level_consumptions",
    "candle_ledger",
    "heatmap_snapshots",
)
# Everything the model writes per symbol and day (model_runs without its wall-clock column); the
# view model_state is a function of these rows.
MODEL_TABLES = (*OUTPUT_TIME_COLUMNS, "model_runs")


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Temporarily set LIQHEAT_* variables (the definitions read them when built)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pipeline_env(data_dir: Path, db_path: Path, symbols: str = "BTCUSDT", **extra: str) -> dict:
    return {
        "LIQHEAT_DATA_DIR": str(data_dir),
        "LIQHEAT_DB": str(db_path),
        "LIQHEAT_SYMBOLS": symbols,
        "LIQHEAT_START_DATE": "2025-12-01",
        "LIQHEAT_MODEL_CONFIG": "",
        **extra,
    }


def subprocess_env(**values: str) -> dict[str, str]:
    """This process's environment without LIQHEAT_* settings, plus ``values``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LIQHEAT_")}
    return {**inherited, **values}


def load_definitions(env: Mapping[str, str]) -> dg.Definitions:
    # The definitions share one project per settings and process; tests change the files under
    # the same settings (e.g. add a mark-price folder), so each load probes afresh.
    project._loaded.cache_clear()
    with environment(env):
        return defs()


def ingest_definitions(settings: Settings) -> list:
    """The ingest assets and checks of every symbol of ``settings`` (for ``dg.materialize``)."""
    built = project.build_project(settings)
    return [
        *(asset for spec in built.symbols for asset in build_ingest_assets(spec, built)),
        *(build_ingest_checks(spec, built) for spec in built.symbols),
    ]


def _selected_keys(definitions: dg.Definitions, names: Iterable[str]) -> set[dg.AssetKey]:
    wanted = set(names)
    graph = definitions.resolve_asset_graph()
    return {
        key
        for key in graph.get_all_asset_keys()
        if key.path[-1] in wanted and not graph.get(key).is_external
    }


def _partitions(first: str, last: str | None) -> dict[str, object]:
    """execute_in_process arguments for one partition or a single-run range."""
    if last is None or last == first:
        return {"partition_key": first}
    return {
        "tags": {
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        }
    }


def materialize(
    definitions: dg.Definitions,
    instance: dg.DagsterInstance,
    first: str,
    last: str | None = None,
    *,
    assets: Iterable[str] = (*RAW_ASSETS, *MODEL_ASSETS),
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Run the daily job's given assets (and their checks) for one day or a range in ONE run."""
    job = definitions.resolve_job_def(DAILY_JOB_NAME)
    return job.execute_in_process(
        instance=instance,
        asset_selection=sorted(_selected_keys(definitions, assets)),
        raise_on_error=raise_on_error,
        **_partitions(first, last),
    )


def run_checks_by_day(
    definitions: dg.Definitions, instance: dg.DagsterInstance, first: str, last: str | None = None
) -> dict[tuple[str, str], bool]:
    """Execute only the model asset checks over stored rows; (check name, day) -> passed."""
    graph = definitions.resolve_asset_graph()
    checks = {key for key in graph.asset_check_keys if key.asset_key.path[-1] in MODEL_ASSETS}
    job = definitions.resolve_job_def(DAILY_JOB_NAME).get_subset(
        asset_selection=set(), asset_check_selection=checks
    )
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, **_partitions(first, last)
    )
    passed: dict[tuple[str, str], bool] = {}
    for evaluation in result.get_asset_check_evaluations():
        key = (f"{evaluation.asset_key.path[-1]}:{evaluation.check_name}", evaluation.partition)
        assert key not in passed, f"two evaluations of {key}"
        passed[key] = evaluation.passed
    return passed


def run_checks_only(
    definitions: dg.Definitions, instance: dg.DagsterInstance, first: str, last: str | None = None
) -> dict[str, bool]:
    """Execute only the model asset checks over stored rows; check name -> passed every day."""
    passed: dict[str, bool] = {}
    for (name, _), day_passed in run_checks_by_day(definitions, instance, first, last).items():
        passed[name] = passed.get(name, True) and day_passed
    return passed


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's error text of a run, joined."""
    return "\n".join(
        str(event.step_failure_data.error.to_string())
        for event in result.all_events
        if event.is_step_failure
    )


def model_rows(db_path: Path, symbol: str = "BTCUSDT") -> dict[str, pd.DataFrame]:
    """Every model table's rows of ``symbol`` in a canonical order (computed_at left out)."""
    frames = {}
    with warehouse.connect(db_path, read_only=True) as conn:
        for table in MODEL_TABLES:
            exclude = " EXCLUDE (computed_at)" if table == "model_runs" else ""
            frames[table] = conn.execute(
                f"SELECT *{exclude} FROM {table} WHERE symbol = ? ORDER BY ALL", [symbol]
            ).fetchdf()
    return frames


def assert_same_rows(left: Mapping[str, pd.DataFrame], right: Mapping[str, pd.DataFrame]) -> None:
    assert left.keys() == right.keys()
    for table in left:
        pd.testing.assert_frame_equal(left[table], right[table], check_exact=True, obj=table)
