"""Real pipeline output for the read-side tests: the synthetic DEMOUSDT market, every asset.

Built once per test session (the API, page and browser tests share it) by running the real
Dagster definitions: demo archive -> ingest -> model -> heatmap pages, in one range run.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from liqheat_pipeline.lib.demo_market import DEMO_SYMBOL, write_demo_archive
from liqheat_pipeline_tests.pipeline_runs import (
    MODEL_ASSETS,
    RAW_ASSETS,
    failure_messages,
    load_definitions,
    materialize,
    pipeline_env,
)

DEMO_START = date(2025, 12, 1)
DEMO_DAYS = 4
DEMO_LAST = DEMO_START + timedelta(days=DEMO_DAYS - 1)


def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DuckDB file of a DEMO_DAYS-day demo run (its heatmap pages lie beside it)."""
    root = tmp_path_factory.getbasetemp() / "demo_pipeline"
    db_path = root / "liqheat.duckdb"
    built = root / "built"
    if built.exists():
        return db_path
    root.mkdir()
    write_demo_archive(root / "binance", DEMO_START, DEMO_DAYS)
    env = pipeline_env(root / "binance", db_path, symbols=DEMO_SYMBOL)
    definitions = load_definitions(env)
    with dg.instance_for_test() as instance:
        result = materialize(
            definitions,
            instance,
            DEMO_START.isoformat(),
            DEMO_LAST.isoformat(),
            assets=(*RAW_ASSETS, *MODEL_ASSETS, "heatmap_page"),
            raise_on_error=False,
        )
    assert result.success, failure_messages(result)
    built.touch()
    return db_path
