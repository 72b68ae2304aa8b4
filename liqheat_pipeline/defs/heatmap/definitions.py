"""The heatmap page per symbol."""

import dagster as dg

from liqheat_pipeline.defs.heatmap.assets import build_heatmap_page
from liqheat_pipeline.project import load_project


@dg.definitions
def defs() -> dg.Definitions:
    project = load_project()
    return dg.Definitions(
        assets=[
            build_heatmap_page(
                spec,
                project.partitions,
                retention_days=project.settings.page_retention_days,
            )
            for spec in project.symbols
        ]
    )
