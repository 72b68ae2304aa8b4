"""The daily job over every asset and its schedule (yesterday's partition at 00:30 UTC)."""

from __future__ import annotations

import dagster as dg

from liqheat_pipeline.project import Project

DAILY_JOB_NAME = "daily_liqheat_job"


def build_daily_job(project: Project) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        DAILY_JOB_NAME,
        # Raw data, model and heatmap of every symbol, with their checks: one run per day,
        # steps in dependency order (in-process executor), so the day's raw data lands before
        # the model reads it.
        selection=dg.AssetSelection.all(),
        partitions_def=project.partitions,
        description="Every asset of every configured symbol for one UTC day.",
    )


def build_daily_schedule(
    job: dg.UnresolvedAssetJobDefinition, project: Project
) -> dg.ScheduleDefinition:
    return dg.build_schedule_from_partitioned_job(
        job,
        # A time-partitioned job's schedule runs in the partitions' time zone (UTC); each tick
        # requests the day that has just ended. It starts running by itself only when
        # downloading is enabled: otherwise new days appear only if files are added to the
        # local mirror by other means (start the schedule in the UI for that).
        hour_of_day=0,
        minute_of_hour=30,
        description=(
            "At 00:30 UTC, runs daily_liqheat_job for the UTC day that has just ended: fetches "
            "(LIQHEAT_DOWNLOAD=1) or reads that day's archive files, then the model, checks, "
            "skill and page of every symbol. Running by default only when downloading is on."
        ),
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if project.settings.download
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )
