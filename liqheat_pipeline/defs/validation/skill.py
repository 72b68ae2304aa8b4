"""The ``model_skill`` asset: how well the model ranks the liquidations that really happened.

Partition D scores the cumulative window [history start 00:00, D+1 00:00) per realized bucket
(``lib/skill/predictors``). A range run loads its inputs once, scores one window per day and
replaces the rows whose ``window_end`` lies in the run's (S 00:00, E 00:00] in one transaction.
"""

import base64
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd

from liqheat_pipeline.defs.metadata import row_counts, table_metadata
from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.days import day_start
from liqheat_pipeline.lib.skill import store
from liqheat_pipeline.lib.skill.predictors import (
    CONTROL,
    SIDES,
    BucketSeries,
    bucket_series,
    skill_rows,
)
from liqheat_pipeline.project import OWNERS, Project, SymbolSpec

# The headline of the last window: (predictor, metric) columns per side.
HEADLINE = (
    ("model", "spearman"),
    (CONTROL, "spearman"),
    ("model", "partial_spearman"),
    ("model", "top_decile_recall"),
    (CONTROL, "top_decile_recall"),
)


def build_model_skill_asset(spec: SymbolSpec, project: Project) -> dg.AssetsDefinition:
    symbol, history_start = spec.symbol, project.settings.start_date

    @dg.asset(
        key=spec.key(store.SKILL_TABLE),
        group_name=spec.group,
        partitions_def=project.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[
            spec.key(name)
            for name in ("candle_ledger", "realized_liquidations", "candles", "open_interest")
        ],
        kinds={"duckdb"},
        owners=OWNERS,
        tags=spec.tags("validation"),
        metadata=table_metadata(store.SKILL_TABLE),
        description=(
            f"Skill of the {symbol} model against observed liquidations (table model_skill): "
            "per realized bucket from the history start to the end of the day, Spearman, "
            "partial Spearman (controlling for the price-range baseline), top-decile recall "
            "and volume ratio of the model and of two model-free baselines, per side."
        ),
    )
    def model_skill(
        context: dg.AssetExecutionContext, database: LiqheatDatabase
    ) -> dg.MaterializeResult:
        days = [date.fromisoformat(key) for key in context.partition_keys]
        end_day = days[-1] + timedelta(days=1)
        window_start = day_start(history_start)
        with database.read() as conn:
            runs = store.model_runs(conn, symbol, days[0], end_day)
            unmodelled = [day for day in days if day not in runs]
            if unmodelled:
                raise dg.Failure(
                    description=f"{symbol}: the model has not been computed for "
                    f"{', '.join(map(str, unmodelled))}: materialize {spec.group}/candle_ledger "
                    "for these days first"
                )
            inputs = store.load_inputs(
                conn, symbol, window_start, day_start(end_day), runs[days[-1]].interval
            )
        try:
            series = bucket_series(inputs)
        except ValueError as error:  # e.g. realized buckets of mixed lengths or overlapping
            raise dg.Failure(description=f"{symbol} model_skill: {error}") from error
        computed_at = datetime.now(UTC).replace(tzinfo=None)
        windows = [
            (day, series.window(window_start, day_start(day + timedelta(days=1)))) for day in days
        ]
        frames = [
            skill_rows(
                window,
                symbol=symbol,
                window_start=window_start,
                window_end=day_start(day + timedelta(days=1)),
                config_hash=runs[day].config_hash,
                computed_at=computed_at,
            )
            for day, window in windows
        ]
        rows = pd.concat(frames, ignore_index=True)
        with database.transaction() as conn:
            written = warehouse.replace_rows(
                conn,
                store.SKILL_TABLE,
                rows,
                symbol=symbol,
                start=day_start(days[0]),
                end=day_start(end_day),
            )
        context.log.info(f"{symbol} model_skill: {written:,} rows for {len(days)} window(s)")
        for (day, window), frame in zip(windows, frames, strict=True):
            context.add_asset_metadata(
                _metadata(symbol, window, frame, window_start, day, with_figure=day == days[-1]),
                partition_key=day.isoformat(),
            )
        return dg.MaterializeResult()

    return model_skill


def _metadata(
    symbol: str,
    series: BucketSeries,
    rows: pd.DataFrame,
    window_start: datetime,
    day: date,
    *,
    with_figure: bool,
) -> dict[str, dg.MetadataValue]:
    """Partition ``day``'s window; the figure (a ~100 KB PNG) only on the run's last day."""
    window_end = day_start(day + timedelta(days=1))
    metadata: dict[str, dg.MetadataValue] = {
        **row_counts(store.SKILL_TABLE, len(rows)),
        "window": dg.MetadataValue.text(f"[{window_start:%Y-%m-%d}, {window_end:%Y-%m-%d})"),
        "n_buckets": dg.MetadataValue.int(series.n_buckets),
    }
    if series.bucket_minutes is None:
        metadata["skill"] = dg.MetadataValue.text(
            f"no realized liquidations for {symbol} in the window: nothing to score (0 rows)"
        )
        return metadata
    metadata["bucket_minutes"] = dg.MetadataValue.int(series.bucket_minutes)
    metadata["headline"] = _headline(rows)
    if with_figure and series.n_buckets:
        # Imported here: matplotlib costs ~0.4 s to import, which every process loading the
        # definitions would otherwise pay.
        from liqheat_pipeline.lib.skill.figure import render_skill_figure

        title = (
            f"{symbol} modelled vs realized liquidations, {series.n_buckets} buckets of "
            f"{series.bucket_minutes} min, [{window_start:%Y-%m-%d}, {window_end:%Y-%m-%d})"
        )
        png = base64.b64encode(render_skill_figure(series, title)).decode("ascii")
        metadata["figure"] = dg.MetadataValue.md(f"![{title}](data:image/png;base64,{png})")
    return metadata


def _headline(rows: pd.DataFrame) -> dg.MetadataValue:
    """The HEADLINE metrics per side as a table (empty cells where undefined)."""
    values = rows.set_index(["side", "predictor", "metric"])["value"]
    names = [f"{metric} ({predictor})" for predictor, metric in HEADLINE]
    records = []
    for side in SIDES:
        cells = [values[side, predictor, metric] for predictor, metric in HEADLINE]
        records.append(
            dg.TableRecord(
                {
                    "side": side,
                    **{
                        name: None if pd.isna(v) else round(float(v), 3)
                        for name, v in zip(names, cells, strict=True)
                    },
                }
            )
        )
    schema = dg.TableSchema(
        columns=[dg.TableColumn("side", "string"), *(dg.TableColumn(n, "float") for n in names)]
    )
    return dg.MetadataValue.table(records, schema=schema)
