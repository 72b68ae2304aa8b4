"""Model assets (levels, ledger, heatmap snapshots, carried state) and their checks per symbol."""

from __future__ import annotations

import dagster as dg

from liqheat_pipeline.defs.ingest.assets import MARK_PRICE_CANDLES, symbol_feeds
from liqheat_pipeline.defs.model.assets import build_model_asset
from liqheat_pipeline.defs.model.checks import build_model_checks
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.partitions import daily_partitions
from liqheat_pipeline.settings import Settings, load_settings


def load_model_config(settings: Settings) -> ModelConfig:
    """The defaults, or LIQHEAT_MODEL_CONFIG's JSON (validated now: load fails on a bad field)."""
    if settings.model_config_path is None:
        return ModelConfig()
    return ModelConfig.from_json_file(settings.model_config_path)


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    config = load_model_config(settings)
    partitions = daily_partitions(settings)
    return dg.Definitions(
        assets=[
            build_model_asset(
                symbol,
                partitions,
                config,
                settings.start_date,
                # the same rule that decides whether the mark-price asset exists
                with_mark_price=MARK_PRICE_CANDLES in symbol_feeds(settings, symbol),
            )
            for symbol in settings.symbols
        ],
        asset_checks=[
            build_model_checks(symbol, partitions, settings.start_date)
            for symbol in settings.symbols
        ],
    )
