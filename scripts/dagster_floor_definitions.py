"""The smallest daily job Dagster can run: one daily-partitioned asset that only logs its day.

``scripts/bench_year.py`` times ``dagster asset materialize`` of one partition of it in a fresh
process, beside the pipeline's incremental day: what any one-day Dagster run costs on the
machine (interpreter, Dagster's imports, the instance, the run and its events) before a step
does work.
"""

import dagster as dg


# Early enough for any day bench_year.py's --start can ask for.
@dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2000-01-01"))
def logged_day(context: dg.AssetExecutionContext) -> None:
    context.log.info(f"day {context.partition_key}")


defs = dg.Definitions(assets=[logged_day])
