"""Pretrain the self-supervised attention module offline: ``saliency-rl pretrain-attention``.

On frames of one or more Atari datasets (``saliency-rl collect --env atari:MsPacman``),
the module (models.attention) learns to rebuild a target frame from a source frame of the
same episode, 1 to ``max_gap`` steps away, with Adam (lr 1e-3, gradients clipped at 0.5: the
official code's attention optimizer). The result is a checkpoint for the fixed-module modes
of ``saliency-rl train a2c``:

- ``frozen``: pretrained on the game it is used on;
- ``universal``: one module pretrained on several games (give several datasets; batches
  draw from each dataset equally often), used on each of them;
- ``transfer``: pretrained on some games, used on another.

Output directory::

    OUT/
      config.json          the model, and its provenance: datasets (path, env, frames,
                           collection policy), games, pretraining settings, final loss
      model.safetensors    the weights
      metrics.csv          one row per log interval: losses, mean mask, pairs/s

Every frame of every dataset is loaded into memory once (7 KiB a frame: 0.7 GB for 100k).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from saliency_rl import __version__
from saliency_rl.checkpoint import is_checkpoint
from saliency_rl.data.dataset import Dataset
from saliency_rl.devices import resolve_device
from saliency_rl.envs.spec import parse_spec
from saliency_rl.errors import DatasetError
from saliency_rl.models.attention import SelfSupervisedAttention, save_attention
from saliency_rl.runs import METRICS_FILE, MetricsLog, RunError, now

METRIC_COLUMNS = (
    "step",
    "time",
    "pairs_per_s",
    "attention_loss",
    "reconstruction_loss",
    "autoencoder_loss",
    "mask_mean",
)


@dataclass
class AttentionPretrainConfig:
    """Settings of offline attention pretraining."""

    steps: int = 10_000
    """Optimizer steps. The paper gives no number; 10k batches of 32 pairs is our default."""
    batch_size: int = 32
    """Frame pairs per step."""
    learning_rate: float = 1e-3
    """Adam learning rate (the official code's attention optimizer)."""
    max_grad_norm: float = 0.5
    """Gradients are clipped to this global L2 norm."""
    max_gap: int = 59
    """A pair's frames are 1 to max_gap steps apart in one episode (official buffer: 60)."""
    threshold: float = 0.01
    """delta: squared pixel errors (pixels in [0, 1]) at or below it are ignored."""
    sparsity: float = 1e-3
    """lambda: weight of the mean mask."""
    seed: int = 0
    """Seeds the initial weights and the pairs."""
    log_every: int = 100
    """Steps between rows of metrics.csv."""
    checkpoint_every: int = 1_000
    """Steps between saves of the checkpoint (and at the end)."""

    def validate(self) -> AttentionPretrainConfig:
        for name in ("steps", "batch_size", "max_gap", "log_every", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise RunError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not self.learning_rate > 0:
            raise RunError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        for name in ("max_grad_norm", "threshold", "sparsity", "seed"):
            if getattr(self, name) < 0:
                raise RunError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        return self


class FramePairs:
    """The frames of one dataset, episodes concatenated: (F, 1, 84, 84) uint8."""

    def __init__(self, dataset: Dataset, max_gap: int) -> None:
        episodes = [dataset.episode(i, ["rgb"])["rgb"] for i in range(dataset.num_episodes)]
        lengths = np.array([len(e) for e in episodes], np.int64)
        usable = np.flatnonzero(lengths >= 2)
        if len(usable) == 0:
            raise DatasetError(
                f"dataset {dataset.root} has no episode of 2 frames or more: no frame pairs; "
                "collect more frames"
            )
        self.frames = np.concatenate([episodes[i] for i in usable])
        self.lengths = lengths[usable]
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.max_gap = max_gap

    def sample(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(source, target) global frame indices, each (count,), same episode, 1..max_gap apart."""
        # Every target frame is equally likely: episodes drawn in proportion to their length.
        episode = rng.choice(len(self.lengths), size=count, p=self.lengths / self.lengths.sum())
        length = self.lengths[episode]
        target = np.floor(rng.random(count) * length).astype(np.int64)
        low = np.maximum(0, target - self.max_gap)
        high = np.minimum(length - 1, target + self.max_gap)
        source = low + np.floor(rng.random(count) * (high - low)).astype(np.int64)  # < high
        source += source >= target  # skip the target itself
        start = self.starts[episode]
        return start + source, start + target


def open_atari_dataset(path: str | Path) -> tuple[Dataset, str]:
    dataset = Dataset.open(path)
    spec = parse_spec(dataset.env_spec)
    if spec.suite != "atari":
        raise DatasetError(
            f"dataset {path} holds {dataset.env_spec} frames; the attention module is "
            "pretrained on Atari frames (collect --env atari:<Game>)"
        )
    rgb = dataset.fields["rgb"]
    if rgb.dtype != "uint8" or tuple(rgb.shape) != (1, 84, 84):
        raise DatasetError(
            f"dataset {path} stores frames {rgb.dtype} {tuple(rgb.shape)}; the attention module "
            "needs grey 84x84 frames, uint8 (1, 84, 84) (collect's Atari default)"
        )
    from saliency_rl.envs.atari_vector import atari_game

    return dataset, atari_game(dataset.env_spec)


def pretrain_attention(
    datasets: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    steps: int | None = None,
    *,
    config: AttentionPretrainConfig | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> Path:
    """Pretrain the attention module on the frames of ``datasets``; returns ``out_dir``.

    Args:
        datasets: one dataset directory, or several (``universal``: several games).
        out_dir: the checkpoint directory to create (must not exist, or be empty).
        steps: optimizer steps; overrides ``config.steps``.
        config: the other settings (default AttentionPretrainConfig()).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        progress: show a progress bar on stderr.

    Raises:
        DatasetError: a dataset is missing, not Atari, or has no frame pairs.
        RunError: a bad setting, or ``out_dir`` exists and is not empty.
    """
    config = dataclasses.replace(config or AttentionPretrainConfig())
    if steps is not None:
        config.steps = steps
    config.validate()
    paths = [datasets] if isinstance(datasets, str | Path) else list(datasets)
    if not paths:
        raise RunError("give at least one dataset to pretrain the attention module on")
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RunError(
            f"{out_dir} exists and is not empty: choose another --out for the attention checkpoint"
        )
    frames, games, records = open_frame_pairs(paths, config.max_gap)
    torch_device = resolve_device(device)
    provenance: dict[str, Any] = {
        "games": games,
        "datasets": records,
        "pretraining": dataclasses.asdict(config),
        "device": str(torch_device),
        "package_version": __version__,
        "created": now(),
    }

    torch.manual_seed(config.seed)
    module = SelfSupervisedAttention(1).to(torch_device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(module.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng(config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    pending: dict[str, list[float]] = {}
    last_time, last_step = time.perf_counter(), 0
    bar = tqdm(
        range(1, config.steps + 1),
        disable=not progress,
        desc=f"pretrain-attention {'+'.join(games)}",
        unit="step",
        dynamic_ncols=True,
        mininterval=1.0,
    )
    for step in bar:
        source, target = sample_pair_batch(frames, config.batch_size, rng, torch_device)
        loss, metrics = module.loss(
            source, target, threshold=config.threshold, sparsity=config.sparsity
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), config.max_grad_norm)
        optimizer.step()
        for key, value in metrics.items():
            pending.setdefault(key, []).append(value)
        if step % config.log_every == 0 or step == config.steps:
            elapsed = time.perf_counter() - last_time
            row = {k: float(np.mean(v)) for k, v in pending.items()}
            row.update(
                step=step,
                time=now(),
                pairs_per_s=config.batch_size * (step - last_step) / max(elapsed, 1e-9),
            )
            rows.append(row)
            pending, last_time, last_step = {}, time.perf_counter(), step
            bar.set_postfix(loss=f"{row['attention_loss']:.4f}", refresh=False)
        if step % config.checkpoint_every == 0 or step == config.steps:
            provenance["steps"] = step
            provenance["final_loss"] = rows[-1]["attention_loss"] if rows else None
            _save(module, out_dir, provenance, rows)
    return out_dir


def open_frame_pairs(
    paths: Sequence[str | Path], max_gap: int
) -> tuple[list[FramePairs], list[str], list[dict[str, Any]]]:
    """Open Atari datasets for pair sampling: their FramePairs, the games (each once, in
    order) and one provenance record per dataset (path, spec, game, sizes, policies)."""
    opened = [open_atari_dataset(p) for p in paths]
    records = [
        {
            "path": str(Path(dataset.root).resolve()),
            "env_spec": dataset.env_spec,
            "game": game,
            "episodes": dataset.num_episodes,
            "frames": dataset.num_frames,
            "policies": sorted(
                {c.get("policy", "?") for c in dataset.meta["provenance"]["collections"]}
            ),
        }
        for dataset, game in opened
    ]
    frames = [FramePairs(dataset, max_gap) for dataset, _ in opened]
    return frames, list(dict.fromkeys(game for _, game in opened)), records


def sample_pair_batch(
    frames: list[FramePairs], batch_size: int, rng: np.random.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(source, target) uint8 (B, 1, 84, 84): datasets equally often, then pairs in each."""
    which = rng.integers(len(frames), size=batch_size)
    sources, targets = [], []
    for i, data in enumerate(frames):
        count = int((which == i).sum())
        if count:
            s, t = data.sample(count, rng)
            sources.append(data.frames[s])
            targets.append(data.frames[t])
    source = torch.from_numpy(np.concatenate(sources)).to(device)
    target = torch.from_numpy(np.concatenate(targets)).to(device)
    return source, target


def _save(
    module: SelfSupervisedAttention,
    out_dir: Path,
    provenance: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:
    # The checkpoint replaces out_dir whole; metrics.csv is written back beside it after.
    if out_dir.exists() and any(out_dir.iterdir()) and not is_checkpoint(out_dir):
        raise RunError(f"{out_dir} was changed by someone else during pretraining; stopping")
    save_attention(module, out_dir, provenance)
    log = MetricsLog(out_dir / METRICS_FILE, METRIC_COLUMNS)
    for row in rows:
        log.log({k: v for k, v in row.items() if k in METRIC_COLUMNS})


__all__ = ["AttentionPretrainConfig", "pretrain_attention"]
