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
        executor=run_executor(len(project.symbols)),
    )


def run_executor(symbol_count: int) -> dg.ExecutorDefinition:
    """Dagster's ``multi_or_in_process_executor``: a run's config chooses ``multiprocess``
    (each step in a process of its own, at most ``max_concurrent`` at once, by default as many
    as cores) or ``in_process`` (every step in the run's process, in dependency order).

    Symbols are independent chains, so several symbols default to multiprocess: their steps run
    in parallel (the model writes a chunk per transaction and the checks and pages hold the
    file per day, so the single DuckDB writer is shared between them). One symbol defaults to
    in_process: its steps form one chain, which parallel processes cannot shorten, and each
    step process would cost seconds of imports.
    """
    if symbol_count > 1:
        return dg.multi_or_in_process_executor
    selector = dg.multi_or_in_process_executor.config_schema.as_field().config_type
    return dg.multi_or_in_process_executor.configured(
        lambda config: config,
        name="multi_or_in_process_executor",
        config_schema=dg.Field(selector, default_value={"in_process": {}}),
    )
