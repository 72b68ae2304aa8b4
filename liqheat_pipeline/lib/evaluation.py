"""Score model configurations against realized liquidations in memory (``liqheat evaluate``).

Reads the archive mirror and the realized files directly, runs the engine day by day from an
empty start, and scores each configuration with the same predictors and metrics as the
``model_skill`` asset. Nothing is written to the warehouse.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from liqheat_pipeline.lib.archive.layout import (
    KLINES,
    MARK_PRICE_KLINES,
    METRICS,
    daily_relative_path,
    find_daily_file,
)
from liqheat_pipeline.lib.archive.plausibility import DEFAULT_LIMITS, PlausibilityLimits
from liqheat_pipeline.lib.archive.readers import read_klines, read_metrics
from liqheat_pipeline.lib.days import day_start, days_in, naive_utc_now
from liqheat_pipeline.lib.engine.config import ModelConfig, ModelConfigError
from liqheat_pipeline.lib.engine.run import MarketSeries, run_model
from liqheat_pipeline.lib.model.store import MARKET_CANDLE_COLUMNS, MarketWindow
from liqheat_pipeline.lib.realized.readers import RealizedRead, read_realized
from liqheat_pipeline.lib.skill.predictors import SkillInputs, bucket_series, skill_rows

CANDLE_INTERVAL = "5m"
# What `liqheat evaluate` ranks configurations by (docs/validation.md, declared in advance).
CRITERION = "mean over long and short of partial_spearman (model vs realized | baseline_range)"


class EvaluationError(ValueError):
    """Missing or unusable inputs or configurations; the message names the file or option."""


@dataclass(frozen=True)
class ScoringPeriod:
    """Engine history from ``history_start`` (empty state); scored buckets in [start, end)."""

    history_start: date
    start: date
    end: date

    def __post_init__(self) -> None:
        if not self.history_start <= self.start < self.end:
            raise EvaluationError(
                f"expected history start <= score start < score end, got {self.history_start}, "
                f"{self.start}, {self.end}"
            )

    @property
    def days(self) -> list[date]:
        return days_in(self.history_start, self.end)


def load_market(
    data_dir: Path,
    symbol: str,
    days: Sequence[date],
    limits: PlausibilityLimits = DEFAULT_LIMITS,
) -> MarketWindow:
    """Candles, open interest and (where the mirror has them) mark-price candles of the days,
    as the pipeline stores them: open-interest file D gives the instants in (D, D+1]; files
    are checked with the same plausibility ``limits`` as at ingest."""
    step = timedelta(minutes=5)
    candles = [
        read_klines(_day_file(data_dir, KLINES, symbol, day), step, day, limits=limits)
        for day in days
    ]
    metrics = [
        read_metrics(_day_file(data_dir, METRICS, symbol, day), day, limits=limits) for day in days
    ]
    marks = []
    for day in days:
        path = find_daily_file(data_dir, MARK_PRICE_KLINES, symbol, day, CANDLE_INTERVAL)
        if path is not None:
            read = read_klines(path, step, day, limits=limits)
            marks.append(read.frame[["open_time", "high", "low"]])
    mark_frame = (
        pd.concat(marks, ignore_index=True)
        if marks
        else pd.DataFrame({"open_time": pd.Series(dtype="datetime64[ns]"), "high": [], "low": []})
    )
    return MarketWindow(
        candles=pd.concat([read.frame for read in candles], ignore_index=True)[
            list(MARKET_CANDLE_COLUMNS)
        ],
        open_interest=pd.concat([read.frame for read in metrics], ignore_index=True)[
            ["ts", "open_interest"]
        ],
        mark_price_candles=mark_frame,
    )


def _day_file(data_dir: Path, dataset: str, symbol: str, day: date) -> Path:
    path = find_daily_file(data_dir, dataset, symbol, day, CANDLE_INTERVAL)
    if path is None:
        expected = data_dir / daily_relative_path(dataset, symbol, day, CANDLE_INTERVAL)
        raise EvaluationError(f"missing archive file {expected} (also looked for .csv.gz, .csv)")
    return path


def evaluate(
    symbol: str,
    market: MarketWindow,
    realized: RealizedRead,
    configs: Mapping[str, ModelConfig],
    window: ScoringPeriod,
) -> pd.DataFrame:
    """``model_skill`` rows for every configuration (column ``config`` names it), plus the
    engine seconds each took (column ``engine_seconds``)."""
    start, end = day_start(window.start), day_start(window.end)
    in_window = market.candles["open_time"].between(start, end, inclusive="left")
    marks = market.mark_price_candles
    series_input = MarketSeries.from_frames(
        market.candles, market.open_interest, marks if len(marks) else None
    )
    frames = []
    for name, config in configs.items():
        began = time.perf_counter()
        # One pass over the whole history equals day-by-day runs (docs/model.md, carried state);
        # the snapshots are not needed for scoring.
        output = run_model(symbol, series_input, config, None, snapshots=False)
        seconds = time.perf_counter() - began
        ledger = output.candle_ledger
        ledger = ledger[ledger["ts"] >= start]
        series = bucket_series(
            SkillInputs(
                candles=market.candles[in_window],
                open_interest=market.open_interest,
                ledger=ledger[["ts", "side", "consumed_usd"]].astype({"side": str}),
                realized=realized.frame,
                interval=timedelta(minutes=config.interval_minutes),
            )
        )
        rows = skill_rows(
            series,
            symbol=symbol,
            window_start=start,
            window_end=end,
            config_hash=config.config_hash(symbol),
            computed_at=naive_utc_now(),
        )
        frames.append(rows.assign(config=name, engine_seconds=seconds))
    return pd.concat(frames, ignore_index=True)


def load_realized(
    liquidations_dir: Path, data_dir: Path, symbol: str, window: ScoringPeriod
) -> RealizedRead:
    realized = read_realized(
        liquidations_dir, data_dir, symbol, day_start(window.start), day_start(window.end)
    )
    if realized.frame.empty:
        raise EvaluationError(
            f"{symbol}: no realized liquidations in {window.start}…{window.end} under "
            f"{liquidations_dir} (or liquidationSnapshot files in {data_dir}); nothing to score"
        )
    return realized


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per configuration: the criterion, then the headline metrics per side."""
    model = rows[rows["predictor"] == "model"]
    baseline = rows[rows["predictor"] == "baseline_range"]
    table = model.pivot_table(index="config", columns=["metric", "side"], values="value")
    base = baseline.pivot_table(index="config", columns=["metric", "side"], values="value")
    out = pd.DataFrame(index=table.index)
    out["criterion"] = (
        table[("partial_spearman", "long")] / 2 + table[("partial_spearman", "short")] / 2
    )
    for side in ("long", "short"):
        out[f"spearman_{side}"] = table[("spearman", side)]
        out[f"baseline_spearman_{side}"] = base[("spearman", side)]
        out[f"partial_{side}"] = table[("partial_spearman", side)]
        out[f"top10_{side}"] = table[("top_decile_recall", side)]
        out[f"baseline_top10_{side}"] = base[("top_decile_recall", side)]
    out["volume_ratio_total"] = table[("volume_ratio", "total")]
    out["n_buckets"] = model.groupby("config")["n_buckets"].first()
    out["engine_seconds"] = model.groupby("config")["engine_seconds"].first()
    # Declared tie-break: mean spearman over the sides.
    out["tie_break"] = (out["spearman_long"] + out["spearman_short"]) / 2
    return out.sort_values(["criterion", "tie_break"], ascending=False)


