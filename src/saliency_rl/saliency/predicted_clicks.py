"""A predicted saliency map turned back into clicks: what the annotation page offers to accept.

Clicks are the source of truth (``saliency.annotations``), so a predictor's map is offered
as the clicks a person would have made: its highest peaks, found greedily (take the
maximum, suppress a disc of ``SUPPRESS_SIGMAS`` click sigmas around it, repeat), kept while
they reach ``threshold``. Greedy suppression rather than a local-maximum test, because a
barely trained predictor's maps have plateaus that hold many equal local maxima.
"""

from __future__ import annotations

import numpy as np

SUGGEST_THRESHOLD = 0.5
"""A peak below this is not offered: there the predictor finds the pixel less likely salient
than not (the maps it learns from peak at 1 on every click)."""
MAX_SUGGESTED_CLICKS = 3
"""At most this many clicks per frame: a few per salient body is the intent."""
SUPPRESS_SIGMAS = 2.0
"""Peaks closer than this many click sigmas to a higher one belong to the same blob."""


def clicks_from_map(
    saliency: np.ndarray,
    sigma: float,
    *,
    threshold: float = SUGGEST_THRESHOLD,
    max_clicks: int = MAX_SUGGESTED_CLICKS,
) -> list[tuple[float, float]]:
    """The (x, y) click positions, highest first, that stand for a predicted map.

    Args:
        saliency: float (H, W) map in [0, 1].
        sigma: the click sigma in pixels (``maps.click_sigma``); sets the suppression radius.
        threshold: the lowest map value offered as a click.
        max_clicks: the most clicks returned.

    Returns:
        Pixel centres ``(col + 0.5, row + 0.5)`` in image pixels, inside the frame; ties
        go to the first pixel in row-major order, so the answer is deterministic.
    """
    if saliency.ndim != 2:
        raise ValueError(f"a saliency map is (H, W), got shape {saliency.shape}")
    if max_clicks < 0 or not sigma > 0:
        raise ValueError(f"need max_clicks >= 0 and sigma > 0, got {max_clicks} and {sigma}")
    height, width = saliency.shape
    rows, cols = np.mgrid[0:height, 0:width]
    left = np.where(np.isfinite(saliency), saliency, -np.inf).astype(np.float64)
    radius2 = (SUPPRESS_SIGMAS * sigma) ** 2
    clicks: list[tuple[float, float]] = []
    while len(clicks) < max_clicks:
        flat = int(np.argmax(left))  # the first maximum in row-major order
        row, col = divmod(flat, width)
        if not left[row, col] >= threshold:
            break
        clicks.append((col + 0.5, row + 0.5))
        left[(rows - row) ** 2 + (cols - col) ** 2 <= radius2] = -np.inf
    return clicks
