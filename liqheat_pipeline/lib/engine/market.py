"""The engine's input: one symbol's candles (a contiguous run, gaps allowed), open interest and
optional mark-price candles, as validated numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

_NS = "datetime64[ns]"


class ModelInputError(ValueError):
    """The engine's input is unusable; the message says which field, where and why."""


@dataclass(frozen=True, eq=False)
class MarketSeries:
    """Candles with ``open_time`` strictly increasing (naive UTC), prices and volumes as float64
    (NaN = missing volume), mark high/low aligned to ``open_time`` (NaN where no mark candle, or
    None when the symbol has none), and open-interest snapshots ``oi`` (base units) at ``oi_time``.
    """

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray
    taker_buy_volume: np.ndarray
    mark_high: np.ndarray | None = None
    mark_low: np.ndarray | None = None
    oi_time: np.ndarray = field(default_factory=lambda: np.array([], dtype=_NS))
    oi: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.float64))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "open_time", _times(self.open_time))
        n = len(self.open_time)
        for name in ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume"):
            set_(self, name, _floats(name, getattr(self, name), n))
        if (self.mark_high is None) != (self.mark_low is None):
            raise ModelInputError("mark_high and mark_low must both be given or both be None")
        if self.mark_high is not None:
            set_(self, "mark_high", _floats("mark_high", self.mark_high, n))
            set_(self, "mark_low", _floats("mark_low", self.mark_low, n))
        set_(self, "oi_time", _times(self.oi_time))
        set_(self, "oi", _floats("oi", self.oi, len(self.oi_time)))
        self._validate()

    def __len__(self) -> int:
        return len(self.open_time)

    @classmethod
    def from_frames(
        cls,
        candles: pd.DataFrame,
        open_interest: pd.DataFrame,
        mark_price_candles: pd.DataFrame | None = None,
    ) -> MarketSeries:
        """Build from SQL-contract frames (any row order); mark candles align on open_time."""
        candles = candles.sort_values("open_time", kind="stable")
        open_interest = open_interest.sort_values("ts", kind="stable")
        open_time = _times(candles["open_time"])
        mark_high = mark_low = None
        if mark_price_candles is not None:
            marks = mark_price_candles.sort_values("open_time", kind="stable")
            mark_times = _times(marks["open_time"])
            _require_increasing("mark_price_candles.open_time", mark_times)
            aligned = pd.DataFrame(
                {"high": _column(marks, "high"), "low": _column(marks, "low")}, index=mark_times
            ).reindex(open_time)
            mark_high, mark_low = aligned["high"].to_numpy(), aligned["low"].to_numpy()
        return cls(
            open_time=open_time,
            open=_column(candles, "open"),
            high=_column(candles, "high"),
            low=_column(candles, "low"),
            close=_column(candles, "close"),
            volume=_column(candles, "volume"),
            quote_volume=_column(candles, "quote_volume"),
            taker_buy_volume=_column(candles, "taker_buy_volume"),
            mark_high=mark_high,
            mark_low=mark_low,
            oi_time=_times(open_interest["ts"]),
            oi=_column(open_interest, "open_interest"),
        )

    def slice(self, start: int, stop: int) -> MarketSeries:
        """Candles ``start:stop`` with the same open-interest and mark data."""
        if start == 0 and stop >= len(self):
            return self
        part = {
            name: getattr(self, name)[start:stop]
            for name in ("open_time", "open", "high", "low", "close", "volume")
        }
        part |= {
            "quote_volume": self.quote_volume[start:stop],
            "taker_buy_volume": self.taker_buy_volume[start:stop],
        }
        if self.mark_high is not None:
            part |= {"mark_high": self.mark_high[start:stop], "mark_low": self.mark_low[start:stop]}
        return replace(self, **part)

    def _validate(self) -> None:
        _require_increasing("open_time", self.open_time)
        _require_increasing("oi_time", self.oi_time)
        prices = np.column_stack([self.open, self.high, self.low, self.close])
        bad = ~np.all(np.isfinite(prices) & (prices > 0), axis=1)
        self._refuse(bad, "open/high/low/close must be finite and > 0")
        bad = (self.low > np.minimum(self.open, self.close)) | (
            self.high < np.maximum(self.open, self.close)
        )
        self._refuse(bad, "low/high do not enclose open and close")
        for name in ("volume", "quote_volume", "taker_buy_volume"):
            values = getattr(self, name)
            self._refuse(values < 0, f"{name} is negative")
        self._refuse(self.taker_buy_volume > self.volume, "taker_buy_volume exceeds volume")
        if self.mark_high is not None:
            self._refuse(self.mark_low > self.mark_high, "mark_low is above mark_high")
            marks = np.concatenate([self.mark_high, self.mark_low])
            if (marks <= 0).any() or np.isinf(marks).any():
                raise ModelInputError("mark_high/mark_low must be > 0 (NaN = no mark candle)")
        if (self.oi < 0).any() or np.isinf(self.oi).any():
            first = int(np.flatnonzero((self.oi < 0) | np.isinf(self.oi))[0])
            raise ModelInputError(
                f"open interest at {self.oi_time[first]} is {self.oi[first]!r}; "
                "expected >= 0 base units (NaN = missing)"
            )

    def _refuse(self, bad: np.ndarray, problem: str) -> None:
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ModelInputError(
                f"candle at {self.open_time[first]}: {problem} "
                f"({int(bad.sum())} candle(s) affected)"
            )


def split_by_day(
    candles: pd.DataFrame,
    open_interest: pd.DataFrame,
    mark_price_candles: pd.DataFrame | None = None,
) -> list[tuple[np.datetime64, MarketSeries]]:
    """One market per UTC day of ``candles``: the day's candles [D, D+1) and the open-interest
    snapshots in [D 00:00, D+1 00:00], as the pipeline hands them to the engine."""
    days = _times(candles["open_time"]).astype("datetime64[D]")
    oi_times = _times(open_interest["ts"])
    mark_days = None
    if mark_price_candles is not None:
        mark_days = _times(mark_price_candles["open_time"]).astype("datetime64[D]")
    markets = []
    for day in np.unique(days):
        start = day.astype("datetime64[ns]")
        stop = (day + np.timedelta64(1, "D")).astype("datetime64[ns]")
        oi = open_interest[(oi_times >= start) & (oi_times <= stop)]
        marks = None if mark_days is None else mark_price_candles[mark_days == day]
        markets.append((day, MarketSeries.from_frames(candles[days == day], oi, marks)))
    return markets


def _times(values) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == np.dtype(_NS):
        return values
    series = pd.Series(values)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    try:
        return series.to_numpy(dtype=_NS)
    except (TypeError, ValueError) as error:
        raise ModelInputError(f"times must be naive UTC datetimes: {error}") from error


def _floats(name: str, values, n: int) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ModelInputError(f"{name}: not numbers: {error}") from error
    if len(array) != n:
        raise ModelInputError(f"{name}: {len(array)} values for {n} candles/snapshots")
    return array


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        raise ModelInputError(f"column {name!r} is missing (have {', '.join(frame.columns)})")
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64, na_value=np.nan)


def _require_increasing(name: str, times: np.ndarray) -> None:
    steps = np.diff(times.astype(np.int64))
    if (steps <= 0).any():
        first = int(np.flatnonzero(steps <= 0)[0])
        raise ModelInputError(
            f"{name} must be strictly increasing: {times[first + 1]} follows {times[first]}"
        )
