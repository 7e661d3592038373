"""Saliency maps drawn over frames, for previews and reports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from saliency_rl.data.atomic import atomic_write_bytes


def overlay(frame: np.ndarray, saliency: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend a map into a frame as a red-yellow heat layer.

    Args:
        frame: uint8 (C, H, W), C = 3 (colour) or 1 (grey).
        saliency: float (H, W) in [0, 1].

    Returns:
        uint8 (H, W, 3).
    """
    rgb = np.repeat(frame, 3, axis=0) if frame.shape[0] == 1 else frame[:3]
    rgb = rgb.transpose(1, 2, 0).astype(np.float32)
    heat = np.stack([np.ones_like(saliency), saliency, np.zeros_like(saliency)], axis=-1) * 255.0
    weight = alpha * saliency[..., None]
    return np.clip(rgb * (1 - weight) + heat * weight, 0, 255).astype(np.uint8)


def save_grid(path: Path, tiles: Sequence[np.ndarray], columns: int = 5, scale: int = 4) -> None:
    """Save uint8 (H, W, 3) tiles as one PNG grid, upscaled with crisp pixels, atomically."""
    height, width, _ = tiles[0].shape
    rows = -(-len(tiles) // columns)
    grid = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        grid[r * height : (r + 1) * height, c * width : (c + 1) * width] = tile
    image = Image.fromarray(grid).resize(
        (grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST
    )
    atomic_write_bytes(Path(path), lambda handle: image.save(handle, format="PNG"))
