"""Skill metrics over aligned per-bucket series (numpy only; no scipy at runtime).

Every metric returns NaN, never raises, when it is undefined for the data: fewer than
``MIN_BUCKETS`` buckets, a constant input where ranks or a top set would be arbitrary, or a
zero realized total. Inputs must be finite and of equal length (anything else is a bug of the
caller and raises ValueError).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

MIN_BUCKETS = 3
TOP_SHARE = 0.1
# A residual whose sum of squares is at most this share of the ranks' own is zero: exact zeros do
# not survive floating-point least squares (rounding leaves ~1e-30 of it), while a genuine
# residual of n ranks keeps at least ~1/n^3 of it.
_ZERO_RESIDUAL = 1e-20

ArrayLike = npt.ArrayLike


def spearman(x: ArrayLike, y: ArrayLike) -> float:
    """Spearman's rho: the Pearson correlation of the average-tie ranks of ``x`` and ``y``."""
    x, y = _aligned(x, y)
    if len(x) < MIN_BUCKETS:
        return math.nan
    return _pearson(average_ranks(x), average_ranks(y))


def partial_spearman(x: ArrayLike, y: ArrayLike, control: ArrayLike) -> float:
    """Rank correlation of ``x`` and ``y`` with ``control`` partialled out: the ranks of ``x``
    and of ``y`` are each regressed on the ranks of ``control`` (with intercept) and the
    Pearson correlation of the two residual vectors is returned."""
    x, y, control = _aligned(x, y, control)
    if len(x) < MIN_BUCKETS:
        return math.nan
    design = np.column_stack([np.ones(len(x)), average_ranks(control)])
    residuals = []
    for ranks in (average_ranks(x), average_ranks(y)):
        coefficients, *_ = np.linalg.lstsq(design, ranks, rcond=None)
        residual = ranks - design @ coefficients
        if residual @ residual <= _ZERO_RESIDUAL * (ranks @ ranks):
            return math.nan  # the control explains this series' ranks entirely (or it is constant)
        residuals.append(residual)
    return _pearson(*residuals)


def top_set(values: ArrayLike) -> npt.NDArray[np.bool_]:
    """Mask of the top ``ceil(TOP_SHARE * n)`` buckets by value. Ties at the cut are broken in
    favour of the earlier bucket (stable order), so the set always has exactly that size."""
    values = np.asarray(values, dtype=float)
    size = math.ceil(TOP_SHARE * len(values))
    order = np.argsort(-values, kind="stable")
    mask = np.zeros(len(values), dtype=bool)
    mask[order[:size]] = True
    return mask


def top_decile_recall(predicted: ArrayLike, realized: ArrayLike) -> float:
    """Share of the realized top-10 % buckets that are also in the predictor's top 10 %
    (``top_set`` of each; NaN when either series is constant, as its top set would be only
    the tie rule)."""
    predicted, realized = _aligned(predicted, realized)
    if len(predicted) < MIN_BUCKETS or _constant(predicted) or _constant(realized):
        return math.nan
    realized_top = top_set(realized)
    return float((top_set(predicted) & realized_top).sum() / realized_top.sum())


def volume_ratio(predicted: ArrayLike, realized: ArrayLike) -> float:
    """Predicted USD sum / realized USD sum (NaN when the realized sum is zero)."""
    predicted, realized = _aligned(predicted, realized)
    realized_sum = float(realized.sum())
    if len(predicted) < MIN_BUCKETS or realized_sum == 0:
        return math.nan
    return float(predicted.sum()) / realized_sum


def average_ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ranks 1..n, tied values sharing the average of the ranks they span."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # Runs of equal values: each run's first position, then its average 1-based rank.
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    run_ranks = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(run_ranks, ends - starts)
    return ranks


def _pearson(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    if denominator == 0:
        return math.nan
    return float(np.clip((x @ y) / denominator, -1.0, 1.0))


def _constant(values: npt.NDArray[np.float64]) -> bool:
    return bool(values.min() == values.max())


def _aligned(*series: ArrayLike) -> list[npt.NDArray[np.float64]]:
    arrays = [np.asarray(values, dtype=float).ravel() for values in series]
    if len({len(array) for array in arrays}) > 1:
        lengths = ", ".join(str(len(array)) for array in arrays)
        raise ValueError(f"skill metrics need series of equal length, got lengths {lengths}")
    if not all(np.isfinite(array).all() for array in arrays):
        raise ValueError("skill metrics need finite values (drop undefined buckets first)")
    return arrays
