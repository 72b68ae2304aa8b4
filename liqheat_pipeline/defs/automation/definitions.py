"""The daily job and its schedule."""

import dagster as dg

from liqheat_pipeline.defs.automation.schedules import build_daily_job, build_daily_schedule
from liqheat_pipeline.project import load_project


@dg.definitions
def defs() -> dg.Definitions:
    project = load_project()
    job = build_daily_job(project)
    return dg.Definitions(jobs=[job], schedules=[build_daily_schedule(job, project)])
