"""Page retention: LIQHEAT_PAGE_RETENTION_DAYS and the heatmap page asset keeping only the
newest day pages, in real runs of the project's definitions over the DEMOUSDT pipeline output."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from liqheat_pipeline.defs.heatmap.assets import page_directory
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL
from liqheat_pipeline.lib.heatmap.page import PLOTLY_FILE
from liqheat_pipeline.settings import (
    DEFAULT_PAGE_RETENTION_DAYS,
    SettingsError,
    load_settings,
)
from liqheat_pipeline_tests.helpers.demo_pipeline import demo_database
from liqheat_pipeline_tests.helpers.pipeline_runs import (
    failure_messages,
    load_definitions,
    materialize,
    pipeline_env,
)

VARIABLE = "LIQHEAT_PAGE_RETENTION_DAYS"


def test_retention_setting_defaults_and_validates():
    assert load_settings({}).page_retention_days == DEFAULT_PAGE_RETENTION_DAYS == 30
    assert load_settings({VARIABLE: " 7 "}).page_retention_days == 7
    for raw in ("0", "-3", "2.5", "many"):
        with pytest.raises(SettingsError, match=f"{VARIABLE}={raw!r}: expected a whole number"):
            load_settings({VARIABLE: raw})


@pytest.fixture
def pages(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the demo run's database and pages, and its archive mirror."""
    source = demo_database(tmp_path_factory)
    database = Path(shutil.copy(source, tmp_path / "liqheat.duckdb"))
    shutil.copytree(page_directory(source, DEMO_SYMBOL), page_directory(database, DEMO_SYMBOL))
    return database, source.parent / "binance"


def _run(database: Path, mirror: Path, first: str, last: str, keep: str):
    env = pipeline_env(mirror, database, symbols=DEMO_SYMBOL, **{VARIABLE: keep})
    definitions = load_definitions(env)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(definitions, instance, first, last, assets=("heatmap_page",))
    assert result.success, failure_messages(result)
    logs = [entry.user_message for entry in instance.all_logs(result.run_id)]
    metadata = {
        event.partition: event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    return logs, metadata


def test_asset_keeps_the_newest_day_pages(pages):
    database, mirror = pages
    directory = page_directory(database, DEMO_SYMBOL)
    # An older day page from before (e.g. a longer history) and a file that is no day page.
    (directory / "2025-11-20.html").write_text("old page", "utf-8")
    (directory / "notes.html").write_text("mine", "utf-8")

    logs, metadata = _run(database, mirror, "2025-12-01", "2025-12-04", keep="2")
    assert sorted(path.name for path in directory.iterdir()) == [
        "2025-12-03.html",
        "2025-12-04.html",
        "latest.html",
        "latest.png",
        "notes.html",
        PLOTLY_FILE,
    ]
    last = metadata["2025-12-04"]
    assert last["pages_removed"].value == 3 and last["pages_kept"].value == 2
    assert "pages_removed" not in metadata["2025-12-03"]
    # Days the run would delete right after drawing them are not drawn at all.
    assert metadata["2025-12-02"]["page"].value == "not kept (the newest 2)"
    assert metadata["2025-12-03"]["page"].value == str(directory / "2025-12-03.html")
    message = f"{DEMO_SYMBOL}: removed 3 day page(s) beyond the newest 2 (2025-11-20 to 2025-12-02)"
    assert message in logs
    assert "up to 2025-12-05 00:00 UTC" in (directory / "latest.html").read_text("utf-8")

    # Re-drawing an old day: its page is written, then removed again as beyond the newest two;
    # latest.html stays on the newest day.
    logs, metadata = _run(database, mirror, "2025-12-01", "2025-12-01", keep="2")
    assert metadata["2025-12-01"]["pages_removed"].value == 1
    assert not (directory / "2025-12-01.html").exists()
    assert (directory / "2025-12-04.html").exists()
    assert "up to 2025-12-05 00:00 UTC" in (directory / "latest.html").read_text("utf-8")

    # The default keeps every one of the demo's days.
    logs, metadata = _run(database, mirror, "2025-12-01", "2025-12-04", keep="")
    assert metadata["2025-12-04"]["pages_removed"].value == 0
    assert len(list(directory.glob("2025-12-0?.html"))) == 4
    assert f"{DEMO_SYMBOL}: removed 0 day page(s) beyond the newest 30" in logs
