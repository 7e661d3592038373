"""Clicks become saliency maps here, and only here.

Convention (../shared/DESIGN.md): a map is float in [0, 1], shape (H, W), at the frame's
resolution; each click adds a Gaussian of sigma 10 px at 256x256, scaled with the image;
the sum is normalised to peak 1. Maps are stored as uint8 (0..255).
"""

from __future__ import annotations

import numpy as np

REFERENCE_SIZE = 256
REFERENCE_SIGMA = 10.0


def click_sigma(height: int, width: int | None = None) -> float:
    """The Gaussian's sigma in pixels for a frame of this size (10 px at 256x256)."""
    width = height if width is None else width
    return REFERENCE_SIGMA * (height + width) / (2 * REFERENCE_SIZE)


def clicks_to_map(
    clicks: np.ndarray, height: int, width: int, sigma: float | np.ndarray | None = None
) -> np.ndarray:
    """Render clicks as a saliency map.

    Args:
        clicks: (N, 2) click positions (x, y) in continuous pixel coordinates of the frame
            (pixel (i, j) covers [j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5)).
        height, width: frame size.
        sigma: a scalar or (N,) per-click sigma in pixels; ``click_sigma`` when None.

    Returns:
        float32 (height, width) in [0, 1], peak 1; all zeros when there are no clicks.
    """
    clicks = np.asarray(clicks, dtype=np.float64).reshape(-1, 2)
    out = np.zeros((height, width), dtype=np.float64)
    if len(clicks) == 0:
        return out.astype(np.float32)
    sigma = click_sigma(height, width) if sigma is None else sigma
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (len(clicks),))
    xs = np.arange(width) + 0.5
    ys = np.arange(height) + 0.5
    # Separable: each Gaussian is an outer product of a column and a row profile.
    gx = np.exp(-((xs[None, :] - clicks[:, :1]) ** 2) / (2 * sigma[:, None] ** 2))  # (N, W)
    gy = np.exp(-((ys[None, :] - clicks[:, 1:]) ** 2) / (2 * sigma[:, None] ** 2))  # (N, H)
    out = gy.T @ gx  # (H, W): sum over clicks
    peak = out.max()
    if peak > 0:
        out /= peak
    return out.astype(np.float32)


def map_to_uint8(saliency: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 [0, 255], rounded."""
    return np.clip(np.rint(np.asarray(saliency) * 255.0), 0, 255).astype(np.uint8)


def uint8_to_map(stored: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]."""
    return np.asarray(stored, dtype=np.float32) / 255.0
