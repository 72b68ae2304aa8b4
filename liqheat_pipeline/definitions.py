"""Dagster entry point: loads every domain folder under ``defs/``."""

from pathlib import Path

import dagster as dg

from liqheat_pipeline.project import Project, load_project

# The definitions of the last project loaded. Dagster calls the entry point again each time it
# reconstructs the job in a process (six times in one in-process run of every asset): building
# them once per project (per settings, see project.py) saves seconds per run.
_built: tuple[Project, dg.Definitions] | None = None


@dg.definitions
def defs() -> dg.Definitions:
    global _built
    project = load_project()
    if _built is None or _built[0] is not project:
        _built = (project, dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
    return _built[1]
