"""What the attention mask of an A2C run looks like while it trains: statistics for
metrics.csv and pictures over time.

Statistics of the policy's masks (N, 1, 7, 7) in [0, 1], averaged over the rollout steps of a
log row: ``policy_mask_mean`` (already logged), ``policy_mask_entropy`` (the mean binary
entropy of a cell in bits: 1 when every cell is 0.5, 0 when every cell is 0 or 1),
``policy_mask_on`` (the share of cells above 0.5) and ``policy_mask_collapsed``: 1 when at
least ``COLLAPSED_SHARE`` of the cells sit within ``COLLAPSED_MARGIN`` of the same end (all off
or all on: the module no longer says where to look), else 0; the report names the side.

Pictures: at every checkpoint, the newest frame of the first ``PICTURE_ENVS`` environments
with the mask drawn over it goes to ``RUN/masks/step_<step>.png``, and
``RUN/figures/attention_masks.png`` (a figure the report shows) stacks the last
``PICTURE_ROWS`` of them, oldest on top: the mask over time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from saliency_rl.data.atomic import atomic_write_bytes
from saliency_rl.saliency.overlay import overlay, save_grid

MASK_COLUMNS = ("policy_mask_entropy", "policy_mask_on", "policy_mask_collapsed")
"""metrics.csv columns of the mask statistics, after the older ones (old runs keep theirs)."""
COLLAPSED_SHARE = 0.99
COLLAPSED_MARGIN = 0.05
PICTURE_ENVS = 4
PICTURE_ROWS = 8
MASKS_DIR = "masks"
FIGURE = Path("figures") / "attention_masks.png"


def mask_statistics(mask: Any) -> dict[str, float]:
    """Entropy (bits), share on and collapse of masks (N, 1, h, w) in [0, 1] (see the module)."""
    m = mask.detach().float().clamp(1e-6, 1 - 1e-6)
    entropy = -(m * m.log2() + (1 - m) * (1 - m).log2()).mean()
    off = float((m < COLLAPSED_MARGIN).float().mean())
    on = float((m > 1 - COLLAPSED_MARGIN).float().mean())
    collapsed = max(off, on) >= COLLAPSED_SHARE
    return {
        "policy_mask_entropy": float(entropy),
        "policy_mask_on": float((m > 0.5).float().mean()),
        "policy_mask_collapsed": float(collapsed),
    }


def save_policy_masks(run_dir: Path, step: int, net: Any, obs: Any) -> None:
    """The policy's masks of the first envs' observations (N, 4, 84, 84), drawn over their
    newest frames (:func:`save_mask_pictures`)."""
    import torch

    with torch.no_grad():
        masks = net.mask(obs[:PICTURE_ENVS])
    newest = obs[:PICTURE_ENVS, -1].cpu().numpy()
    save_mask_pictures(run_dir, step, newest, masks.float().cpu().numpy())


def save_mask_pictures(run_dir: Path, step: int, frames: np.ndarray, masks: np.ndarray) -> None:
    """Draw ``masks`` (N, 1, h, w) over ``frames`` (N, 84, 84) uint8, the first envs' only,
    into ``masks/step_<step>.png``; then rebuild ``figures/attention_masks.png``."""
    count = min(PICTURE_ENVS, len(frames))
    size = frames.shape[-1]
    tiles = []
    for frame, mask in zip(frames[:count], masks[:count], strict=True):
        upsampled = np.kron(mask[0], np.ones((size // mask.shape[-1] + 1,) * 2))[:size, :size]
        tiles.append(overlay(frame[None], upsampled.astype(np.float32)))
    directory = Path(run_dir) / MASKS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    save_grid(directory / f"step_{step:09d}.png", tiles, columns=count, scale=1)
    _write_over_time(Path(run_dir))


def _write_over_time(run_dir: Path) -> None:
    pictures = sorted((run_dir / MASKS_DIR).glob("step_*.png"))
    if len(pictures) > PICTURE_ROWS:  # evenly spaced over the run, the newest included
        keep = np.linspace(0, len(pictures) - 1, PICTURE_ROWS).round().astype(int)
        pictures = [pictures[i] for i in sorted(set(keep))]
    rows = [np.asarray(Image.open(p).convert("RGB")) for p in pictures]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0))) for r in rows]
    image = Image.fromarray(np.concatenate(rows))
    path = run_dir / FIGURE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda handle: image.save(handle, format="PNG"))


def collapse_note(metrics_csv: Path) -> str | None:
    """ "attention mask collapsed: all off (mean 0.01) at step N" when the last log row with
    mask statistics says so, else None (also for runs without the columns)."""
    import csv

    if not metrics_csv.is_file():
        return None
    with metrics_csv.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("policy_mask_collapsed")]
    if not rows or float(rows[-1]["policy_mask_collapsed"]) < 0.5:
        return None
    last = rows[-1]
    mean = float(last.get("policy_mask_mean") or "nan")
    side = "all on" if mean > 0.5 else "all off"
    return f"attention mask collapsed: {side} (mean {mean:.3f}) at step {last['step']}"


__all__ = [
    "MASK_COLUMNS",
    "collapse_note",
    "mask_statistics",
    "save_mask_pictures",
    "save_policy_masks",
]
