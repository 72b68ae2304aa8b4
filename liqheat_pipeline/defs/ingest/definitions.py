"""Raw-data assets and their checks per symbol."""

import dagster as dg

from liqheat_pipeline.defs.ingest.assets import build_ingest_assets
from liqheat_pipeline.defs.ingest.checks import build_ingest_checks
from liqheat_pipeline.project import load_project


@dg.definitions
def defs() -> dg.Definitions:
    project = load_project()
    return dg.Definitions(
        assets=[asset for spec in project.symbols for asset in build_ingest_assets(spec, project)],
        asset_checks=[build_ingest_checks(spec, project) for spec in project.symbols],
    )
