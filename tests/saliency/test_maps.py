import numpy as np
import pytest

from saliency_rl.saliency.maps import click_sigma, clicks_to_map, map_to_uint8, uint8_to_map


def test_sigma_scales_with_the_image():
    assert click_sigma(256) == pytest.approx(10.0)
    assert click_sigma(64) == pytest.approx(2.5)
    assert click_sigma(84) == pytest.approx(10 * 84 / 256)


@pytest.mark.parametrize("size", [32, 64, 84, 256])
def test_single_click_peaks_at_the_click(size):
    x, y = int(0.3 * size) + 0.5, int(0.7 * size) + 0.5  # pixel centres
    saliency = clicks_to_map(np.array([[x, y]]), size, size)
    assert saliency.shape == (size, size) and saliency.dtype == np.float32
    row, col = np.unravel_index(saliency.argmax(), saliency.shape)
    assert (col, row) == (int(x), int(y))
    assert saliency.max() == pytest.approx(1.0) and saliency.min() >= 0
    # One sigma away the Gaussian has fallen to exp(-1/2).
    sigma = click_sigma(size)
    col_sigma = int(round(x - 0.5 + sigma))
    assert saliency[row, col_sigma] == pytest.approx(
        np.exp(-0.5 * ((col_sigma + 0.5 - x) / sigma) ** 2), rel=1e-4
    )


def test_clicks_add_and_normalise_to_peak_one():
    saliency = clicks_to_map(np.array([[10.5, 10.5], [50.5, 40.5]]), 64, 64)
    assert saliency[10, 10] == pytest.approx(1.0) and saliency[40, 50] == pytest.approx(1.0)
    assert saliency[25, 30] < 0.01


def test_no_clicks_give_an_empty_map():
    assert not clicks_to_map(np.zeros((0, 2)), 16, 16).any()


def test_uint8_round_trip():
    saliency = clicks_to_map(np.array([[5.0, 5.0]]), 16, 16)
    stored = map_to_uint8(saliency)
    assert stored.dtype == np.uint8 and stored.max() == 255
    assert np.abs(uint8_to_map(stored) - saliency).max() <= 0.5 / 255 + 1e-6
