"""Max F-beta and MAE on hand-made cases."""

import numpy as np
import pytest

from saliency_rl.saliency.maps import clicks_to_map
from saliency_rl.saliency.metrics import (
    f_beta_curve,
    max_f_beta,
    mean_absolute_error,
    precision_recall,
    saliency_metrics,
)


def gaussian_maps():
    return np.stack(
        [
            clicks_to_map(np.array([[10.0, 12.0]]), 32, 32),
            clicks_to_map(np.array([[20.0, 5.0], [4.0, 28.0]]), 32, 32),
        ]
    )


def test_perfect_prediction_scores_one_and_zero_error():
    truth = gaussian_maps()
    assert max_f_beta(truth, truth) == pytest.approx(1.0)
    assert mean_absolute_error(truth, truth) == 0.0
    metrics = saliency_metrics(truth, truth)
    assert (
        metrics["max_f_beta"] == pytest.approx(1.0) and metrics["frames_with_salient_pixels"] == 2
    )


def test_empty_prediction_scores_zero():
    truth = gaussian_maps()
    empty = np.zeros_like(truth)
    assert max_f_beta(empty, truth) == 0.0
    assert mean_absolute_error(empty, truth) == pytest.approx(truth.mean())


def test_precision_and_recall_by_hand():
    truth = np.zeros((1, 4, 4), np.float32)
    truth[0, 0, :2] = 1.0  # two salient pixels
    prediction = np.zeros_like(truth)
    prediction[0, 0, :] = 0.8  # marks them and two more
    precision, recall, valid = precision_recall(prediction, truth)
    level = round(0.8 * 255)
    assert precision[0, level - 1] == 0.5 and recall[0, level - 1] == 1.0  # pred > level - 1
    assert precision[0, level] == 0.0 and recall[0, level] == 0.0  # nothing above
    assert valid.tolist() == [True]
    beta2 = 0.3
    expected = (1 + beta2) * 0.5 / (beta2 * 0.5 + 1)
    assert max_f_beta(prediction, truth) == pytest.approx(expected)
    assert mean_absolute_error(prediction, truth) == pytest.approx((2 * 0.2 + 2 * 0.8) / 16)


def test_frames_without_salient_pixels_count_in_mae_only():
    truth = gaussian_maps()
    with_empty = np.concatenate([truth, np.zeros((1, 32, 32), np.float32)])
    prediction = np.concatenate([truth, np.full((1, 32, 32), 0.5, np.float32)])
    assert max_f_beta(prediction, with_empty) == pytest.approx(1.0)
    assert mean_absolute_error(prediction, with_empty) == pytest.approx(0.5 / 3)
    assert f_beta_curve(prediction, with_empty).shape == (256,)
    with pytest.raises(ValueError, match="at least one image"):
        max_f_beta(prediction[2:], with_empty[2:])
    with pytest.raises(ValueError, match="shapes differ"):
        max_f_beta(prediction[:, :16], with_empty)
