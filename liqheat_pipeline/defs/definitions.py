"""What every run shares: the database resource and the executor."""

import dagster as dg

from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.project import load_project


@dg.definitions
def defs() -> dg.Definitions:
    project = load_project()
    return dg.Definitions(
        resources={
            "database": LiqheatDatabase(
                path=str(project.settings.db_path),
                memory_limit_mb=project.settings.duckdb_memory_mb,
            )
        },
        # DuckDB has a single writer, and per-step processes would cost seconds of imports each:
        # run every step of a run in one process, in dependency order.
        executor=dg.in_process_executor,
    )
