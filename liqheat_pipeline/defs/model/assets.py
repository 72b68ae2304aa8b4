"""The per-symbol model multi-asset: levels, ledger, heatmap snapshots and the carried state.

Storage is written directly through the "database" resource (no IO manager): a run covering
days [S, E) reads the raw inputs and the state stored at the end of S-1, runs the engine day by
day in memory, verifies the computed days, then replaces every model table's rows of [S, E) in
ONE transaction. The stored history stays one chain of one configuration:
- days stored after E-1 are kept only if the recomputed end state of E-1 equals the stored one;
  otherwise the run fails before writing, naming them and the range to run;
- the write happens only if the run records of S-1 onwards are still the ones read before
  computing (a concurrent run that wrote meanwhile makes this one fail, nothing written);
- invariants decidable in memory (``lib/model/invariants.py``) are enforced before writing; the SQL
  asset checks audit the stored rows independently afterwards.
"""

from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg

from liqheat_pipeline.defs.metadata import table_metadata
from liqheat_pipeline.defs.model.summary import day_metadata
from liqheat_pipeline.defs.progress import DayProgress
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.engine.brackets import bracket_table_frame
from liqheat_pipeline.lib.engine.config import ENGINE_VERSION
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
from liqheat_pipeline.project import OWNERS, Project, SymbolSpec

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


def build_model_asset(spec: SymbolSpec, project: Project) -> dg.AssetsDefinition:
    config = project.model_config
    history_start = project.settings.start_date
    # Day D also reads the 00:00 open-interest snapshot of D, which open_interest partition D-1
    # owns. It is declared as the same-day partition all the same: a D-1 offset maps every
    # selected open_interest day onto D and D+1, which stretches any UI backfill one day past
    # the chosen range. D-1 is already guaranteed: day D starts from the model of D-1 (below),
    # which needed open_interest D-1, and a missing snapshot fails the run by name.
    inputs = [dg.AssetDep(spec.key(name)) for name in ("candles", "open_interest")]
    if spec.with_mark_price:
        inputs.append(dg.AssetDep(spec.key("mark_price_candles")))
    code_version = f"engine-{ENGINE_VERSION}-config-{config.config_hash(spec.symbol)}"
    specs = [
        dg.AssetSpec(
            spec.key(name),
            # Each output depends on its own previous day (the carried state): backfills run the
            # days in order, and every output targets exactly the partitions chosen in the UI.
            deps=[
                *inputs,
                dg.AssetDep(
                    spec.key(name),
                    partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1),
                ),
            ],
            description=description,
            group_name=spec.group,
            partitions_def=project.partitions,
            kinds={"duckdb", "numpy"},
            owners=OWNERS,
            tags=spec.tags("model"),
            code_version=code_version,
            metadata=table_metadata(name),
        )
        for name, description in MODEL_OUTPUTS.items()
    ]
    symbol = spec.symbol

    @dg.multi_asset(
        name=f"{spec.group}_model",
        specs=specs,
        partitions_def=project.partitions,
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
            progress = DayProgress(context.log, f"{symbol} model", len(days))
            results = run_days(
                symbol,
                days,
                market,
                config,
                state,
                on_day=lambda day: progress.day_done(
                    day.day, sum(len(frame) for frame in day.tables.values())
                ),
            )
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
        context.log.info(
            f"{symbol}: wrote "
            + ", ".join(f"{rows:,} {table} rows" for table, rows in written.items())
        )
        for result in results:
            for name, metadata in day_metadata(result).items():
                context.add_asset_metadata(
                    metadata, asset_key=spec.key(name), partition_key=result.day.isoformat()
                )
        for name in MODEL_OUTPUTS:
            yield dg.MaterializeResult(asset_key=spec.key(name))

    return model
