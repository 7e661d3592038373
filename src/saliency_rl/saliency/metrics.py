"""Saliency metrics: max F-beta and mean absolute error (MAE), as reported by PiCANet and ViSaRL.

Protocol (the salient-object-detection convention of Achanta et al., CVPR 2009, as in
the evaluation of PiCANet, Liu et al. CVPR 2018, whose metrics ViSaRL reports for its
predictor):

- Maps are compared at the 8-bit precision they are stored in (``maps.map_to_uint8``).
- Ground truth is binarised at half its range: salient where ``gt_u8 > 127`` (gt >= 0.5).
  For our Gaussian clicks this is a disc of radius about 1.18 sigma around each click.
- Predictions are binarised at 256 thresholds: salient where ``pred_u8 > t``,
  t = 0, 1, ..., 255 (t = 255 marks nothing, so an all-zero prediction scores F = 0).
- At each threshold, precision = TP / (TP + FP) and recall = TP / (TP + FN) are computed
  per image (0 when the denominator is 0) and averaged over images; F-beta is computed
  from the mean precision and mean recall:
  F = (1 + beta^2) P R / (beta^2 P + R), beta^2 = 0.3 (Achanta et al. 2009) to weigh
  precision more than recall.
- max F-beta is the largest F over the 256 thresholds.
- Images whose binarised ground truth is empty (no visible salient point) have no recall,
  so they are left out of F-beta; they count in MAE.
- MAE is the mean over images and pixels of |pred - gt| on maps in [0, 1] (no
  binarisation; float maps as given).
"""

from __future__ import annotations

import numpy as np

from saliency_rl.saliency.maps import map_to_uint8

BETA2 = 0.3  # Achanta et al. 2009; PiCANet and ViSaRL use the same
THRESHOLDS = 256


def precision_recall(
    predictions: np.ndarray, ground_truth: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image precision and recall at the 256 thresholds (see the module docstring).

    predictions, ground_truth: (N, H, W) float in [0, 1]
    returns: precision (N, 256), recall (N, 256), and a bool (N,) mask of the images whose
        binarised ground truth is not empty
    """
    if np.shape(predictions) != np.shape(ground_truth):
        raise ValueError(f"shapes differ: {np.shape(predictions)} vs {np.shape(ground_truth)}")
    pred = map_to_uint8(predictions).reshape(len(predictions), -1)  # (N, P)
    truth = map_to_uint8(ground_truth).reshape(len(ground_truth), -1) > 127  # (N, P)
    precision = np.zeros((len(pred), THRESHOLDS))
    recall = np.zeros((len(pred), THRESHOLDS))
    for i, (p, t) in enumerate(zip(pred, truth, strict=True)):
        # Histograms of the predicted level over salient and over all pixels; the counts
        # above threshold t are suffix sums from level t + 1.
        hits = np.bincount(p[t], minlength=256)[::-1].cumsum()[::-1]  # hits[v]: pred >= v
        marked = np.bincount(p, minlength=256)[::-1].cumsum()[::-1]
        tp = np.append(hits[1:], 0)  # pred > t for t = 0..255
        positive = np.append(marked[1:], 0)
        precision[i] = np.divide(tp, positive, out=np.zeros(THRESHOLDS), where=positive > 0)
        if t.any():
            recall[i] = tp / t.sum()
    return precision, recall, truth.any(axis=1)


def f_beta_curve(
    predictions: np.ndarray, ground_truth: np.ndarray, beta2: float = BETA2
) -> np.ndarray:
    """F-beta (256,) at each threshold, from precision and recall averaged over images."""
    precision, recall, valid = precision_recall(predictions, ground_truth)
    if not valid.any():
        raise ValueError("F-beta needs at least one image whose ground truth marks some pixel")
    p, r = precision[valid].mean(axis=0), recall[valid].mean(axis=0)
    denominator = beta2 * p + r
    return np.divide((1 + beta2) * p * r, denominator, out=np.zeros_like(p), where=denominator > 0)


def max_f_beta(predictions: np.ndarray, ground_truth: np.ndarray, beta2: float = BETA2) -> float:
    """The largest F-beta over the 256 thresholds (see the module docstring)."""
    return float(f_beta_curve(predictions, ground_truth, beta2).max())


def mean_absolute_error(predictions: np.ndarray, ground_truth: np.ndarray) -> float:
    """Mean of |pred - gt| over all images and pixels, maps in [0, 1]."""
    predictions = np.asarray(predictions, dtype=np.float64)
    ground_truth = np.asarray(ground_truth, dtype=np.float64)
    if predictions.shape != ground_truth.shape:
        raise ValueError(f"shapes differ: {predictions.shape} vs {ground_truth.shape}")
    return float(np.abs(predictions - ground_truth).mean())


def saliency_metrics(predictions: np.ndarray, ground_truth: np.ndarray) -> dict[str, float]:
    """``{"max_f_beta", "best_threshold", "mae", "frames", "frames_with_salient_pixels"}``."""
    curve = f_beta_curve(predictions, ground_truth)
    valid = (map_to_uint8(ground_truth) > 127).reshape(len(ground_truth), -1).any(axis=1)
    return {
        "max_f_beta": float(curve.max()),
        "best_threshold": float(int(curve.argmax()) / 255.0),
        "mae": mean_absolute_error(predictions, ground_truth),
        "frames": int(len(predictions)),
        "frames_with_salient_pixels": int(valid.sum()),
    }
