"""The per-symbol model multi-asset: levels, ledger, heatmap snapshots and the carried state.

Storage is written directly through the "database" resource (no IO manager): a run covering
days [S, E) reads the raw inputs and the state stored at the end of S-1, runs the engine day by
day in memory, then replaces every model table's rows of [S, E) in ONE transaction.
"""

from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg

from liqheat_pipeline.defs.model.summary import model_metadata
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib import model_store, warehouse
from liqheat_pipeline.lib.model.brackets import bracket_table_frame
from liqheat_pipeline.lib.model.config import ModelConfig
from liqheat_pipeline.lib.model.engine import ModelInputError
from liqheat_pipeline.lib.model_days import PreviousStateError, run_days, starting_state

# Output name -> description. model_state comes first: the other outputs depend on the previous
# day's state, and a multi-asset must yield its outputs in dependency order.
MODEL_OUTPUTS: dict[str, str] = {
    "model_state": (
        "End-of-day active liquidation levels (table model_state) and the run record with the "
        "configuration and assumptions (model_runs); the next day starts from it."
    ),
    "level_openings": "Modelled liquidation levels by creation candle (table level_openings).",
    "level_consumptions": (
        "Modelled liquidations: levels consumed by a candle crossing them (level_consumptions)."
    ),
    "candle_ledger": "Per candle and side: opened, consumed, closed and active USD.",
    "heatmap_snapshots": (
        "Active and consumed USD per candle, price bucket and side (heatmap_snapshots), also "
        "split by leverage (heatmap_snapshots_by_leverage)."
    ),
}


def build_model_asset(
    symbol: str,
    partitions: dg.DailyPartitionsDefinition,
    config: ModelConfig,
    history_start: date,
    *,
    with_mark_price: bool,
) -> dg.AssetsDefinition:
    prefix = symbol.lower()
    inputs = [
        dg.AssetDep([prefix, "candles"]),
        # Day D needs the 00:00 snapshot of D, which open-interest partition D-1 owns.
        dg.AssetDep(
            [prefix, "open_interest"],
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
            ),
        ),
    ]
    if with_mark_price:
        inputs.append(dg.AssetDep([prefix, "mark_price_candles"]))
    # Self-dependency: day D starts from the state of D-1 (orders UI backfills day by day).
    previous_state = dg.AssetDep(
        [prefix, "model_state"],
        partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
    )
    specs = [
        dg.AssetSpec(
            [prefix, name],
            deps=[*inputs, previous_state],
            description=description,
            group_name=prefix,
            partitions_def=partitions,
            kinds={"duckdb"},
        )
        for name, description in MODEL_OUTPUTS.items()
    ]

    @dg.multi_asset(
        name=f"{prefix}_model",
        specs=specs,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def model(
        context: dg.AssetExecutionContext, database: LiqheatDatabase
    ) -> Iterator[dg.MaterializeResult]:
        days = [date.fromisoformat(key) for key in context.partition_keys]
        first_day, end_day = days[0], days[-1] + timedelta(days=1)
        with database.read() as conn:
            warehouse.ensure_schema(conn)
            market = model_store.load_market(conn, symbol, first_day, end_day)
            stored = model_store.load_state(conn, symbol, first_day - timedelta(days=1))
            last_stored = model_store.last_stored_day(conn, symbol, first_day)
        missing = model_store.missing_inputs(market, days)
        if missing:
            raise dg.Failure(
                description=f"{symbol}: raw inputs missing for the model:\n" + "\n".join(missing)
            )
        try:
            state = starting_state(
                symbol, first_day, history_start, stored, config, last_computed_day=last_stored
            )
            results = run_days(symbol, days, market, config, state)
        except (PreviousStateError, ModelInputError) as error:
            raise dg.Failure(description=str(error)) from error
        context.log.info(f"{symbol}: computed {len(days)} day(s); writing in one transaction")
        with database.transaction() as conn:
            written = model_store.write_days(conn, symbol, results, bracket_table_frame())
        metadata = model_metadata(results, written)
        for name in MODEL_OUTPUTS:
            yield dg.MaterializeResult(asset_key=[prefix, name], metadata=metadata[name])

    return model
