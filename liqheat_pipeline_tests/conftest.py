"""Shared fixtures: the real Binance sample beside the checkout, temporary DuckDB files."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from liqheat_pipeline_tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_BINANCE = REPO_ROOT.parent / "shared" / "data" / "binance"
SHARED_LIQUIDATIONS = REPO_ROOT.parent / "shared" / "data" / "liquidations"
REAL_COINGLASS_FILE = (
    SHARED_LIQUIDATIONS / "coinglass" / "BTC" / "BTC-aggregated-1h-2025-11-23_2025-12-31.csv"
)
REAL_SYMBOLS = ("BTCUSDT", "ETHUSDT")
REAL_FIRST_DAY = "2025-12-01"
REAL_LAST_DAY = "2025-12-30"


@pytest.fixture(scope="session")
def real_binance_dir() -> Path:
    """Root of the real 30-day sample; skips when absent, except under CI where that fails."""
    _real_sample(
        (SHARED_BINANCE / "futures" / "um" / "daily").is_dir(),
        f"real Binance sample not found at {SHARED_BINANCE}",
    )
    return SHARED_BINANCE


def _real_sample(present: bool, message: str) -> None:
    """Skip a test whose real sample is absent, except under CI where that fails."""
    if not present:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true requires it)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def real_liquidations_dir() -> Path:
    """Root of the real realized-liquidations sample (CoinGlass hourly BTC)."""
    _real_sample(
        REAL_COINGLASS_FILE.is_file(), f"real liquidation sample not found at {REAL_COINGLASS_FILE}"
    )
    return SHARED_LIQUIDATIONS


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "liqheat.duckdb"


@pytest.fixture(scope="module")
def instance():
    """A temporary Dagster instance shared by the runs of one test module."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true requires the browser test to run")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
