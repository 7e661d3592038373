"""IQM and the stratified-bootstrap interval against hand-computed values."""

import numpy as np
import pytest
import scipy.stats

from saliency_rl.experiments.stats import iqm, mean_std, stratified_bootstrap_ci


def test_iqm_cuts_a_quarter_from_each_end():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == 4.5  # mean of 3, 4, 5, 6
    assert iqm([1, 2, 3, 4, 100]) == 3.0  # int(1.25) = 1 cut each end: mean of 2, 3, 4
    assert iqm([1, 2, 30]) == 11.0  # fewer than 4 scores: nothing cut
    # runs x tasks are pooled: the middle half of all 8 scores
    assert iqm([[1, 8], [2, 7], [3, 6], [4, 5]]) == 4.5
    x = np.random.default_rng(0).normal(size=(5, 4))
    assert iqm(x) == pytest.approx(scipy.stats.trim_mean(x, 0.25, axis=None))


def test_bootstrap_interval_of_a_two_point_task():
    """Mean of 2 draws from {0, 1}: 0 (p 1/4), 0.5 (p 1/2), 1 (p 1/4)."""
    mean = lambda r: float(r.mean())  # noqa: E731
    assert stratified_bootstrap_ci([0.0, 1.0], mean, reps=4000) == (0.0, 1.0)
    assert stratified_bootstrap_ci([0.0, 1.0], mean, size=0.4, reps=4000) == (0.5, 0.5)


def test_bootstrap_is_stratified_by_task():
    """Runs are redrawn within each task: two tasks constant within themselves give every
    replicate the same mean, where pooled resampling would not."""
    scores = [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]  # (runs, tasks)
    assert stratified_bootstrap_ci(scores, lambda r: float(r.mean())) == (0.5, 0.5)
    assert stratified_bootstrap_ci(scores) == (0.5, 0.5)  # IQM of {0, 0, 0, 1, 1, 1}


def test_bootstrap_is_seeded_and_degenerate_with_one_run():
    x = np.random.default_rng(1).normal(500, 100, (5, 4))
    assert stratified_bootstrap_ci(x) == stratified_bootstrap_ci(x)
    low, high = stratified_bootstrap_ci(x)
    assert low < iqm(x) < high
    assert stratified_bootstrap_ci([[700.0, 300.0]]) == (500.0, 500.0)
    with pytest.raises(ValueError, match="size"):
        stratified_bootstrap_ci(x, size=1.5)
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
