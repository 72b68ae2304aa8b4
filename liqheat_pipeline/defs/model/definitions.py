"""Model assets (levels, ledger, heatmap snapshots, carried state) and their checks per symbol."""

import dagster as dg

from liqheat_pipeline.defs.model.assets import build_model_asset
from liqheat_pipeline.defs.model.checks import build_model_checks
from liqheat_pipeline.project import load_project


@dg.definitions
def defs() -> dg.Definitions:
    project = load_project()
    return dg.Definitions(
        assets=[build_model_asset(spec, project) for spec in project.symbols],
        asset_checks=[build_model_checks(spec, project) for spec in project.symbols],
    )
