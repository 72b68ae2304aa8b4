"""Skill metrics against scipy (test-only) on hand-made series and hypothesis-drawn ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from liqheat_pipeline.lib.skill.metrics import (
    average_ranks,
    partial_spearman,
    spearman,
    top_decile_recall,
    top_set,
    volume_ratio,
)

SETTINGS = settings(max_examples=150, deadline=None)


def series(min_size: int = 0, max_size: int = 60):
    """Float series that often tie: small integers, zeros and wide magnitudes."""
    values = st.one_of(
        st.integers(0, 4).map(float),
        st.floats(0, 1e9, allow_nan=False, allow_infinity=False),
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    )
    return st.lists(values, min_size=min_size, max_size=max_size)


@st.composite
def aligned(draw, count: int, min_size: int = 0):
    n = draw(st.integers(min_size, 60))
    return [np.array(draw(series(n, n))) for _ in range(count)]


def _scipy_partial(x, y, control) -> float:
    design = np.column_stack([np.ones(len(x)), stats.rankdata(control)])
    residuals = []
    for values in (x, y):
        ranks = stats.rankdata(values)
        coefficients, *_ = np.linalg.lstsq(design, ranks, rcond=None)
        residuals.append(ranks - design @ coefficients)
    return stats.pearsonr(*residuals).statistic


def _distinct(values, at_least: int) -> bool:
    return len(np.unique(values)) >= at_least


# --- hand-made series ---------------------------------------------------------------------


def test_average_ranks_share_the_mean_rank_of_a_tie():
    assert average_ranks(np.array([10.0, 20.0, 10.0, 5.0, 20.0, 20.0])).tolist() == [
        2.5,
        5.0,
        2.5,
        1.0,
        5.0,
        5.0,
    ]


def test_spearman_of_monotone_and_reversed_series():
    x = [1.0, 5.0, 2.0, 8.0, 3.0]
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert spearman(x, [-v for v in x]) == pytest.approx(-1.0)


def test_spearman_with_ties_matches_scipy():
    x = [0.0, 0.0, 1.0, 3.0, 3.0, 3.0, 7.0, 2.0]
    y = [1.0, 0.0, 0.0, 5.0, 2.0, 2.0, 9.0, 9.0]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_partial_spearman_removes_what_the_control_explains():
    # y follows the control exactly; x = control + independent noise: the partial correlation
    # of x and y given the control is undefined (y has no residual) ...
    control = np.arange(10.0)
    x = control + np.array([0.3, -0.2, 0.5, -0.4, 0.1, 0.0, -0.3, 0.2, 0.4, -0.1]) * 3
    assert math.isnan(partial_spearman(x, control * 2, control))
    # ... and a series carrying information beyond the control keeps a known value.
    y = x + np.array([1, -1, 1, -1, 1, -1, 1, -1, 1, -1]) * 0.01
    assert partial_spearman(x, y, control) == pytest.approx(
        _scipy_partial(x, y, control), abs=1e-12
    )


def test_top_set_has_ceil_tenth_and_breaks_ties_towards_the_earlier_bucket():
    values = [5.0, 9.0, 9.0, 1.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # n = 11 -> 2 buckets
    assert np.flatnonzero(top_set(values)).tolist() == [1, 2]
    assert top_set(np.arange(20.0)).sum() == 2
    assert top_set(np.arange(21.0)).sum() == 3


def test_top_decile_recall_counts_shared_top_buckets():
    realized = np.arange(20.0)  # top 2: buckets 18, 19
    predicted = np.zeros(20)
    predicted[[19, 3]] = [10.0, 20.0]  # predictor's top 2: buckets 3, 19
    assert top_decile_recall(predicted, realized) == 0.5
    assert top_decile_recall(realized * 3, realized) == 1.0


def test_volume_ratio_is_the_ratio_of_sums():
    assert volume_ratio([1.0, 2.0, 3.0], [2.0, 2.0, 8.0]) == 0.5


@pytest.mark.parametrize(
    ("metric", "args"),
    [
        (spearman, ([1.0, 2.0], [2.0, 1.0])),
        (spearman, ([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])),
        (spearman, ([], [])),
        (partial_spearman, ([1.0, 2.0], [2.0, 1.0], [1.0, 2.0])),
        (partial_spearman, ([3.0, 3.0, 3.0, 3.0], [1.0, 2.0, 4.0, 3.0], [1.0, 2.0, 3.0, 5.0])),
        (top_decile_recall, ([1.0, 2.0], [1.0, 2.0])),
        (top_decile_recall, ([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0])),
        (top_decile_recall, ([2.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0])),
        (volume_ratio, ([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])),
        (volume_ratio, ([1.0, 2.0], [1.0, 2.0])),
    ],
)
def test_undefined_metrics_are_nan(metric, args):
    assert math.isnan(metric(*args))


def test_mismatched_or_non_finite_series_raise():
    with pytest.raises(ValueError, match="equal length"):
        spearman([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        volume_ratio([1.0, math.nan, 3.0], [1.0, 2.0, 3.0])


# --- properties against scipy -------------------------------------------------------------


@SETTINGS
@given(aligned(2))
def test_average_ranks_equal_scipy_rankdata(pair):
    values, _ = pair
    np.testing.assert_array_equal(average_ranks(values), stats.rankdata(values))


@SETTINGS
@given(aligned(2))
def test_spearman_equals_scipy(pair):
    x, y = pair
    expected = (
        stats.spearmanr(x, y).statistic
        if len(x) >= 3 and _distinct(x, 2) and _distinct(y, 2)
        else math.nan
    )
    assert spearman(x, y) == pytest.approx(expected, abs=1e-9, nan_ok=True)


@SETTINGS
@given(aligned(3, min_size=3))
def test_partial_spearman_equals_lstsq_residual_correlation(triple):
    x, y, control = triple
    value = partial_spearman(x, y, control)
    if math.isnan(value):
        # Undefined only when a residual vanishes: that series' ranks are an affine function
        # of the control's (constant included).
        design = np.column_stack([np.ones(len(x)), stats.rankdata(control)])
        vanishes = [
            np.allclose(
                design @ np.linalg.lstsq(design, stats.rankdata(v), rcond=None)[0],
                stats.rankdata(v),
            )
            for v in (x, y)
        ]
        assert any(vanishes)
    else:
        assert value == pytest.approx(_scipy_partial(x, y, control), abs=1e-9)


@SETTINGS
@given(aligned(2))
def test_top_decile_recall_equals_the_ordinal_rank_definition(pair):
    predicted, realized = pair
    value = top_decile_recall(predicted, realized)
    if len(realized) < 3 or not _distinct(predicted, 2) or not _distinct(realized, 2):
        assert math.isnan(value)
        return
    size = math.ceil(len(realized) / 10)
    # scipy's ordinal ranks of the negated values: ties keep their order of appearance.
    predicted_top = stats.rankdata(-predicted, method="ordinal") <= size
    realized_top = stats.rankdata(-realized, method="ordinal") <= size
    assert value == (predicted_top & realized_top).sum() / size


@SETTINGS
@given(aligned(2))
def test_volume_ratio_equals_the_ratio_of_sums(pair):
    predicted, realized = pair
    expected = (
        predicted.sum() / realized.sum() if len(realized) >= 3 and realized.sum() != 0 else math.nan
    )
    assert volume_ratio(predicted, realized) == pytest.approx(expected, nan_ok=True)
