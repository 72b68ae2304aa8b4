"""Real pipeline output for the read-side tests: the synthetic DEMOUSDT market, every asset.

Built once per test session (the API, page and browser tests share it) by running the real
Dagster definitions: demo archive -> ingest -> model -> heatmap pages, in one range run.
The demo market has no observed liquidations, so hand-made ``realized_liquidations`` and
``model_skill`` rows (``OBSERVED_ROWS``, ``SKILL_ROWS``) are written first, for the pages and the
API to show.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL, write_demo_archive
from liqheat_pipeline_tests.helpers.pipeline_runs import (
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

OBSERVED_SCOPE = "DEMOUSDT hand-made test rows; no exchange"
OBSERVED_SOURCE = "demo_pipeline.py"
# Hourly buckets from 2025-12-02 00:00 to the end of the demo, without 2025-12-03 05:00 (a gap).
_OBSERVED_HOURS = [hour for hour in range(24, DEMO_DAYS * 24) if hour != 24 + 24 + 5]
OBSERVED_ROWS = pd.DataFrame(
    {
        "symbol": DEMO_SYMBOL,
        "bucket_start": [datetime(2025, 12, 1) + timedelta(hours=h) for h in _OBSERVED_HOURS],
        "bucket_minutes": 60,
        "long_usd": [1_000.0 * (1 + h % 5) + 0.25 * h for h in _OBSERVED_HOURS],
        "short_usd": [750.0 * (1 + h % 3) if h % 4 else 0.0 for h in _OBSERVED_HOURS],
        "source": OBSERVED_SOURCE,
        "scope": OBSERVED_SCOPE,
    }
)
# Two skill windows: the one ending with the demo (the latest) and the one a day earlier.
SKILL_WINDOWS = {
    datetime(2025, 12, 5): {"model": 0.42, "baseline_range": 0.51, "baseline_return": 0.3},
    datetime(2025, 12, 4): {"model": 0.12, "baseline_range": 0.22, "baseline_return": 0.05},
}
SKILL_ROWS = pd.DataFrame(
    [
        {
            "symbol": DEMO_SYMBOL,
            "window_start": datetime(2025, 12, 1),
            "window_end": window_end,
            "bucket_minutes": 60,
            "side": side,
            "predictor": predictor,
            "metric": "spearman",
            "value": score + offset,
            "n_buckets": 48 if window_end.day == 5 else 24,
            "config_hash": "handmade0hash",
            "computed_at": datetime(2025, 12, 6),
        }
        for window_end, scores in SKILL_WINDOWS.items()
        for side, offset in (("long", 0.0), ("short", -0.04), ("total", 0.02))
        for predictor, score in scores.items()
    ]
)


def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DuckDB file of a DEMO_DAYS-day demo run (its heatmap pages lie beside it)."""
    root = tmp_path_factory.getbasetemp() / "demo_pipeline"
    db_path = root / "liqheat.duckdb"
    built = root / "built"
    if built.exists():
        return db_path
    root.mkdir()
    _write_observations(db_path)
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


def _write_observations(db_path: Path) -> None:
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        for table, frame in (("realized_liquidations", OBSERVED_ROWS), ("model_skill", SKILL_ROWS)):
            conn.register("_rows", frame)
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
            conn.unregister("_rows")