def configurations(files: Sequence[Path], vary: Sequence[str]) -> dict[str, ModelConfig]:
    """Named configurations from JSON files (one mapping of model options, or
    ``{"configurations": {name: options}}``), each crossed with every ``--vary`` grid; the
    defaults alone when neither is given."""
    bases: dict[str, dict[str, Any]] = {}
    for path in files:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise EvaluationError(f"{path}: cannot read: {error}") from error
        except json.JSONDecodeError as error:
            raise EvaluationError(
                f"{path}, line {error.lineno}: not valid JSON: {error.msg}"
            ) from None
        named = document.get("configurations") if isinstance(document, dict) else None
        if named is None:
            named = {Path(path).stem: document}
        if not isinstance(named, dict):
            raise EvaluationError(f"{path}: 'configurations' must map names to option objects")
        for name, options in named.items():
            if not isinstance(options, dict):
                raise EvaluationError(f"{path}: configuration {name!r} is not an object")
            bases[name] = options
    if not bases:
        bases = {"defaults": {}}
    grid = [_grid_option(spec) for spec in vary]
    configs = {}
    for (base_name, options), choice in itertools.product(bases.items(), itertools.product(*grid)):
        merged = {**options, **dict(choice)}
        name = base_name + "".join(f" {key}={value}" for key, value in choice)
        try:
            configs[name] = ModelConfig.from_mapping(merged)
        except ModelConfigError as error:
            raise EvaluationError(f"configuration {name!r}: {error}") from error
    return configs


def _grid_option(spec: str) -> list[tuple[str, Any]]:
    """``option=a,b,c`` → [(option, a), ...]; values are JSON where they parse, else text."""
    option, separator, values = spec.partition("=")
    if not separator or not option or not values:
        raise EvaluationError(f"--vary {spec!r}: expected OPTION=VALUE[,VALUE...]")
    return [(option.strip(), _value(value.strip())) for value in values.split(",")]


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def text_table(frame: pd.DataFrame) -> str:
    """The summary as aligned text, three decimals."""
    return frame.reset_index().to_string(index=False, float_format=lambda value: f"{value:.3f}")
