"""A partition-range backfill launched as the UI does, through the real webserver and daemon.

One ``dagster dev`` session over a 4-day synthetic DEMOUSDT archive: the demo group's assets are
backfilled for days 1-3 (``launchPartitionBackfill``, the Materialize dialog's mutation), then
for day 4 alone; each backfill must target exactly the chosen days, complete, write exactly
those days and record a passed evaluation of every check for each of them. Finally the five
model assets alone (one non-subsettable multi-asset) must be accepted as a backfill too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL, write_demo_archive
from liqheat_pipeline_tests.helpers.dagster_dev import (
    AssetPath,
    DagsterDev,
    running_dagster_dev,
    write_dagster_home,
)
from liqheat_pipeline_tests.helpers.pipeline_runs import MODEL_ASSETS, subprocess_env

DEMO_START = date(2025, 12, 1)
DEMO_DAYS = 4
DAYS = [(DEMO_START + timedelta(days=index)).isoformat() for index in range(DEMO_DAYS)]
RANGE_DAYS, NEXT_DAY = DAYS[:3], DAYS[3]
GROUP = DEMO_SYMBOL.lower()
# Every asset of the demo group (the demo archive has no mark-price folder).
GROUP_ASSETS = {
    (GROUP, name)
    for name in (
        "candles",
        "open_interest",
        *MODEL_ASSETS,
        "realized_liquidations",
        "model_skill",
        "heatmap_page",
    )
}
MODEL_KEYS = [(GROUP, name) for name in MODEL_ASSETS]
# The raw and model assets: each has checks, which every backfilled day must pass.
CHECKED_ASSETS = {(GROUP, "candles"), (GROUP, "open_interest"), *MODEL_KEYS}
# Tables whose rows are counted per day (table -> its time column).
DAY_TABLES = {"candles": "open_time", "candle_ledger": "ts", "heatmap_snapshots": "ts"}


@dataclass(frozen=True)
class DemoDev:
    dev: DagsterDev
    db_path: Path

    @property
    def pages_dir(self) -> Path:
        return self.db_path.parent / "heatmaps" / DEMO_SYMBOL


@dataclass(frozen=True)
class Targets:
    """What a backfill targets, read just after its launch."""

    # Per selected asset: the targeted partitions as {ranges, partitionKeys}.
    partitions: dict[AssetPath, dict | None]
    # Per asset the backfill lists: how many partitions it targets.
    counts: dict[AssetPath, int]


@dataclass(frozen=True)
class FinishedBackfill:
    """A backfill as launched, what it targeted at launch, and the storage once it finished."""

    backfill_id: str
    days: list[str]
    targets: Targets
    status: str
    runs: list[dict]
    stored_days: dict[str, list[str]]
    pages: list[str]

    @property
    def run_ids(self) -> set[str]:
        return {run["runId"] for run in self.runs}


@pytest.fixture(scope="module")
def demo_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDev]:
    """``dagster dev`` over a fresh 4-day demo archive, DuckDB file and Dagster home."""
    root = tmp_path_factory.mktemp("ui_backfill")
    write_demo_archive(root / "binance", DEMO_START, DEMO_DAYS)
    (root / "liquidations").mkdir()
    db_path = root / "liqheat.duckdb"
    env = subprocess_env(
        DAGSTER_HOME=str(write_dagster_home(root / "dagster_home")),
        LIQHEAT_DATA_DIR=str(root / "binance"),
        LIQHEAT_DB=str(db_path),
        LIQHEAT_SYMBOLS=DEMO_SYMBOL,
        LIQHEAT_START_DATE=DEMO_START.isoformat(),
        LIQHEAT_LIQUIDATIONS_DIR=str(root / "liquidations"),
    )
    with running_dagster_dev(env, root / "dagster_dev.log") as dev:
        yield DemoDev(dev, db_path)


@pytest.fixture(scope="module")
def group_checks(demo_dev: DemoDev) -> dict[AssetPath, list[str]]:
    """The demo group as the asset graph lists it: asset -> its check names."""
    checks = demo_dev.dev.group_checks(GROUP)
    assert set(checks) == GROUP_ASSETS
    assert all(checks[asset] for asset in CHECKED_ASSETS), checks
    return checks


@pytest.fixture(scope="module")
def range_backfill(demo_dev: DemoDev, group_checks: dict) -> FinishedBackfill:
    return _backfill(demo_dev, RANGE_DAYS, sorted(group_checks))


@pytest.fixture(scope="module")
def next_day_backfill(
    demo_dev: DemoDev, group_checks: dict, range_backfill: FinishedBackfill
) -> FinishedBackfill:
    return _backfill(demo_dev, [NEXT_DAY], sorted(group_checks))


def _backfill(demo_dev: DemoDev, days: list[str], assets: Sequence[AssetPath]) -> FinishedBackfill:
    """Launch ``assets`` for ``days`` as the UI does, note the targets, wait for the end."""
    dev = demo_dev.dev
    backfill_id = dev.launch_backfill(days, assets)
    targets = _targets(dev, backfill_id, assets)
    finished = dev.wait_for_backfill(backfill_id)
    return FinishedBackfill(
        backfill_id=backfill_id,
        days=days,
        targets=targets,
        status=finished["status"],
        runs=finished["runs"],
        stored_days=_stored_days(demo_dev.db_path),
        pages=sorted(page.stem for page in demo_dev.pages_dir.glob("2*.html")),
    )


def _targets(dev: DagsterDev, backfill_id: str, assets: Sequence[AssetPath]) -> Targets:
    statuses = dev.backfill(backfill_id)["assetBackfillData"]["assetBackfillStatuses"]
    return Targets(
        partitions={asset: dev.targeted_partitions(backfill_id, asset) for asset in assets},
        counts={tuple(s["assetKey"]["path"]): s["numPartitionsTargeted"] for s in statuses},
    )


def _stored_days(db_path: Path) -> dict[str, list[str]]:
    """The days each counted table (and model_runs) has DEMOUSDT rows for."""
    queries = {
        table: f"SELECT DISTINCT CAST({column} AS DATE) FROM {table} WHERE symbol = ? ORDER BY 1"
        for table, column in DAY_TABLES.items()
    }
    queries["model_runs"] = "SELECT day FROM model_runs WHERE symbol = ? ORDER BY 1"
    with warehouse.connect(db_path, read_only=True) as conn:
        return {
            table: [day.isoformat() for (day,) in conn.execute(sql, [DEMO_SYMBOL]).fetchall()]
            for table, sql in queries.items()
        }


def _assert_targets_exactly(targets: Targets, days: list[str], assets: set[AssetPath]) -> None:
    """The backfill targets ``assets`` and no other, each for exactly ``days``."""
    first, last = days[0], days[-1]
    assert set(targets.counts) == assets, "the backfill targets other assets"
    assert targets.counts == dict.fromkeys(assets, len(days))
    for asset in assets:
        assert targets.partitions[asset] == {
            "ranges": [{"start": first, "end": last}],
            "partitionKeys": None,
        }, f"{'/'.join(asset)} is targeted beyond {first}…{last}"


def _assert_succeeded(backfill: FinishedBackfill, demo_dev: DemoDev) -> None:
    assert backfill.status == "COMPLETED_SUCCESS", (
        f"backfill {backfill.backfill_id} ended {backfill.status}; runs {backfill.runs}\n"
        + demo_dev.dev.log_tail()
    )
    assert backfill.runs, "the backfill launched no run"
    for run in backfill.runs:
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assert run["status"] == "SUCCESS", f"run {run['runId']} ended {run['status']}"
        assert tags["dagster/backfill"] == backfill.backfill_id
        # One run per step over the whole range (single-run backfill policy).
        assert (
            tags["dagster/asset_partition_range_start"],
            tags["dagster/asset_partition_range_end"],
        ) == (backfill.days[0], backfill.days[-1])


def _assert_checks_passed_per_day(
    dev: DagsterDev, group_checks: dict[AssetPath, list[str]], backfill: FinishedBackfill
) -> None:
    """Every check of the group: one passed evaluation per backfilled day, none other."""
    expected = [(day, "SUCCEEDED", True) for day in backfill.days]
    for asset, names in group_checks.items():
        for name in names:
            recorded = sorted(
                (execution["partition"], execution["status"], _passed(execution["evaluation"]))
                for execution in dev.check_executions(asset, name)
                if execution["runId"] in backfill.run_ids
            )
            assert recorded == expected, f"{'/'.join(asset)}:{name}"


def _passed(evaluation: dict | None) -> bool | None:
    """An execution's result: None while it has no evaluation (planned, skipped)."""
    return None if evaluation is None else evaluation["success"]


