"""Validation against observed liquidations: realized_liquidations per symbol, and its checks."""

from __future__ import annotations

import dagster as dg

from liqheat_pipeline.defs.validation.assets import build_realized_asset, build_realized_check
from liqheat_pipeline.partitions import daily_partitions
from liqheat_pipeline.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    partitions = daily_partitions(settings)
    return dg.Definitions(
        assets=[build_realized_asset(settings, symbol, partitions) for symbol in settings.symbols],
        asset_checks=[build_realized_check(symbol, partitions) for symbol in settings.symbols],
    )
