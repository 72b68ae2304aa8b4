"""The state carried from one run of the engine to the next: the active levels with their
remaining notional, the bucket size and the last candle processed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from liqheat_pipeline.lib.engine.market import ModelInputError

STATE_FORMAT = "liqheat-model-state/1"
SIDES = ("long", "short")
# The engine's side codes index SIDES.
LONG, SHORT = 0, 1
LEVEL_COLUMNS = (
    "level_id",
    "created_at",
    "side",
    "leverage",
    "tier_index",
    "entry_price",
    "liq_price",
    "price_bucket",
    "notional_usd",
    "remaining_usd",
)
_FLOAT_COLUMNS = ("entry_price", "liq_price", "price_bucket", "notional_usd", "remaining_usd")


@dataclass(frozen=True, eq=False)
class ModelState:
    """Active levels (sorted by level_id) as column arrays; ``side`` is 0 = long, 1 = short."""

    symbol: str
    config_hash: str
    bucket_size: float | None
    last_candle_time: pd.Timestamp | None
    level_id: np.ndarray
    created_at: np.ndarray
    side: np.ndarray
    leverage: np.ndarray
    tier_index: np.ndarray
    entry_price: np.ndarray
    liq_price: np.ndarray
    price_bucket: np.ndarray
    notional_usd: np.ndarray
    remaining_usd: np.ndarray

    @classmethod
    def empty(cls, symbol: str, config_hash: str, bucket_size: float | None) -> ModelState:
        return cls.from_columns(symbol, config_hash, bucket_size, None, {})

    @classmethod
    def from_columns(
        cls,
        symbol: str,
        config_hash: str,
        bucket_size: float | None,
        last_candle_time: pd.Timestamp | None,
        columns: dict[str, np.ndarray],
    ) -> ModelState:
        """Build from per-level arrays (missing ones empty), sorted by level_id."""
        order = np.argsort(columns.get("level_id", np.array([], np.int64)), kind="stable")

        def column(name: str, dtype) -> np.ndarray:
            return np.asarray(columns.get(name, np.array([], dtype)), dtype=dtype)[order]

        return cls(
            symbol=symbol,
            config_hash=config_hash,
            bucket_size=bucket_size,
            last_candle_time=last_candle_time,
            level_id=column("level_id", np.int64),
            created_at=column("created_at", "datetime64[ns]"),
            side=column("side", np.int8),
            leverage=column("leverage", np.int64),
            tier_index=column("tier_index", np.int64),
            **{name: column(name, np.float64) for name in _FLOAT_COLUMNS},
        )

    def __len__(self) -> int:
        return len(self.level_id)

    def metadata(self) -> dict[str, Any]:
        """JSON-able scalars of the state (the levels travel in :meth:`levels_frame`)."""
        return {
            "format": STATE_FORMAT,
            "symbol": self.symbol,
            "config_hash": self.config_hash,
            "bucket_size": self.bucket_size,
            "last_candle_time": (
                None if self.last_candle_time is None else self.last_candle_time.isoformat()
            ),
            "active_levels": len(self),
        }

    def levels_frame(self) -> pd.DataFrame:
        """One row per active level, with plain DuckDB-storable column types."""
        return pd.DataFrame(
            {
                "level_id": self.level_id,
                "created_at": self.created_at,
                "side": np.asarray(SIDES, dtype=object)[self.side],
                "leverage": self.leverage,
                "tier_index": self.tier_index,
                **{name: getattr(self, name) for name in _FLOAT_COLUMNS},
            },
            columns=list(LEVEL_COLUMNS),
        )

    @classmethod
    def restore(cls, metadata: dict[str, Any], levels_frame: pd.DataFrame) -> ModelState:
        """Rebuild a state from :meth:`metadata` and :meth:`levels_frame` (e.g. from DuckDB)."""
        if metadata.get("format") != STATE_FORMAT:
            raise ModelInputError(
                f"state metadata format {metadata.get('format')!r} is not {STATE_FORMAT!r}"
            )
        missing = [name for name in LEVEL_COLUMNS if name not in levels_frame.columns]
        if missing:
            raise ModelInputError(f"state levels frame lacks column(s) {', '.join(missing)}")
        if len(levels_frame) != metadata.get("active_levels"):
            raise ModelInputError(
                f"state metadata announces {metadata.get('active_levels')} active levels, "
                f"the levels frame holds {len(levels_frame)}"
            )
        sides = levels_frame["side"].astype(str).to_numpy()
        unknown = ~np.isin(sides, SIDES)
        if unknown.any():
            raise ModelInputError(f"state level side {sides[unknown][0]!r} is not long/short")
        if levels_frame[list(LEVEL_COLUMNS)].isna().any().any():
            raise ModelInputError("state levels frame has missing values")
        last = metadata.get("last_candle_time")
        columns = {name: levels_frame[name].to_numpy() for name in LEVEL_COLUMNS if name != "side"}
        columns["created_at"] = pd.to_datetime(levels_frame["created_at"]).to_numpy(
            "datetime64[ns]"
        )
        columns["side"] = (sides == "short").astype(np.int8)
        bucket_size = metadata.get("bucket_size")
        return cls.from_columns(
            symbol=str(metadata["symbol"]),
            config_hash=str(metadata["config_hash"]),
            bucket_size=None if bucket_size is None else float(bucket_size),
            last_candle_time=None if last is None else pd.Timestamp(last),
            columns=columns,
        )