# --- days 1-3 of every asset of the group --------------------------------------------------


def test_range_backfill_targets_exactly_the_chosen_days(range_backfill: FinishedBackfill):
    _assert_targets_exactly(range_backfill.targets, RANGE_DAYS, GROUP_ASSETS)


def test_range_backfill_completes_with_successful_runs(
    range_backfill: FinishedBackfill, demo_dev: DemoDev
):
    _assert_succeeded(range_backfill, demo_dev)


def test_range_backfill_writes_exactly_the_chosen_days(range_backfill: FinishedBackfill):
    assert range_backfill.stored_days == dict.fromkeys((*DAY_TABLES, "model_runs"), RANGE_DAYS)
    assert range_backfill.pages == RANGE_DAYS


def test_range_backfill_passes_every_check_on_every_day(
    demo_dev: DemoDev, group_checks: dict, range_backfill: FinishedBackfill
):
    _assert_checks_passed_per_day(demo_dev.dev, group_checks, range_backfill)


# --- then day 4 alone -----------------------------------------------------------------------


def test_next_day_backfill_targets_only_that_day(next_day_backfill: FinishedBackfill):
    _assert_targets_exactly(next_day_backfill.targets, [NEXT_DAY], GROUP_ASSETS)


def test_next_day_backfill_continues_the_model_chain(
    next_day_backfill: FinishedBackfill, demo_dev: DemoDev
):
    _assert_succeeded(next_day_backfill, demo_dev)
    assert next_day_backfill.stored_days == dict.fromkeys((*DAY_TABLES, "model_runs"), DAYS)
    assert next_day_backfill.pages == DAYS
    with warehouse.connect(demo_dev.db_path, read_only=True) as conn:
        # Levels from earlier days still active at the end of day 4: each must come from the
        # stored end state of day 3 (a restart from empty would have none).
        carried, from_day_3 = conn.execute(
            """
            SELECT count(*), count(previous.level_id)
            FROM model_state s
            JOIN level_openings o USING (symbol, level_id)
            LEFT JOIN model_state previous
              ON previous.symbol = s.symbol AND previous.day = s.day - 1
             AND previous.level_id = s.level_id
            WHERE s.symbol = ? AND s.day = ? AND o.created_at < s.day
            """,
            [DEMO_SYMBOL, NEXT_DAY],
        ).fetchone()
        hashes = conn.execute(
            "SELECT DISTINCT config_hash FROM model_runs WHERE symbol = ?", [DEMO_SYMBOL]
        ).fetchall()
    assert carried > 0
    assert from_day_3 == carried
    assert len(hashes) == 1, "the four days mix model configurations"


def test_next_day_backfill_passes_every_check(
    demo_dev: DemoDev, group_checks: dict, next_day_backfill: FinishedBackfill
):
    _assert_checks_passed_per_day(demo_dev.dev, group_checks, next_day_backfill)


# --- the model multi-asset alone --------------------------------------------------------------


def test_model_only_backfill_is_accepted_for_exactly_the_chosen_days(
    demo_dev: DemoDev, next_day_backfill: FinishedBackfill
):
    """Before each output depended on its own previous day, this selection was refused (500:
    "Targeted subset must match between every key in a non-subsettable multi-asset")."""
    dev = demo_dev.dev
    backfill_id = dev.launch_backfill(RANGE_DAYS, MODEL_KEYS)
    targets = _targets(dev, backfill_id, MODEL_KEYS)
    # Only the acceptance and the targets matter here; cancelled to keep the session short.
    dev.cancel_backfill(backfill_id)
    _assert_targets_exactly(targets, RANGE_DAYS, set(MODEL_KEYS))
