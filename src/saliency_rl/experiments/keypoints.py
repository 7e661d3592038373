"""Keypoints of an attention module or a Transporter on Atari frames, scored against the RAM.

``saliency-rl keypoints RUN_OR_CKPT --k K`` is a thin shell over :func:`keypoints_report`:

1. :func:`load_keypoint_model` reads what RUN_OR_CKPT holds: an attention checkpoint
   (``saliency-rl pretrain-attention``), an A2C/ACKTR run directory trained with attention
   (its ``checkpoints/latest``), or a Transporter checkpoint (``pretrain-transporter``).
2. Frames: played by a random policy in ``atari:<Game>`` (the ground truth comes with them,
   from the RAM, envs.atari_ram, for MsPacman, Frostbite and Berzerk), or read from a dataset
   (no ground truth: keypoints and overlays only).
3. Keypoints: the attention mask's top-k peaks (models.keypoints; any k) or the Transporter's
   K keypoints (k must be K).
4. Precision and recall at a distance threshold (models.keypoints.precision_recall).

Output directory::

    OUT/
      keypoints.json      model, k, threshold, metrics, and per frame the keypoints and
                          objects, (x, y) pixels of the 84x84 frame
      overlays/NNNNN.png  the first frames, 4x: mask (attention), keypoints (red), objects (green)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from saliency_rl.checkpoint import is_checkpoint, load_checkpoint
from saliency_rl.data.atomic import atomic_write_json
from saliency_rl.errors import CheckpointError, DatasetError
from saliency_rl.models.keypoints import (
    ATARI_CNN_FIELD,
    ATARI_CNN_STRIDE,
    KeypointError,
    attention_keypoints,
    precision_recall,
)

DEFAULT_THRESHOLD = 12.0
"""Pixels of the 84x84 frame: one cell of the 7x7 attention mask (84 / 7)."""


@dataclass
class KeypointModel:
    """An attention module or a Transporter, ready to give keypoints."""

    kind: str
    """``attention`` or ``transporter``."""
    module: torch.nn.Module
    """The model, in eval mode."""
    source: str
    """Where it was read from."""
    games: list[str] = field(default_factory=list)
    """The games it was trained on, when its checkpoint says so."""

    @property
    def fixed_k(self) -> int | None:
        """K for a Transporter (it gives exactly K points), None for attention (any k)."""
        return getattr(self.module, "num_keypoints", None) if self.kind == "transporter" else None

    @torch.no_grad()
    def keypoints(
        self, frames: np.ndarray, k: int, *, sigma: float = 0.5
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """frames uint8 (N, 1, 84, 84) -> keypoints float32 (N, k, 2) (x, y) and the masks
        (N, 7, 7) (attention) or None."""
        tensor = torch.from_numpy(np.ascontiguousarray(frames))
        if self.kind == "attention":
            return attention_keypoints(self.module, tensor, k, sigma=sigma)
        if k != self.fixed_k:
            raise KeypointError(
                f"{self.source} is a Transporter with K = {self.fixed_k} keypoints; ask for "
                f"--k {self.fixed_k} (only attention masks give any k)"
            )
        points = [self.module.keypoints(tensor[i : i + 256]) for i in range(0, len(tensor), 256)]
        return torch.cat(points).numpy().astype(np.float32), None


def load_keypoint_model(path: str | Path, device: str | torch.device = "cpu") -> KeypointModel:
    """Read an attention checkpoint, an A2C/ACKTR run with attention, or a Transporter.

    Raises:
        CheckpointError: nothing of the kind at ``path``, or a run trained without attention.
    """
    from saliency_rl.models.attention import MODEL_NAME as ATTENTION
    from saliency_rl.models.attention import SelfSupervisedAttention, load_attention
    from saliency_rl.models.transporter import MODEL_NAME as TRANSPORTER
    from saliency_rl.models.transporter import load_transporter

    path = Path(path)
    if is_checkpoint(path):
        config, _ = load_checkpoint(path, "cpu")
        games = list(config.get("provenance", {}).get("games", []))
        if config.get("model") == ATTENTION:
            module, _ = load_attention(path, device)
            return KeypointModel("attention", module.eval(), str(path), games)
        if config.get("model") == TRANSPORTER:
            module, _ = load_transporter(path, device)
            return KeypointModel("transporter", module, str(path), games)
        raise CheckpointError(
            f"{path} holds a {config.get('model', 'unknown')!r} checkpoint; keypoints come from "
            "an attention checkpoint (pretrain-attention), a Transporter (pretrain-transporter) "
            "or an A2C run with attention"
        )
    run_config = path / "config.json"
    latest = path / "checkpoints" / "latest"
    if run_config.is_file() and is_checkpoint(latest):
        from saliency_rl.runs import read_json

        saved = read_json(run_config, "run config")
        mode = (saved.get("config") or {}).get("attention", "none")
        if mode == "none":
            raise CheckpointError(
                f"{path} is a run trained without attention (--attention none): it has no mask "
                "to take keypoints from"
            )
        _, weights = load_checkpoint(latest, device)
        prefix = "attention."
        module = SelfSupervisedAttention(1).to(device)
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        )
        from saliency_rl.envs.atari_vector import atari_game

        return KeypointModel("attention", module.eval(), str(path), [atari_game(saved["env"])])
    raise CheckpointError(
        f"{path} is neither a checkpoint nor a run directory; give a pretrain-attention or "
        "pretrain-transporter checkpoint, or an A2C/ACKTR run directory trained with attention"
    )


# ---------------------------------------------------------------------- frames
@dataclass
class Frames:
    """Frames to take keypoints on, with the objects on them when known."""

    frames: np.ndarray
    """uint8 (N, 1, 84, 84), grey."""
    objects: list[np.ndarray] | None
    """Per frame, float32 (n, 2) object centres (x, y) in 84x84 pixels; None: no ground truth."""
    names: list[tuple[str, ...]] | None
    """Per frame, the objects' names."""
    game: str | None
    """The Atari game, when known."""


