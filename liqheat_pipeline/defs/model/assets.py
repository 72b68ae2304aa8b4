"""The per-symbol model multi-asset: levels, ledger, heatmap snapshots and the carried state.

Storage is written directly through the "database" resource (no IO manager): a run covering
days [S, E) reads the raw inputs and the state stored at the end of S-1, runs the engine day by
day in memory, verifies the computed days, then replaces every model table's rows of [S, E) in
ONE transaction. The stored history stays one chain of one configuration:
- days stored after E-1 are kept only if the recomputed end state of E-1 equals the stored one;
  otherwise the run fails before writing, naming them and the range to run;
- the write happens only if the run records of S-1 onwards are still the ones read before
  computing (a concurrent run that wrote meanwhile makes this one fail, nothing written);
- invariants decidable in memory (``model_invariants``) are enforced before writing; the SQL
  asset checks audit the stored rows independently afterwards.
"""

from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg

from liqheat_pipeline.defs.model.summary import model_metadata
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.engine.brackets import bracket_table_frame
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.engine.run import ModelInputError
from liqheat_pipeline.lib.model import store
from liqheat_pipeline.lib.model.days import (
    LaterDaysError,
    PreviousStateError,
    check_later_days,
    run_days,
    starting_state,
)
from liqheat_pipeline.lib.model.invariants import ModelInvariantError, verify_days

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
        previous_day = first_day - timedelta(days=1)
        with database.read() as conn:
            warehouse.ensure_schema(conn)
            market = store.load_market(conn, symbol, first_day, end_day)
            stored = store.load_state(conn, symbol, previous_day)
            last_stored = store.last_stored_day(conn, symbol, first_day)
            history = store.history_stamps(conn, symbol, previous_day)
            later_days = [day for day, _, _ in history if day > days[-1]]
            stored_last = store.load_state(conn, symbol, days[-1]) if later_days else None
            opening = (
                dict.fromkeys(("long", "short"), 0.0)
                if first_day <= history_start
                else store.ledger_closing(conn, symbol, first_day)
            )
        missing = store.missing_inputs(market, days)
        if missing:
            raise dg.Failure(
                description=f"{symbol}: raw inputs missing for the model:\n" + "\n".join(missing)
            )
        try:
            state = starting_state(
                symbol,
                first_day,
                history_start,
                stored,
                config,
                last_computed_day=last_stored,
                latest_stored_day=history[-1][0] if history else None,
            )
            results = run_days(symbol, days, market, config, state)
            check_later_days(symbol, first_day, results[-1], stored_last, later_days)
            verify_days(symbol, results, opening)
            context.log.info(f"{symbol}: computed {len(days)} day(s); writing in one transaction")
            with database.transaction() as conn:
                written = store.write_days(
                    conn, symbol, results, bracket_table_frame(), expected_history=history
                )
        except (
            PreviousStateError,
            ModelInputError,
            LaterDaysError,
            ModelInvariantError,
            store.HistoryChangedError,
        ) as error:
            raise dg.Failure(description=str(error)) from error
        metadata = model_metadata(results, written)
        for name in MODEL_OUTPUTS:
            yield dg.MaterializeResult(asset_key=[prefix, name], metadata=metadata[name])

    return model
