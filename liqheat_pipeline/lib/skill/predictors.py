"""Per-bucket predictors of realized liquidations and the skill rows scoring them.

The one implementation behind the ``model_skill`` asset and in-memory evaluation: plain frames
in, plain frames out (no Dagster, no DuckDB). A bucket is one bucket of the realized series
(e.g. 60 minutes); per bucket and side it holds

- ``model``: the ledger's modelled liquidations (``consumed_usd``) over the bucket's candles;
- ``baseline_range``: how far each candle's price swept against the side, times the open
  interest notional: long ``(open - low) / open * OI(t_k) * close``, short
  ``(high - open) / open * OI(t_k) * close``, summed over the candles;
- ``baseline_return``: the same with the candle's net move only: long
  ``max(0, open - close) / open * OI(t_k) * close``, short ``max(0, close - open) / ...``;
- ``realized``: the observed liquidations;

and side ``total`` = long + short of each. The baselines are what a model-free guess from price
and open interest alone achieves; the model has skill where it beats them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from liqheat_pipeline.lib.skill import metrics
from liqheat_pipeline.lib.warehouse.schema import TABLES

SIDES = ("long", "short", "total")
PREDICTORS = ("model", "baseline_range", "baseline_return")
METRICS = ("spearman", "partial_spearman", "top_decile_recall", "volume_ratio")
# partial_spearman scores a predictor's ranks beyond what this baseline already explains; it is
# computed for every other predictor (model and baseline_return) and left out for this one.
CONTROL = "baseline_range"
SKILL_COLUMNS = TABLES["model_skill"].column_names
DEFAULT_INTERVAL = timedelta(minutes=5)


def series_column(name: str, side: str) -> str:
    """Column of ``BucketSeries.buckets`` holding predictor (or ``realized``) ``name``'s side."""
    return f"{name}_{side}"


BUCKET_COLUMNS = (
    "bucket_start",
    *(series_column(name, side) for name in (*PREDICTORS, "realized") for side in SIDES),
)


@dataclass(frozen=True)
class SkillInputs:
    """Raw frames of one symbol over a window.

    candles: open_time, open, high, low, close; open_interest: ts, open_interest (base units,
    up to and including the window end); ledger: ts, side ('long'/'short'), consumed_usd;
    realized: bucket_start, bucket_minutes, long_usd, short_usd.
    """

    candles: pd.DataFrame
    open_interest: pd.DataFrame
    ledger: pd.DataFrame
    realized: pd.DataFrame
    interval: timedelta = DEFAULT_INTERVAL


@dataclass(frozen=True)
class BucketSeries:
    """The buckets that can be scored, in time order (columns ``BUCKET_COLUMNS``), and their
    length in minutes (None when there is no realized series at all)."""

    buckets: pd.DataFrame
    bucket_minutes: int | None

    @property
    def n_buckets(self) -> int:
        return len(self.buckets)

    def window(self, start: datetime, end: datetime) -> BucketSeries:
        """The buckets lying entirely in [start, end)."""
        if self.bucket_minutes is None:
            return self
        bucket_start = self.buckets["bucket_start"]
        inside = (bucket_start >= pd.Timestamp(start)) & (
            bucket_start + pd.Timedelta(minutes=self.bucket_minutes) <= pd.Timestamp(end)
        )
        return BucketSeries(self.buckets[inside].reset_index(drop=True), self.bucket_minutes)


def bucket_series(inputs: SkillInputs) -> BucketSeries:
    """Per realized bucket, every predictor and the realized figures (module docstring).

    A bucket is left out when any of its candles is missing (fewer than bucket / interval
    candles), when open interest is missing at any candle's open ``t_k`` or at ``t_k + interval``
    (the model has no flow there either), when any candle has no ledger row for a side (outside
    the modelled history), and, necessarily, where the realized series has no row (a gap).
    """
    realized = _realized(inputs.realized, inputs.interval)
    if realized.empty:
        return BucketSeries(pd.DataFrame(columns=list(BUCKET_COLUMNS)), None)
    bucket_minutes = int(realized["bucket_minutes"].iloc[0])
    candles = _candles_in_buckets(inputs.candles, realized, bucket_minutes)
    oi = _open_interest_map(inputs.open_interest)
    oi_open = candles["open_time"].map(oi)
    oi_next = (candles["open_time"] + inputs.interval).map(oi)
    consumed = _consumed_by_candle(inputs.ledger).reindex(candles["open_time"])
    scale = oi_open.to_numpy() * candles["close"].to_numpy() / candles["open"].to_numpy()
    open_, high, low, close = (candles[c].to_numpy() for c in ("open", "high", "low", "close"))
    per_candle = pd.DataFrame(
        {
            "bucket_start": candles["bucket_start"].to_numpy(),
            "complete": (
                oi_open.notna().to_numpy()
                & oi_next.notna().to_numpy()
                & consumed.notna().all(axis=1).to_numpy()
            ),
            series_column("model", "long"): consumed["long"].to_numpy(),
            series_column("model", "short"): consumed["short"].to_numpy(),
            series_column("baseline_range", "long"): (open_ - low) * scale,
            series_column("baseline_range", "short"): (high - open_) * scale,
            series_column("baseline_return", "long"): np.maximum(0.0, open_ - close) * scale,
            series_column("baseline_return", "short"): np.maximum(0.0, close - open_) * scale,
        }
    )
    grouped = per_candle.groupby("bucket_start", sort=True)
    sums = grouped.sum(numeric_only=True).drop(columns="complete")
    candles_per_bucket = bucket_minutes * 60 // int(inputs.interval.total_seconds())
    keep = (grouped.size() == candles_per_bucket) & grouped["complete"].all()
    buckets = (
        sums[keep]
        .reset_index()
        .merge(
            realized.rename(
                columns={
                    "long_usd": series_column("realized", "long"),
                    "short_usd": series_column("realized", "short"),
                }
            ).drop(columns="bucket_minutes"),
            on="bucket_start",
            how="inner",
        )
    )
    for name in (*PREDICTORS, "realized"):
        buckets[series_column(name, "total")] = (
            buckets[series_column(name, "long")] + buckets[series_column(name, "short")]
        )
    return BucketSeries(buckets[list(BUCKET_COLUMNS)], bucket_minutes)


