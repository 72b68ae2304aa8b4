"""The per-symbol model multi-asset: levels, ledger, heatmap snapshots and the carried state.

Storage is written directly through the "database" resource (no IO manager). A run covering
days [S, E) streams them in chunks of ``LIQHEAT_MODEL_CHUNK_DAYS`` days, so its memory is one
chunk's whatever the range's length: for each chunk it reads the chunk's raw inputs, runs the
engine day by day from the previous chunk's end state (the state stored at the end of S-1 for the
first), verifies the chunk's days and replaces every model table's rows of the chunk in ONE
transaction. The results are exactly those of one run over the whole range (and of day-by-day
runs). The stored history stays one chain of one configuration:
- each chunk is atomic; a failure in chunk n leaves chunks 1..n-1 written (a valid chain from
  S on) and nothing of chunk n; the error names the written days and the range to resume with
  (the next run starts from the last written day's stored state, as any run does);
- days stored after E-1 are kept only if the recomputed end state of E-1 equals the stored one,
  otherwise the run fails before writing anything, naming them and the range to run. That is
  only known once E-1 is computed, and chunks commit before: so when such days exist and the
  range spans more than one chunk, the range is first computed once without writing (twice the
  engine time, only for re-runs inside the history) and refused before its first chunk if the
  end state would change. Holding every chunk uncommitted instead would hold the whole range;
- when a chunk changes the end state its range's later stored days start from, its transaction
  also deletes them: a failure before they are rewritten leaves a gap, never a stored day built
  on a state that no longer exists;
- each chunk's write happens only if the run records from the day before it are still the ones
  read before computing, or written by this run's previous chunk (a concurrent run that wrote
  meanwhile makes this one fail at that chunk);
- invariants decidable in memory (``lib/model/invariants.py``) are enforced on each chunk before
  its write, its ledger chained from the previous chunk's; the SQL asset checks audit the stored
  rows independently afterwards.
"""

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta

import dagster as dg

from liqheat_pipeline.defs.metadata import table_metadata
from liqheat_pipeline.defs.model.summary import day_metadata
from liqheat_pipeline.defs.progress import DayProgress
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib.engine.brackets import bracket_table_frame
from liqheat_pipeline.lib.engine.config import ENGINE_VERSION
from liqheat_pipeline.lib.engine.run import ModelInputError
from liqheat_pipeline.lib.model import store
from liqheat_pipeline.lib.model.days import (
    LaterDaysError,
    PreviousStateError,
    check_later_days,
    chunks_of,
    run_chunks,
    same_state,
    starting_state,
)
from liqheat_pipeline.lib.model.invariants import ModelInvariantError, verify_days
from liqheat_pipeline.lib.model.store import DayResult
from liqheat_pipeline.project import OWNERS, Project, SymbolSpec

# Output name -> description. model_state comes first: the other outputs depend on the previous
# day's state, and a multi-asset must yield its outputs in dependency order.
MODEL_OUTPUTS: dict[str, str] = {
    "model_state": (
        "End-of-day active liquidation levels (view model_state, rebuilt from the levels, their "
        "closeouts in table level_closeouts and the ledger) and the run record with the "
        "configuration and assumptions (model_runs); the next day starts from it."
    ),
    "level_openings": "Modelled liquidation levels by creation candle (table level_openings).",
    "level_consumptions": (
        "Modelled liquidations: levels consumed by a candle crossing them (level_consumptions)."
    ),
    "candle_ledger": "Per candle and side: opened, consumed, closed and active USD.",
    "heatmap_snapshots": (
        "Active and consumed USD per candle, price bucket and side (view heatmap_snapshots), "
        "also split by leverage (view heatmap_snapshots_by_leverage), stored as constant-weight "
        "segments (tables snapshot_segments[_by_leverage])."
    ),
}

# The table an output is stored in, where it is not the output's name (the views
# heatmap_snapshots[_by_leverage] read snapshot_segments[_by_leverage]; model_state is derived,
# its run records are stored).
STORED_TABLE = {"heatmap_snapshots": "snapshot_segments", "model_state": "model_runs"}


