"""Validation against observed liquidations: realized_liquidations (and its check) and
model_skill per symbol."""

import dagster as dg

from liqheat_pipeline.defs.validation.assets import build_realized_asset, build_realized_check
from liqheat_pipeline.defs.validation.skill import build_model_skill_asset
from liqheat_pipeline.project import load_project


@dg.definitions
def defs() -> dg.Definitions:
    project = load_project()
    return dg.Definitions(
        assets=[
            asset
            for spec in project.symbols
            for asset in (
                build_realized_asset(spec, project),
                build_model_skill_asset(spec, project),
            )
        ],
        asset_checks=[build_realized_check(spec, project) for spec in project.symbols],
    )
