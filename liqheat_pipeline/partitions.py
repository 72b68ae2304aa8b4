"""The daily UTC partitions shared by every asset."""

from __future__ import annotations

import dagster as dg

from liqheat_pipeline.settings import Settings


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """Daily UTC partitions from ``LIQHEAT_START_DATE`` to yesterday (the last complete day)."""
    return dg.DailyPartitionsDefinition(start_date=settings.start_date.isoformat(), timezone="UTC")
