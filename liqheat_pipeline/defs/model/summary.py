"""User-facing materialization metadata of the model assets (what the Dagster UI shows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg
import pandas as pd

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


def _percent(value: float) -> dg.MetadataValue:
    return dg.MetadataValue.text("unknown" if pd.isna(value) else f"{value:.1%}")


def _per_day(results: Sequence[DayResult]) -> pd.DataFrame:
    rows = []
    for result in results:
        ledger = result.tables["candle_ledger"].sort_values("ts", kind="stable")
        rows.append(
            {
                "day": result.day.isoformat(),
                "levels opened": len(result.tables["level_openings"]),
                "liquidated long USD": _side_sum(ledger, "consumed_usd", "long"),
                "liquidated short USD": _side_sum(ledger, "consumed_usd", "short"),
                "closed USD": float(ledger["closed_usd"].sum()),
                "active long USD (end)": _closing_active(ledger, "long"),
                "active short USD (end)": _closing_active(ledger, "short"),
                "coverage long (end)": _closing_coverage(ledger, "long"),
                "coverage short (end)": _closing_coverage(ledger, "short"),
                **{key: int(result.stats.get(key, 0)) for key in _STAT_KEYS},
            }
        )
    return pd.DataFrame(rows)


def _per_day_markdown(per_day: pd.DataFrame) -> str:
    shown = per_day.copy()
    for column in ("coverage long (end)", "coverage short (end)"):
        shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
    return shown.to_markdown(index=False, floatfmt=",.0f")


def _largest_clusters(snapshots: pd.DataFrame) -> pd.DataFrame:
    if snapshots.empty:
        return pd.DataFrame(columns=["bucket", "side", "USD"])
    last = snapshots[snapshots["ts"] == snapshots["ts"].max()]
    top = last.nlargest(TOP_CLUSTERS, "active_usd")
    return pd.DataFrame(
        {"bucket": top["price_bucket"], "side": top["side"], "USD": top["active_usd"].round(0)}
    )


def model_metadata(
    results: Sequence[DayResult], written: Mapping[str, int]
) -> dict[str, dict[str, dg.MetadataValue]]:
    """Metadata per model output name, for the days just written."""
    per_day = _per_day(results)
    last = results[-1]
    openings = pd.concat([r.tables["level_openings"] for r in results], ignore_index=True)
    closing = {
        "active_long_usd": dg.MetadataValue.float(float(per_day["active long USD (end)"].iloc[-1])),
        "active_short_usd": dg.MetadataValue.float(
            float(per_day["active short USD (end)"].iloc[-1])
        ),
    }
    liquidated = {
        "liquidated_long_usd": dg.MetadataValue.float(float(per_day["liquidated long USD"].sum())),
        "liquidated_short_usd": dg.MetadataValue.float(
            float(per_day["liquidated short USD"].sum())
        ),
    }
    # Step 7: how much of the open interest the modelled levels account for (warm-up visible).
    coverage = {
        f"coverage_{side}": _percent(per_day[f"coverage {side} (end)"].iloc[-1])
        for side in ("long", "short")
    }
    counters = {key: dg.MetadataValue.int(int(per_day[key].sum())) for key in _STAT_KEYS}
    common = {
        "config_hash": dg.MetadataValue.text(last.config_hash),
        "days": dg.MetadataValue.text(f"{results[0].day}…{last.day} ({len(results)})"),
    }
    clusters = _largest_clusters(last.tables["heatmap_snapshots"])

    def rows(table: str) -> dict[str, dg.MetadataValue]:
        return {
            "dagster/table_name": dg.MetadataValue.text(table),
            "rows_written": dg.MetadataValue.int(int(written[table])),
        }

    return {
        "model_state": {
            **common,
            **rows("model_state"),
            **closing,
            **coverage,
            **liquidated,
            **counters,
            "active_levels": dg.MetadataValue.int(len(last.state_levels)),
            "largest_active_clusters": dg.MetadataValue.md(clusters.to_markdown(index=False)),
            "per_day": dg.MetadataValue.md(_per_day_markdown(per_day)),
            "assumptions": dg.MetadataValue.text(last.assumptions_json),
        },
        "level_openings": {
            **common,
            **rows("level_openings"),
            "opened_long_usd": dg.MetadataValue.float(_side_sum(openings, "notional_usd", "long")),
            "opened_short_usd": dg.MetadataValue.float(
                _side_sum(openings, "notional_usd", "short")
            ),
            "leverage_capped": counters["leverage_capped"],
        },
        "level_consumptions": {**common, **rows("level_consumptions"), **liquidated},
        "candle_ledger": {
            **common,
            **rows("candle_ledger"),
            **closing,
            **coverage,
            **liquidated,
            "oi_gaps": counters["oi_gaps"],
        },
        "heatmap_snapshots": {
            **common,
            **rows("heatmap_snapshots"),
            "rows_written_by_leverage": dg.MetadataValue.int(
                int(written["heatmap_snapshots_by_leverage"])
            ),
            **closing,
            "largest_active_clusters": dg.MetadataValue.md(clusters.to_markdown(index=False)),
        },
    }
