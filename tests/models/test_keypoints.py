"""Keypoints from masks: smoothing, 3x3 non-maximum suppression, exactly k peaks; matching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_rl.models.attention import SelfSupervisedAttention
from saliency_rl.models.keypoints import (
    KeypointError,
    attention_keypoints,
    cells_to_pixels,
    gaussian_smooth,
    local_maxima,
    mask_keypoints,
    match_count,
    precision_recall,
    receptive_field_centres,
    top_k_peaks,
)


def _peaks_map() -> torch.Tensor:
    """A 7x7 map with three separated peaks of heights 0.9, 0.7, 0.5, and a shoulder 0.8
    beside the highest one (not a maximum of its 3x3 window)."""
    m = torch.zeros(1, 7, 7)
    m[0, 1, 1] = 0.9
    m[0, 1, 2] = 0.8  # neighbour of the 0.9 peak: suppressed
    m[0, 5, 5] = 0.7
    m[0, 3, 5] = 0.5
    return m


def test_known_peaks_are_found_in_order_of_height() -> None:
    peaks = top_k_peaks(_peaks_map(), 3, sigma=0)
    assert peaks.cells[0].tolist() == [[1, 1], [5, 5], [3, 5]]
    assert peaks.is_maximum.all()
    torch.testing.assert_close(peaks.scores[0], torch.tensor([0.9, 0.7, 0.5]))


def test_nms_suppresses_the_neighbour_of_a_higher_peak() -> None:
    maxima = local_maxima(_peaks_map())
    assert maxima[0, 1, 1] and not maxima[0, 1, 2]
    # With smoothing the shoulder still loses to the peak beside it.
    cells = top_k_peaks(_peaks_map(), 3, sigma=0.5).cells[0].tolist()
    assert [1, 2] not in cells and cells[0] == [1, 1]


def test_exactly_k_points_even_without_k_maxima() -> None:
    blob = torch.zeros(2, 7, 7)
    blob[:, 3, 3] = 1.0  # one strict maximum (the flat zeros elsewhere are plateaus)
    blob[1] = torch.linspace(0, 1, 49).reshape(7, 7)  # one maximum, in the corner
    for k in (1, 4, 10, 49):
        peaks = top_k_peaks(blob, k, sigma=0.5)
        assert peaks.cells.shape == (2, k, 2)
        # Every cell appears at most once per map.
        flat = peaks.cells[..., 0] * 7 + peaks.cells[..., 1]
        assert all(len(set(row.tolist())) == k for row in flat)
    ramp = top_k_peaks(blob[1:], 5, sigma=0)
    assert ramp.cells[0, 0].tolist() == [6, 6]
    assert ramp.is_maximum[0].tolist() == [True, False, False, False, False]
    # Fillers come in order of their value: the next highest cells of the ramp.
    assert ramp.cells[0, 1:].tolist() == [[6, 5], [6, 4], [6, 3], [6, 2]]  # row-major ramp


def test_k_changes_without_retraining_and_keeps_the_first_points() -> None:
    torch.manual_seed(0)
    module = SelfSupervisedAttention(1).eval()
    frames = torch.randint(0, 256, (3, 1, 84, 84), dtype=torch.uint8)
    points3, masks = attention_keypoints(module, frames, 3)
    points6, _ = attention_keypoints(module, frames, 6)
    assert points3.shape == (3, 3, 2) and points6.shape == (3, 6, 2) and masks.shape == (3, 7, 7)
    np.testing.assert_array_equal(points6[:, :3], points3)  # top-3 is a prefix of top-6
    assert ((points6 >= 0) & (points6 <= 83)).all()


def test_batched_extraction_equals_one_by_one() -> None:
    maps = torch.rand(5, 7, 7, generator=torch.Generator().manual_seed(1))
    together = top_k_peaks(maps, 4).cells
    alone = torch.cat([top_k_peaks(maps[i : i + 1], 4).cells for i in range(5)])
    torch.testing.assert_close(together, alone)


def test_cells_map_to_the_centres_of_their_frame_regions() -> None:
    cells = torch.tensor([[0, 0], [6, 6], [3, 1]])
    xy = cells_to_pixels(cells, (7, 7), (84, 84))
    torch.testing.assert_close(xy, torch.tensor([[5.5, 5.5], [77.5, 77.5], [17.5, 41.5]]))


def test_mask_cells_map_to_their_receptive_field_centres() -> None:
    # Feature (i, j) of the Atari CNN sees pixels 8i .. 8i + 35: centre 8i + 17.5.
    cells = torch.tensor([[0, 0], [6, 6], [3, 1]])
    xy = receptive_field_centres(cells)
    torch.testing.assert_close(xy, torch.tensor([[17.5, 17.5], [65.5, 65.5], [25.5, 41.5]]))
    pixels, _ = mask_keypoints(_peaks_map()[:, None], 1, sigma=0)  # peak at row 1, column 1
    torch.testing.assert_close(pixels[0, 0], torch.tensor([25.5, 25.5]))
    # The receptive field of a cell really is those pixels: a conv trunk's feature (1, 1)
    # changes when pixel (x=25, y=25) changes, and not when pixel (x=60, y=25) does.
    from saliency_rl.models.attention import SelfSupervisedAttention

    torch.manual_seed(0)
    module = SelfSupervisedAttention(1).eval()
    frame = torch.zeros(1, 1, 84, 84)
    base = module.encode(frame)[0, :, 1, 1]
    near, far = frame.clone(), frame.clone()
    near[0, 0, 25, 25], far[0, 0, 25, 60] = 1.0, 1.0
    assert not torch.allclose(module.encode(near)[0, :, 1, 1], base)
    assert torch.allclose(module.encode(far)[0, :, 1, 1], base)


def test_smoothing_keeps_mass_and_blurs() -> None:
    m = torch.zeros(1, 9, 9)
    m[0, 4, 4] = 1.0
    s = gaussian_smooth(m, 1.0)
    assert s[0, 4, 4] < 1.0 and s[0, 4, 5] > 0
    torch.testing.assert_close(s.sum(), torch.tensor(1.0))
    assert torch.equal(gaussian_smooth(m, 0), m)


def test_bad_requests_raise_one_clear_error() -> None:
    with pytest.raises(KeypointError, match="from 1 to 49"):
        top_k_peaks(torch.zeros(1, 7, 7), 50)
    with pytest.raises(KeypointError, match="odd size"):
        local_maxima(torch.zeros(1, 7, 7), 2)
    with pytest.raises(KeypointError, match=r"\(N, h, w\)"):
        top_k_peaks(torch.zeros(7, 7), 1)


def test_greedy_matching_within_the_threshold() -> None:
    keypoints = np.array([[0.0, 0.0], [10.0, 0.0], [50.0, 50.0]])
    objects = np.array([[1.0, 0.0], [9.0, 0.0], [30.0, 30.0]])
    assert match_count(keypoints, objects, 2.0) == 2  # the far keypoint and object stay single
    assert match_count(keypoints, objects, 0.5) == 0
    # One object, two keypoints on it: matched once.
    assert match_count(np.array([[0.0, 0.0], [0.5, 0.0]]), np.array([[0.2, 0.0]]), 2.0) == 1
    result = precision_recall([keypoints, keypoints[:1]], [objects, np.zeros((0, 2))], 2.0)
    assert result["precision"] == pytest.approx(2 / 4)
    assert result["recall"] == pytest.approx(2 / 3)
