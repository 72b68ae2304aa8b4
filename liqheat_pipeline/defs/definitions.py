"""What every run shares: the database resource and the executor."""

import pkgutil

import dagster as dg

from liqheat_pipeline import defs as defs_folder
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
    file per day, so the single DuckDB writer is shared between them), each forked from a
    server that imported the definitions' modules once (``MULTIPROCESS_EXECUTION``). One symbol
    defaults to in_process: its steps form one chain, which parallel processes cannot shorten.
    """
    selector = dg.multi_or_in_process_executor.config_schema.as_field().config_type
    default = MULTIPROCESS_EXECUTION if symbol_count > 1 else {"in_process": {}}
    return dg.multi_or_in_process_executor.configured(
        lambda config: config,
        name="multi_or_in_process_executor",
        config_schema=dg.Field(selector, default_value=default),
    )


# Spawned, a step process spends seconds importing pandas, DuckDB and the definitions (measured
# 11 s a step on the loaded 2 cores; 4 symbols x 10 days took 550 s, in one process 260 s);
# forked from a server that imported them once, 3.9 s (235 s).
MULTIPROCESS_EXECUTION = {
    "multiprocess": {
        "start_method": {
            "forkserver": {
                "preload_modules": [
                    f"{module.name}.definitions"
                    for module in pkgutil.iter_modules(
                        defs_folder.__path__, f"{defs_folder.__name__}."
                    )
                    if module.ispkg
                ]
            }
        }
    }
}
