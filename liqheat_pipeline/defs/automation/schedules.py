"""The daily job over every asset and its schedule (yesterday's partition at 00:30 UTC)."""

from __future__ import annotations

import dagster as dg

from liqheat_pipeline.project import Project

DAILY_JOB_NAME = "daily_liqheat_job"
DAILY_SCHEDULE_NAME = f"{DAILY_JOB_NAME}_schedule"
# Run config choosing the in-process executor: every step in the run's own process, in
# dependency order. A step process of the (default) multiprocess executor costs seconds of
# imports, more than one day of a symbol's step computes; runs of long ranges gain from parallel
# symbols instead.
IN_PROCESS_EXECUTION = {"execution": {"config": {"in_process": {}}}}


def build_daily_job(project: Project) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        DAILY_JOB_NAME,
        # Raw data, model and heatmap of every symbol, with their checks, in dependency order,
        # so the day's raw data lands before the model reads it. The executor is chosen by the
        # run config (defs/definitions.py): symbols in parallel processes unless in_process.
        selection=dg.AssetSelection.all(),
        partitions_def=project.partitions,
        description="Every asset of every configured symbol for one UTC day.",
    )


def build_daily_schedule(
    job: dg.UnresolvedAssetJobDefinition, project: Project
) -> dg.ScheduleDefinition:
    partitions = project.partitions

    @dg.schedule(
        # The partitions' time zone (UTC): each tick requests the day that has just ended.
        cron_schedule="30 0 * * *",
        execution_timezone="UTC",
        job=job,
        name=DAILY_SCHEDULE_NAME,
        description=(
            "At 00:30 UTC, runs daily_liqheat_job for the UTC day that has just ended, in one "
            "process: fetches (LIQHEAT_DOWNLOAD=1) or reads that day's archive files, then the "
            "model, checks, skill and page of every symbol. Running by default only when "
            "downloading is on."
        ),
        # It starts running by itself only when downloading is enabled: otherwise new days
        # appear only if files are added to the local mirror by other means (start the schedule
        # in the UI for that).
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if project.settings.download
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        with dg.partition_loading_context(effective_dt=context.scheduled_execution_time):
            day = partitions.get_last_partition_key()
        if day is None:
            return dg.SkipReason("no day has ended since LIQHEAT_START_DATE")
        # One day of every symbol: in process (see IN_PROCESS_EXECUTION).
        return job.run_request_for_partition(
            partition_key=day, run_key=day, run_config=IN_PROCESS_EXECUTION
        )

    return daily_schedule
