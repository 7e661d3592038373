"""Keypoints from attention masks, and their precision and recall against object positions.

Wu, Khetarpal, Precup (AAAI 2021), "keypoints": the attention mask is smoothed with a Gaussian,
non-maximum suppression with a 3x3 window keeps the local maxima, and the k highest are the
keypoints. k is chosen at inference time: nothing is retrained for another k.

Resolution. We take the peaks on the mask at the resolution it is produced, the 7x7 feature
map (models.attention), as the paper does, and map each cell to the centre of its receptive
field in the frame: the mask multiplies the Atari CNN's last features, and feature (i, j) sees
pixels 8i .. 8i + 35 (convolutions 8x8/4, 4x4/2, 3x3/1, no padding), so cell (i, j) lands at
x = 8j + 17.5, y = 8i + 17.5 (pixel-index coordinates: pixel p's centre is p); the decoder maps
it back to the same pixels. Tiling the frame with 12-pixel cells instead (x = 12j + 5.5, how
the mask looks when resized over the frame) puts border cells 12 pixels off what they gate:
on held-out random-policy frames (seed 2, 100 a game, modules after 200 pretraining steps)
the tiling gave precision 0.28 / 0.61 / 0.44 (MsPacman / Frostbite / Berzerk, k = 5, 12 px)
against 0.42 / 0.77 / 0.66 with receptive-field centres. Upsampling the mask first would
invent no new peaks (a bilinear map has its maxima at the cells' centres).

Exactly k points. A 7x7 mask often has fewer than k strict local maxima (a smooth blob has
one). We then fill up with the highest remaining cells, in order of their smoothed value:
first every local maximum (highest first), then the other cells (highest first). Plateaus:
every cell of a flat top equals its 3x3 maximum, so each counts as a maximum; ties keep the
row-major order. The function returns which points are true maxima.

Matching (precision and recall). In each frame, keypoints and ground-truth objects are paired
greedily, nearest pair first: all keypoint-object distances are sorted, and a pair within
``threshold`` pixels is taken when neither is taken yet. Precision = matched / keypoints,
recall = matched / objects, both summed over all frames first (micro-average), so frames with
many objects weigh more. The paper does not state its threshold or matching in the text we
could read; the benchmark (benchmarks/keypoints.py) records the threshold it uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from saliency_rl.errors import SaliencyRLError


class KeypointError(SaliencyRLError):
    """A bad keypoint request (k, sigma, shapes)."""


# ---------------------------------------------------------------------- smoothing and NMS
def gaussian_smooth(maps: Tensor, sigma: float) -> Tensor:
    """Blur maps (N, h, w) with a Gaussian of ``sigma`` cells (0: unchanged).

    Borders are replicated, so an object at the edge keeps its peak there.
    """
    if sigma < 0:
        raise KeypointError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return maps
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = maps[:, None]  # (N, 1, h, w)
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))  # along rows
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))  # along columns
    return x[:, 0]


def local_maxima(maps: Tensor, window: int = 3) -> Tensor:
    """bool (N, h, w): the cells equal to the maximum of their ``window`` x ``window`` block."""
    if window < 1 or window % 2 == 0:
        raise KeypointError(f"the NMS window must be an odd size >= 1, got {window}")
    pooled = F.max_pool2d(maps[:, None], window, stride=1, padding=window // 2)[:, 0]
    return maps == pooled  # max_pool pads with -inf: the borders compare to their neighbours


@dataclass
class Peaks:
    """Top-k peaks of a batch of maps, highest first."""

    cells: Tensor
    """long (N, k, 2): (row, column) of each peak on the map."""
    scores: Tensor
    """float (N, k): the smoothed value at each peak."""
    is_maximum: Tensor
    """bool (N, k): True for a local maximum, False for a cell taken to fill up to k."""


def top_k_peaks(maps: Tensor, k: int, *, sigma: float = 0.5, window: int = 3) -> Peaks:
    """Smooth, suppress non-maxima, keep the k highest: exactly k per map (see module doc).

    Args:
        maps: float (N, h, w), e.g. attention masks (N, 7, 7).
        k: keypoints per map, 1 <= k <= h * w.
        sigma: Gaussian blur in map cells (0.5 on 7x7 masks; 0: none).
        window: the NMS window (3).
    """
    if maps.dim() != 3:
        raise KeypointError(f"maps must be (N, h, w), got {tuple(maps.shape)}")
    n, h, w = maps.shape
    if not isinstance(k, int) or not 1 <= k <= h * w:
        raise KeypointError(f"k must be an integer from 1 to {h * w} (the map's cells), got {k!r}")
    smooth = gaussian_smooth(maps.float(), sigma)
    maxima = local_maxima(smooth, window).reshape(n, -1)  # (N, h*w)
    values = smooth.reshape(n, -1)
    # Highest value first, then (stable) local maxima before the rest: two stable sorts.
    order = torch.sort(values, dim=1, descending=True, stable=True).indices
    first = torch.sort(
        (~maxima).gather(1, order).to(torch.uint8), dim=1, stable=True
    ).indices  # maxima (0) before fillers (1), value order kept within each
    chosen = order.gather(1, first)[:, :k]  # (N, k) flat cell indices
    cells = torch.stack([chosen // w, chosen % w], dim=-1)  # (N, k, 2)
    return Peaks(cells, values.gather(1, chosen), maxima.gather(1, chosen))


def cells_to_pixels(
    cells: Tensor, map_size: tuple[int, int], frame_size: tuple[int, int]
) -> Tensor:
    """(row, column) cells (..., 2) of an h x w map -> (x, y) pixel centres in an H x W frame."""
    (h, w), (height, width) = map_size, frame_size
    rows, cols = cells[..., 0].float(), cells[..., 1].float()
    x = (cols + 0.5) * width / w - 0.5
    y = (rows + 0.5) * height / h - 0.5
    return torch.stack([x, y], dim=-1)


ATARI_CNN_STRIDE = 8
"""Pixels between neighbouring cells of the Atari CNN's 7x7 features (4 x 2 x 1)."""
ATARI_CNN_FIELD = 36
"""Receptive field of one 7x7 feature, pixels: 8 + (4 - 1) 4 + (3 - 1) 8."""


