"""User-facing materialization metadata of the model assets, one set per day partition."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pandas as pd

from liqheat_pipeline.defs.metadata import percent, row_counts, usd
from liqheat_pipeline.lib.model.store import DayResult

TOP_CLUSTERS = 5
_STAT_KEYS = ("oi_gaps", "taker_fallbacks", "mark_fallbacks", "leverage_capped")


def _side_sum(frame: pd.DataFrame, column: str, side: str) -> float:
    return float(frame.loc[frame["side"] == side, column].sum())


def _closing_active(ledger: pd.DataFrame, side: str) -> float:
    rows = ledger[ledger["side"] == side]
    return float(rows["active_usd"].iloc[-1]) if len(rows) else 0.0


def _closing_coverage(ledger: pd.DataFrame, side: str) -> float:
    """The side's last known coverage of the day (NaN when open interest was never known)."""
    known = ledger.loc[(ledger["side"] == side) & ledger["coverage"].notna(), "coverage"]
    return float(known.iloc[-1]) if len(known) else float("nan")


def _largest_clusters(segments: pd.DataFrame, ledger: pd.DataFrame) -> dg.MetadataValue:
    """The day's largest active (bucket, side) cells at its last candle, as a table."""
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("price_bucket", "float"),
            dg.TableColumn("side", "string"),
            dg.TableColumn("active_usd", "int"),
        ]
    )
    if segments.empty:
        return dg.MetadataValue.table([], schema=schema)
    last_candle = ledger.iloc[-1]
    last = segments[segments["last_ts"] == last_candle["ts"]]
    active = last["weight"] * last_candle["closure_scale"]
    top = last.assign(active_usd=active).nlargest(TOP_CLUSTERS, "active_usd")
    records = [
        dg.TableRecord(
            {"price_bucket": float(bucket), "side": str(side), "active_usd": round(float(active))}
        )
        for bucket, side, active in zip(
            top["price_bucket"], top["side"], top["active_usd"], strict=True
        )
    ]
    return dg.MetadataValue.table(records, schema=schema)


def _snapshot_rows(segments: pd.DataFrame, ledger: pd.DataFrame) -> int:
    """Rows the heatmap_snapshots view returns for these segments: their candles."""
    times = ledger["ts"].to_numpy()[::2]
    first = np.searchsorted(times, segments["first_ts"].to_numpy())
    last = np.searchsorted(times, segments["last_ts"].to_numpy())
    return int((last - first + 1).sum())


def day_metadata(result: DayResult) -> dict[str, dict[str, dg.MetadataValue]]:
    """Metadata per model output name for one computed day (that partition's own figures)."""
    tables = result.tables
    ledger = tables["candle_ledger"].sort_values("ts", kind="stable")
    openings = tables["level_openings"]
    closing = {
        f"active_{side}_usd": usd(_closing_active(ledger, side)) for side in ("long", "short")
    }
    liquidated = {
        f"liquidated_{side}_usd": usd(_side_sum(ledger, "consumed_usd", side))
        for side in ("long", "short")
    }
    # Step 7: how much of the open interest the modelled levels account for (warm-up visible).
    coverage = {
        f"coverage_{side}": percent(_closing_coverage(ledger, side)) for side in ("long", "short")
    }
    counters = {key: dg.MetadataValue.int(int(result.stats.get(key, 0))) for key in _STAT_KEYS}
    common = {"config_hash": dg.MetadataValue.text(result.config_hash)}
    segments = tables["snapshot_segments"]
    clusters = _largest_clusters(segments, ledger)
    return {
        "model_state": {
            **common,
            **row_counts("model_state", len(result.state_levels)),
            **closing,
            **coverage,
            **liquidated,
            **counters,
            "active_levels": dg.MetadataValue.int(len(result.state_levels)),
            "largest_active_clusters": clusters,
            "assumptions": dg.MetadataValue.json(json.loads(result.assumptions_json)),
        },
        "level_openings": {
            **common,
            **row_counts("level_openings", len(openings)),
            "opened_long_usd": usd(_side_sum(openings, "notional_usd", "long")),
            "opened_short_usd": usd(_side_sum(openings, "notional_usd", "short")),
            "leverage_capped": counters["leverage_capped"],
        },
        "level_consumptions": {
            **common,
            **row_counts("level_consumptions", len(tables["level_consumptions"])),
            **liquidated,
        },
        "candle_ledger": {
            **common,
            **row_counts("candle_ledger", len(ledger)),
            **closing,
            **coverage,
            **liquidated,
            "closed_usd": usd(float(ledger["closed_usd"].sum())),
            "oi_gaps": counters["oi_gaps"],
        },
        "heatmap_snapshots": {
            **common,
            **row_counts("snapshot_segments", len(segments)),
            "snapshot_rows": dg.MetadataValue.int(_snapshot_rows(segments, ledger)),
            "by_leverage_segments": dg.MetadataValue.int(
                len(tables["snapshot_segments_by_leverage"])
            ),
            **closing,
            "largest_active_clusters": clusters,
        },
    }
