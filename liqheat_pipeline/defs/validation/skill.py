"""The ``model_skill`` asset: how well the model ranks the liquidations that really happened.

Partition D scores the cumulative window [history start 00:00, D+1 00:00) per realized bucket
(``lib/skill/predictors``). A range run loads its inputs once, scores one window per day and
replaces the rows whose ``window_end`` lies in the run's (S 00:00, E 00:00] in one transaction.
"""

import base64
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd

from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.model.store import day_start
from liqheat_pipeline.lib.skill import store
from liqheat_pipeline.lib.skill.predictors import (
    CONTROL,
    SIDES,
    BucketSeries,
    bucket_series,
    skill_rows,
)

# The headline of the last window: (predictor, metric) columns per side.
HEADLINE = (
    ("model", "spearman"),
    (CONTROL, "spearman"),
    ("model", "partial_spearman"),
    ("model", "top_decile_recall"),
    (CONTROL, "top_decile_recall"),
)


def build_model_skill_asset(
    symbol: str, partitions: dg.PartitionsDefinition, history_start: date
) -> dg.AssetsDefinition:
    prefix = symbol.lower()

    @dg.asset(
        key=[prefix, store.SKILL_TABLE],
        group_name=prefix,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[
            dg.AssetKey([prefix, "candle_ledger"]),
            dg.AssetKey([prefix, "realized_liquidations"]),
            dg.AssetKey([prefix, "candles"]),
            dg.AssetKey([prefix, "open_interest"]),
        ],
        kinds={"duckdb"},
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
                    f"{', '.join(map(str, unmodelled))}: materialize {prefix}/candle_ledger "
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
                time_column="window_end",
                start=day_start(days[0]),
                end=day_start(end_day),
                include_end=True,
            )
        context.log.info(f"{symbol} model_skill: {written} rows for {len(days)} window(s)")
        last_day, last_window = windows[-1]
        return dg.MaterializeResult(
            metadata=_metadata(
                symbol, last_window, frames[-1], window_start, last_day, written, len(days)
            )
        )

    return model_skill


def _metadata(
    symbol: str,
    series: BucketSeries,
    rows: pd.DataFrame,
    window_start: datetime,
    last_day: date,
    written: int,
    windows: int,
) -> dict[str, dg.MetadataValue]:
    window_end = day_start(last_day + timedelta(days=1))
    metadata: dict[str, dg.MetadataValue] = {
        "dagster/table_name": dg.MetadataValue.text(store.SKILL_TABLE),
        "rows_written": dg.MetadataValue.int(written),
        "windows_written": dg.MetadataValue.int(windows),
        "window": dg.MetadataValue.text(f"[{window_start:%Y-%m-%d}, {window_end:%Y-%m-%d})"),
        "n_buckets": dg.MetadataValue.int(series.n_buckets),
    }
    if series.bucket_minutes is None:
        metadata["skill"] = dg.MetadataValue.text(
            f"no realized liquidations for {symbol} in the window: nothing to score (0 rows)"
        )
        return metadata
    metadata["bucket_minutes"] = dg.MetadataValue.int(series.bucket_minutes)
    metadata["headline"] = dg.MetadataValue.md(_headline(rows))
    if series.n_buckets:
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


def _headline(rows: pd.DataFrame) -> str:
    """Markdown table of the HEADLINE metrics per side (blank where undefined)."""
    values = rows.set_index(["side", "predictor", "metric"])["value"]
    header = "| side | " + " | ".join(f"{metric} ({predictor})" for predictor, metric in HEADLINE)
    lines = [header + " |", "|---" * (len(HEADLINE) + 1) + "|"]
    for side in SIDES:
        cells = [values[side, predictor, metric] for predictor, metric in HEADLINE]
        lines.append(
            f"| {side} | " + " | ".join("" if pd.isna(v) else f"{v:.3f}" for v in cells) + " |"
        )
    return "\n".join(lines)