def receptive_field_centres(
    cells: Tensor, stride: int = ATARI_CNN_STRIDE, field: int = ATARI_CNN_FIELD
) -> Tensor:
    """(row, column) cells (..., 2) -> (x, y) pixel centres of their receptive fields."""
    centre = (field - 1) / 2
    return torch.stack(
        [cells[..., 1] * stride + centre, cells[..., 0] * stride + centre], -1
    ).float()


def mask_keypoints(
    masks: Tensor,
    k: int,
    *,
    sigma: float = 0.5,
    window: int = 3,
) -> tuple[Tensor, Peaks]:
    """Keypoints of attention masks (N, 7, 7) or (N, 1, 7, 7): ((N, k, 2) (x, y) pixels of the
    84x84 frame, at the receptive-field centres of the peak cells; the peaks)."""
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    peaks = top_k_peaks(masks, k, sigma=sigma, window=window)
    return receptive_field_centres(peaks.cells), peaks


@torch.no_grad()
def attention_keypoints(
    module: torch.nn.Module,
    frames: Tensor,
    k: int,
    *,
    sigma: float = 0.5,
    window: int = 3,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints of the attention module's masks on grey frames uint8 (N, 1, 84, 84).

    Returns (x, y) pixel keypoints float32 (N, k, 2) and the masks float32 (N, 7, 7).
    """
    points, masks = [], []
    device = next(module.parameters()).device
    for start in range(0, len(frames), batch_size):
        mask = module.mask(frames[start : start + batch_size].to(device))[:, 0]  # (B, 7, 7)
        xy, _ = mask_keypoints(mask, k, sigma=sigma, window=window)
        points.append(xy.cpu())
        masks.append(mask.cpu())
    return torch.cat(points).numpy(), torch.cat(masks).numpy()


# ---------------------------------------------------------------------- precision and recall
def match_count(keypoints: np.ndarray, objects: np.ndarray, threshold: float) -> int:
    """Pairs matched greedily, nearest first, each point and object at most once, within
    ``threshold`` pixels. keypoints (k, 2), objects (n, 2), both (x, y)."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 2)
    objects = np.asarray(objects, np.float64).reshape(-1, 2)
    if len(keypoints) == 0 or len(objects) == 0:
        return 0
    distance = np.linalg.norm(keypoints[:, None] - objects[None], axis=-1)  # (k, n)
    used_k = np.zeros(len(keypoints), bool)
    used_o = np.zeros(len(objects), bool)
    matched = 0
    for flat in np.argsort(distance, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(objects))
        if distance[i, j] > threshold:
            break
        if not used_k[i] and not used_o[j]:
            used_k[i] = used_o[j] = True
            matched += 1
    return matched


def precision_recall(
    keypoints: Sequence[np.ndarray], objects: Sequence[np.ndarray], threshold: float
) -> dict[str, float]:
    """Micro-averaged precision and recall over frames (see the module docstring).

    Args:
        keypoints: per frame, (k, 2) keypoints (x, y).
        objects: per frame, (n, 2) ground-truth object centres (x, y), same pixel frame.
        threshold: the largest matching distance, pixels.
    """
    if len(keypoints) != len(objects):
        raise KeypointError(f"{len(keypoints)} frames of keypoints but {len(objects)} of objects")
    matched = total_k = total_o = 0
    for points, truth in zip(keypoints, objects, strict=True):
        matched += match_count(points, truth, threshold)
        total_k += len(np.asarray(points).reshape(-1, 2))
        total_o += len(np.asarray(truth).reshape(-1, 2))
    return {
        "precision": matched / total_k if total_k else 0.0,
        "recall": matched / total_o if total_o else 0.0,
        "matched": float(matched),
        "keypoints": float(total_k),
        "objects": float(total_o),
        "frames": float(len(keypoints)),
        "threshold": float(threshold),
    }


__all__ = [
    "ATARI_CNN_FIELD",
    "ATARI_CNN_STRIDE",
    "KeypointError",
    "Peaks",
    "attention_keypoints",
    "cells_to_pixels",
    "gaussian_smooth",
    "local_maxima",
    "mask_keypoints",
    "receptive_field_centres",
    "match_count",
    "precision_recall",
    "top_k_peaks",
]
