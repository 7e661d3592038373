"""Aggregate scores of a few seeds with their uncertainty, as rliable (Agarwal et al., "Deep
RL at the Edge of the Statistical Precipice", NeurIPS 2021) computes them.

- :func:`iqm`: the interquartile mean, the mean of the middle 50 % of all scores (runs x
  tasks pooled): ``int(0.25 n)`` scores cut from each end, as ``scipy.stats.trim_mean(x,
  0.25)``, which rliable's ``aggregate_iqm`` calls. Robust to one outlying seed, and with
  far less variance than the median at 3-10 runs.
- :func:`stratified_bootstrap_ci`: the percentile interval of a statistic under the
  stratified bootstrap: every replicate redraws, within each task separately, as many runs
  as it has, with replacement (rliable's ``StratifiedBootstrap`` without task bootstrap),
  and the interval is the (1 - size) / 2 and (1 + size) / 2 percentiles of the replicates'
  statistics (``numpy.percentile``'s linear interpolation, as ``arch``'s percentile
  method). rliable defaults to 50,000 replicates; 10,000 give the same interval to about
  1 % of its width for 5 runs and run in well under a second here.

Scores are an array of shape (runs, tasks); a single task is (runs,) or (runs, 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BOOTSTRAP_REPS = 10_000


def _matrix(scores: np.ndarray | list) -> np.ndarray:
    x = np.asarray(scores, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"scores must be (runs,) or (runs, tasks) and not empty, got {x.shape}")
    return x


def iqm(scores: np.ndarray | list) -> float:
    """Interquartile mean of all scores pooled: the mean after cutting ``int(0.25 n)`` of
    the n scores from each end (n < 4 cuts none)."""
    x = np.sort(_matrix(scores), axis=None)
    cut = int(0.25 * len(x))
    return float(x[cut : len(x) - cut].mean())


def stratified_bootstrap_ci(
    scores: np.ndarray | list,
    statistic: Callable[[np.ndarray], float] = iqm,
    *,
    size: float = 0.95,
    reps: int = BOOTSTRAP_REPS,
    seed: int = 0,
) -> tuple[float, float]:
    """(low, high) percentile interval of ``statistic`` over ``reps`` stratified-bootstrap
    replicates of ``scores`` (runs, tasks): runs redrawn with replacement within each task.

    ``statistic`` takes a (runs, tasks) array. Seeded: the same scores give the same
    interval. One run per task gives the degenerate interval (s, s).
    """
    x = _matrix(scores)
    if not 0 < size < 1:
        raise ValueError(f"size must be in (0, 1), got {size}")
    runs, tasks = x.shape
    rng = np.random.default_rng(seed)
    columns = np.arange(tasks)[None, None, :]  # (1, 1, T)
    rows = rng.integers(0, runs, size=(reps, runs, tasks))  # (R, N, T): per task, own draws
    replicates = x[rows, columns]  # (R, N, T)
    if statistic is iqm:
        values = _iqms(replicates)  # the same numbers, without a Python call per replicate
    else:
        values = np.array([statistic(r) for r in replicates])
    tail = 100 * (1 - size) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _iqms(replicates: np.ndarray) -> np.ndarray:
    """:func:`iqm` of each (N, T) replicate of (R, N, T), vectorised."""
    flat = np.sort(replicates.reshape(len(replicates), -1), axis=1)
    cut = int(0.25 * flat.shape[1])
    return flat[:, cut : flat.shape[1] - cut].mean(axis=1)


def mean_std(scores: np.ndarray | list) -> tuple[float, float]:
    """Mean and population standard deviation (ddof 0, as the results tables report)."""
    x = np.asarray(scores, dtype=float).ravel()
    return float(x.mean()), float(x.std())


__all__ = ["BOOTSTRAP_REPS", "iqm", "mean_std", "stratified_bootstrap_ci"]
