"""How unsure a saliency predictor is about a frame, and the order a person annotates in.

Once a predictor exists, the frames most worth a person's clicks are those it is least sure
about: its map is a per-pixel probability of "salient", so we score a frame by the mean
binary entropy of its map (1 bit where the predictor says 0.5, 0 where it says 0 or 1).
Until one exists, coverage decides (greedy k-center, ``annotations.suggest_frames``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from saliency_rl.data.dataset import Dataset
from saliency_rl.saliency.predictor import SaliencyPredictor

UNCERTAINTY_BATCH = 256
"""Frames read and predicted at a time, so scoring a large dataset needs little memory."""


def map_entropy(maps: np.ndarray) -> np.ndarray:
    """Mean binary entropy in bits of each map: (N, H, W) in [0, 1] -> (N,) in [0, 1]."""
    p = np.clip(maps.astype(np.float64), 1e-7, 1 - 1e-7)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))  # (N, H, W)
    return entropy.reshape(len(maps), -1).mean(axis=1)


def frame_uncertainty(
    predictor: SaliencyPredictor, dataset: Dataset, frames: Sequence[int]
) -> np.ndarray:
    """float64 (len(frames),): :func:`map_entropy` of the predictor's map of each frame."""
    frames = [int(f) for f in frames]
    scores = [np.zeros(0)]
    for start in range(0, len(frames), UNCERTAINTY_BATCH):
        rgb = dataset.frames(frames[start : start + UNCERTAINTY_BATCH], ["rgb"])["rgb"]
        scores.append(map_entropy(predictor.predict(rgb)))
    return np.concatenate(scores)


def uncertainty_of(
    predictor: SaliencyPredictor, dataset: Dataset
) -> Callable[[Sequence[int]], np.ndarray]:
    """``frames -> scores``, the form ``AnnotationStore.plan_selection`` takes."""
    return lambda frames: frame_uncertainty(predictor, dataset, frames)


def walk_order(done: Sequence[bool], uncertainty: Sequence[float] | None = None) -> list[int]:
    """Selection positions in the order the page offers them.

    Without scores, the selection's own order. With them (one per position), the annotated
    positions first in selection order, then the others least sure first; ties keep the
    selection order, so the order is deterministic.
    """
    positions = list(range(len(done)))
    if uncertainty is None:
        return positions
    if len(uncertainty) != len(done):
        raise ValueError(f"{len(uncertainty)} scores for {len(done)} positions")
    finished = [k for k in positions if done[k]]
    remaining = sorted((k for k in positions if not done[k]), key=lambda k: -uncertainty[k])
    return finished + remaining