def play_frames(game: str, count: int, *, seed: int = 1, every: int = 4) -> Frames:
    """``count`` frames of ``atari:<game>`` under a random policy, one every ``every`` steps,
    with RAM ground truth when the game has it (else ``objects`` is None).

    Each action is held 4 steps (as the datasets' random policy would not: a held action moves
    the player further, so the frames cover more of the screen)."""
    from saliency_rl.envs import make_env
    from saliency_rl.envs.atari_ram import has_ram_ground_truth, object_positions

    env = make_env(f"atari:{game}", frame_stack=1, seed=seed)
    rng = np.random.default_rng(seed)
    known = has_ram_ground_truth(game)
    obs, _ = env.reset(seed=seed)
    frames, objects, names = [], [], []
    step, action = 0, 0
    while len(frames) < count:
        if step % 4 == 0:
            action = int(rng.integers(env.action_space.n))
        obs, _, terminated, truncated, _ = env.step(action)
        step += 1
        if step % every == 0:
            frames.append(obs["rgb"][-1:].copy())
            if known:
                truth = object_positions(env, game)
                objects.append(truth.pixels(84))
                names.append(truth.names)
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return Frames(np.stack(frames), objects if known else None, names if known else None, game)


def dataset_frames(path: str | Path, count: int) -> Frames:
    """Up to ``count`` frames of an Atari dataset, evenly spaced (no ground truth)."""
    from saliency_rl.data.dataset import Dataset
    from saliency_rl.envs.atari_vector import atari_game

    dataset = Dataset.open(path)
    rgb = dataset.fields.get("rgb")
    if rgb is None or tuple(rgb.shape) != (1, 84, 84):
        raise DatasetError(
            f"dataset {path} has no grey 84x84 frames (rgb uint8 (1, 84, 84)); keypoints need "
            "Atari frames as collect stores them"
        )
    frames = np.concatenate(
        [dataset.episode(i, ["rgb"])["rgb"] for i in range(dataset.num_episodes)]
    )
    index = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    return Frames(frames[index], None, None, atari_game(dataset.env_spec))


