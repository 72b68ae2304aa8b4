"""Validation against observed liquidations: realized_liquidations (and its check) and
model_skill per symbol."""

from __future__ import annotations

import dagster as dg

from liqheat_pipeline.defs.validation.assets import build_realized_asset, build_realized_check
from liqheat_pipeline.defs.validation.skill import build_model_skill_asset
from liqheat_pipeline.partitions import daily_partitions
from liqheat_pipeline.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    partitions = daily_partitions(settings)
    return dg.Definitions(
        assets=[
            *(build_realized_asset(settings, symbol, partitions) for symbol in settings.symbols),
            *(
                build_model_skill_asset(symbol, partitions, settings.start_date)
                for symbol in settings.symbols
            ),
        ],
        asset_checks=[build_realized_check(symbol, partitions) for symbol in settings.symbols],
    )
