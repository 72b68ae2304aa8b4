"""What the Dagster definitions are built from, computed once per process and settings: the
settings, the daily partitions, the model configuration and one spec per symbol."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import dagster as dg

from liqheat_pipeline.lib.archive.layout import MARK_PRICE_KLINES, has_dataset
from liqheat_pipeline.lib.archive.mirror import last_mirrored_day
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.settings import Settings, load_settings

CANDLE_INTERVAL = "5m"
# Who answers for the assets (Dagster owner format); shown and filterable in the catalog.
OWNERS = ["team:liqheat"]


@dataclass(frozen=True)
class SymbolSpec:
    """One symbol's place in the definitions: its group, asset keys and optional feeds."""

    symbol: str
    # Mark-price candles are a feed only where the mirror has that folder (decided at load).
    with_mark_price: bool

    @property
    def group(self) -> str:
        return self.symbol.lower()

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([self.group, name])

    def tags(self, layer: str) -> dict[str, str]:
        """Catalog tags: the pipeline layer (raw, model, validation, page) and the symbol."""
        return {"layer": layer, "symbol": self.symbol}


@dataclass(frozen=True)
class Project:
    settings: Settings
    partitions: dg.DailyPartitionsDefinition
    model_config: ModelConfig
    symbols: tuple[SymbolSpec, ...]


def load_project() -> Project:
    """The project for the current ``LIQHEAT_*`` environment, built once per process and
    settings: every domain's definitions of one load share it (one mirror probe per symbol)."""
    return _loaded(load_settings())


def build_project(settings: Settings) -> Project:
    """The project for ``settings``, probing the mirror now."""
    return Project(
        settings=settings,
        partitions=daily_partitions(settings),
        model_config=load_model_config(settings),
        symbols=tuple(
            SymbolSpec(
                symbol,
                with_mark_price=has_dataset(
                    settings.data_dir, MARK_PRICE_KLINES, symbol, CANDLE_INTERVAL
                ),
            )
            for symbol in settings.symbols
        ),
    )


_loaded = cache(build_project)


def load_model_config(settings: Settings) -> ModelConfig:
    """The defaults, or LIQHEAT_MODEL_CONFIG's JSON (validated now: load fails on a bad field)."""
    if settings.model_config_path is None:
        return ModelConfig()
    return ModelConfig.from_json_file(settings.model_config_path)


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Daily UTC partitions from ``LIQHEAT_START_DATE`` to the last day there is data for."""
    last = last_partition_day(settings)
    return dg.DailyPartitionsDefinition(
        start_date=settings.start_date.isoformat(),
        end_date=None if last is None else (last + timedelta(days=1)).isoformat(),
        timezone="UTC",
    )


def last_partition_day(settings: Settings) -> date | None:
    """``LIQHEAT_END_DATE``; else, offline, the newest day the mirror has candles for (so the UI
    offers only days that can be computed); else None: up to yesterday, as the archive grows."""
    if settings.end_date is not None:
        return settings.end_date
    if settings.download:
        return None
    last = last_mirrored_day(settings.data_dir, settings.symbols, CANDLE_INTERVAL)
    return None if last is None else max(last, settings.start_date)