# ---------------------------------------------------------------------- overlays
def draw_overlay(
    frame: np.ndarray,
    keypoints: np.ndarray,
    objects: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    scale: int = 4,
) -> np.ndarray:
    """An RGB uint8 picture (84 scale, 84 scale, 3): the grey frame, the mask in red tint,
    objects as green crosses, keypoints as red circles numbered from the highest."""
    grey = frame.reshape(frame.shape[-2:])
    size = (grey.shape[1] * scale, grey.shape[0] * scale)
    picture = cv2.resize(grey, size, interpolation=cv2.INTER_NEAREST)
    picture = np.repeat(picture[..., None], 3, -1).astype(np.float32)
    if mask is not None:
        # Each 7x7 cell drawn as the 8x8 pixels around its receptive-field centre (8j + 17.5,
        # where its keypoint lands): the mask covers the central 56x56 pixels of the frame.
        inner = mask.shape[-1] * ATARI_CNN_STRIDE * scale
        start = round((ATARI_CNN_FIELD - ATARI_CNN_STRIDE) / 2 * scale)
        heat = np.zeros(picture.shape[:2], np.float32)
        heat[start : start + inner, start : start + inner] = cv2.resize(
            mask.astype(np.float32), (inner, inner), interpolation=cv2.INTER_LINEAR
        )
        picture = picture * (1 - 0.5 * heat[..., None]) + 0.5 * heat[..., None] * np.array(
            [255, 0, 0], np.float32
        )
    picture = np.ascontiguousarray(picture.clip(0, 255).astype(np.uint8))

    def at(point: np.ndarray) -> tuple[int, int]:
        return int(round((point[0] + 0.5) * scale)), int(round((point[1] + 0.5) * scale))

    for point in [] if objects is None else objects:
        cv2.drawMarker(picture, at(point), (0, 255, 0), cv2.MARKER_CROSS, 3 * scale, 2)
    for i, point in enumerate(keypoints):
        cv2.circle(picture, at(point), 3 * scale, (255, 40, 40), 2)
        cv2.putText(
            picture, str(i + 1), at(point + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0)
        )
    return picture


# ---------------------------------------------------------------------- the report
def keypoints_report(
    model: KeypointModel,
    frames: Frames,
    k: int,
    out_dir: str | Path | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    sigma: float = 0.5,
    overlays: int = 16,
) -> dict[str, Any]:
    """Keypoints on ``frames``; metrics when they have objects; files under ``out_dir``.

    Returns ``{"model", "kind", "k", "threshold", "metrics" (or None), "frames": [...]}``.
    """
    if not threshold > 0:
        raise KeypointError(f"the distance threshold must be > 0 pixels, got {threshold}")
    points, masks = model.keypoints(frames.frames, k, sigma=sigma)
    metrics = (
        precision_recall(list(points), frames.objects, threshold)
        if frames.objects is not None
        else None
    )
    report: dict[str, Any] = {
        "model": model.source,
        "kind": model.kind,
        "trained_on": model.games,
        "game": frames.game,
        "k": k,
        "threshold": threshold,
        "sigma": sigma if model.kind == "attention" else None,
        "metrics": metrics,
        "frames": [
            {
                "keypoints": points[i].round(2).tolist(),
                **(
                    {
                        "objects": frames.objects[i].round(2).tolist(),
                        "names": list(frames.names[i]),
                    }
                    if frames.objects is not None
                    else {}
                ),
            }
            for i in range(len(points))
        ],
    }
    if out_dir is not None:
        out = Path(out_dir)
        (out / "overlays").mkdir(parents=True, exist_ok=True)
        for i in range(min(overlays, len(points))):
            picture = draw_overlay(
                frames.frames[i],
                points[i],
                None if frames.objects is None else frames.objects[i],
                None if masks is None else masks[i],
            )
            cv2.imwrite(str(out / "overlays" / f"{i:05d}.png"), picture[..., ::-1])
        atomic_write_json(out / "keypoints.json", report)
    return report


__all__ = [
    "DEFAULT_THRESHOLD",
    "Frames",
    "KeypointModel",
    "dataset_frames",
    "draw_overlay",
    "keypoints_report",
    "load_keypoint_model",
    "play_frames",
]