def build_model_asset(spec: SymbolSpec, project: Project) -> dg.AssetsDefinition:
    config = project.model_config
    history_start = project.settings.start_date
    # Peak memory grows with the chunk, not the range (settings.DEFAULT_MODEL_CHUNK_DAYS).
    chunk_days = project.settings.model_chunk_days
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
            metadata=table_metadata(STORED_TABLE.get(name, name)),
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
        first_day = days[0]
        previous_day = first_day - timedelta(days=1)
        with database.read() as conn:
            missing = store.missing_inputs(conn, symbol, days)
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
        if missing:
            raise dg.Failure(
                description=f"{symbol}: raw inputs missing for the model:\n" + "\n".join(missing)
            )

        def load_market(chunk: Sequence[date]) -> store.MarketWindow:
            with database.read() as conn:
                return store.load_market(conn, symbol, chunk[0], chunk[-1] + timedelta(days=1))

        chunks = chunks_of(days, chunk_days)
        writer = _ChunkWriter(
            context, database, spec, days, history, opening, later_days, stored_last, chunk_days
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
            if later_days and len(chunks) > 1:
                # Decide the later days' fate before the first chunk commits (module docstring).
                context.log.info(
                    f"{symbol}: days are stored after {days[-1]}; computing the range once "
                    f"without writing to check that its end state stays unchanged"
                )
                last = run_chunks(
                    symbol,
                    chunks,
                    load_market,
                    config,
                    state,
                    on_day=_day_progress(context, f"{symbol} model (end-state check)", days),
                )
                check_later_days(symbol, first_day, last, stored_last, later_days)
            run_chunks(
                symbol,
                chunks,
                load_market,
                config,
                state,
                on_chunk=writer.write,
                on_day=_day_progress(context, f"{symbol} model", days),
            )
        except (
            PreviousStateError,
            ModelInputError,
            LaterDaysError,
            ModelInvariantError,
            store.HistoryChangedError,
            store.StateCorruptionError,
        ) as error:
            raise dg.Failure(description=f"{error}{writer.written_note()}") from error
        except Exception:
            # Unexpected errors keep their traceback; the user still learns what was committed.
            if writer.written_through is not None:
                context.log.error(writer.written_note().strip())
            raise
        context.log.info(
            f"{symbol}: wrote {len(days)} day(s) in {len(chunks)} transaction(s): "
            + ", ".join(f"{rows:,} {table} rows" for table, rows in writer.rows.items())
        )
        for name in MODEL_OUTPUTS:
            yield dg.MaterializeResult(asset_key=spec.key(name))

    return model


def _day_progress(
    context: dg.AssetExecutionContext, what: str, days: Sequence[date]
) -> Callable[[DayResult], None]:
    """Progress lines (days done, rows per second) fed by each computed day."""
    progress = DayProgress(context.log, what, len(days))
    return lambda result: progress.day_done(
        result.day, sum(len(frame) for frame in result.tables.values())
    )


class _ChunkWriter:
    """Verifies and writes one chunk of computed days per transaction, in order, carrying what
    the next chunk's checks start from: the ledger's closing and the stored run records."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        database: LiqheatDatabase,
        spec: SymbolSpec,
        days: Sequence[date],
        history: tuple[store.RunStamp, ...],
        opening: dict[str, float] | None,
        later_days: Sequence[date],
        stored_last: store.StoredState | None,
        chunk_days: int,
    ) -> None:
        self._context, self._database, self._spec, self._days = context, database, spec, days
        self._chunk_days = chunk_days
        self._expected_history, self._opening = history, opening
        self._later_days, self._stored_last = later_days, stored_last
        self.rows: Counter[str] = Counter()
        self.written_through: date | None = None
        self.cleared = False  # whether the range's later stored days were deleted

    def write(self, results: list[DayResult]) -> None:
        symbol, last_day = self._spec.symbol, self._days[-1]
        chunk_last = results[-1].day
        if chunk_last == last_day:
            check_later_days(
                symbol, self._days[0], results[-1], self._stored_last, self._later_days
            )
        closing = verify_days(symbol, results, self._opening)
        stored_in_range = any(chunk_last < day <= last_day for day, _, _ in self._expected_history)
        with self._database.transaction() as conn:
            # The range's stored days after this chunk start from the stored state of its last
            # day; if this chunk changes it, they are deleted with this write, so that a failure
            # before they are rewritten leaves a gap (resumable), never a day built on a state
            # that no longer exists.
            stale = stored_in_range and not same_state(
                results[-1], store.load_state(conn, symbol, chunk_last)
            )
            written = store.write_days(
                conn,
                symbol,
                results,
                bracket_table_frame(),
                expected_history=self._expected_history,
                clear_through=last_day if stale else None,
            )
            self._expected_history = store.history_stamps(conn, symbol, chunk_last)
        self._opening = closing
        self.rows.update(written)
        self.written_through = chunk_last
        self.cleared = self.cleared or stale
        self._context.log.info(
            f"{symbol}: wrote {results[0].day}…{chunk_last} ({len(results)} day(s), "
            f"{written['snapshot_segments']:,} snapshot segments) in one transaction"
            + (f"; deleted the stored {chunk_last + timedelta(days=1)}…{last_day}" if stale else "")
        )
        for result in results:
            for name, metadata in day_metadata(result).items():
                self._context.add_asset_metadata(
                    metadata, asset_key=self._spec.key(name), partition_key=result.day.isoformat()
                )

    def written_note(self) -> str:
        """What a failed run committed and how to resume (empty when nothing was written)."""
        if self.written_through is None:
            return ""
        resume, last_day = self.written_through + timedelta(days=1), self._days[-1]
        # Once the range's own stored days are gone, the days stored after it can no longer be
        # checked against their starting state: the resume range recomputes them too.
        through = self._later_days[-1] if self.cleared and self._later_days else last_day
        return (
            f"\nDays {self._days[0]}…{self.written_through} of this run were written (committed "
            f"in chunks of up to {self._chunk_days} days) and form a valid history; "
            f"{resume}…{last_day} were not written"
            + (
                " (their previous rows were deleted: they started from a state this run changed)"
                if self.cleared
                else ""
            )
            + f". Resume from the day after the last written one, e.g. `dagster "
            f"asset materialize -m liqheat_pipeline.definitions --select "
            f"'group:{self._spec.group}' --partition-range {resume}...{through}`."
        )