def skill_rows(
    series: BucketSeries,
    *,
    symbol: str,
    window_start: datetime,
    window_end: datetime,
    config_hash: str | None,
    computed_at: datetime,
) -> pd.DataFrame:
    """One ``model_skill`` row per side, predictor and metric (value NaN where undefined, which
    DuckDB stores as NULL); no rows when there is no realized series (bucket length unknown)."""
    if series.bucket_minutes is None:
        return pd.DataFrame(columns=list(SKILL_COLUMNS))
    rows = [
        {"side": side, "predictor": predictor, "metric": metric, "value": value}
        for side, predictor, metric, value in _scores(series.buckets)
    ]
    frame = pd.DataFrame(rows)
    frame.insert(0, "symbol", symbol)
    frame.insert(1, "window_start", pd.Timestamp(window_start))
    frame.insert(2, "window_end", pd.Timestamp(window_end))
    frame.insert(3, "bucket_minutes", series.bucket_minutes)
    frame["n_buckets"] = series.n_buckets
    frame["config_hash"] = config_hash
    frame["computed_at"] = pd.Timestamp(computed_at)
    return frame[list(SKILL_COLUMNS)]


def _scores(buckets: pd.DataFrame) -> Iterator[tuple[str, str, str, float]]:
    for side in SIDES:
        realized = buckets[series_column("realized", side)].to_numpy(dtype=float)
        control = buckets[series_column(CONTROL, side)].to_numpy(dtype=float)
        for predictor in PREDICTORS:
            predicted = buckets[series_column(predictor, side)].to_numpy(dtype=float)
            values = {
                "spearman": metrics.spearman(predicted, realized),
                "partial_spearman": (
                    None
                    if predictor == CONTROL
                    else metrics.partial_spearman(predicted, realized, control)
                ),
                "top_decile_recall": metrics.top_decile_recall(predicted, realized),
                "volume_ratio": metrics.volume_ratio(predicted, realized),
            }
            for metric in METRICS:
                if values[metric] is not None:
                    yield side, predictor, metric, values[metric]


def _realized(realized: pd.DataFrame, interval: timedelta) -> pd.DataFrame:
    """The realized rows sorted, checked to form one series of non-overlapping buckets."""
    frame = realized[["bucket_start", "bucket_minutes", "long_usd", "short_usd"]].copy()
    frame["bucket_start"] = frame["bucket_start"].astype("datetime64[ns]")
    frame = frame.sort_values("bucket_start", ignore_index=True)
    if frame.empty:
        return frame
    lengths = sorted(frame["bucket_minutes"].unique())
    if len(lengths) != 1:
        raise ValueError(f"realized liquidations mix bucket lengths {lengths} (minutes)")
    minutes = int(lengths[0])
    interval_minutes = interval.total_seconds() / 60
    if minutes <= 0 or minutes % interval_minutes:
        raise ValueError(
            f"realized bucket of {minutes} minutes is not a whole number of "
            f"{interval_minutes:g}-minute candles"
        )
    steps = frame["bucket_start"].diff().dropna()
    overlapping = steps < pd.Timedelta(minutes=minutes)
    if overlapping.any():
        at = frame["bucket_start"][overlapping[overlapping].index[0]]
        raise ValueError(
            f"realized buckets overlap or repeat at {at} (buckets of {minutes} minutes)"
        )
    if frame[["long_usd", "short_usd"]].isna().any().any():
        at = frame["bucket_start"][frame[["long_usd", "short_usd"]].isna().any(axis=1)].iloc[0]
        raise ValueError(f"realized bucket {at} has no long or short figure")
    return frame


def _candles_in_buckets(
    candles: pd.DataFrame, realized: pd.DataFrame, bucket_minutes: int
) -> pd.DataFrame:
    """The candles lying inside a realized bucket, with that bucket's start."""
    frame = candles[["open_time", "open", "high", "low", "close"]].copy()
    frame["open_time"] = frame["open_time"].astype("datetime64[ns]")
    frame = frame.sort_values("open_time", ignore_index=True)
    frame = pd.merge_asof(
        frame,
        realized[["bucket_start"]],
        left_on="open_time",
        right_on="bucket_start",
        direction="backward",
    )
    inside = frame["open_time"] < frame["bucket_start"] + pd.Timedelta(minutes=bucket_minutes)
    return frame[inside].reset_index(drop=True)


def _open_interest_map(open_interest: pd.DataFrame) -> pd.Series:
    known = open_interest.dropna(subset=["open_interest"])
    return pd.Series(
        known["open_interest"].to_numpy(),
        index=pd.DatetimeIndex(known["ts"].astype("datetime64[ns]")),
    )


def _consumed_by_candle(ledger: pd.DataFrame) -> pd.DataFrame:
    """Modelled liquidations per candle time, columns long and short (NaN: no ledger row)."""
    frame = ledger.assign(ts=ledger["ts"].astype("datetime64[ns]"))
    return frame.pivot(index="ts", columns="side", values="consumed_usd").reindex(
        columns=["long", "short"]
    )
