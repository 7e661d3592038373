"""Train the Transporter keypoint baseline: ``saliency-rl pretrain-transporter``.

On the frames the attention module is pretrained on (``saliency-rl collect --env
atari:<Game>``, grey 84x84), with the same frame pairs: source and target of one episode, 1 to
``max_gap`` steps apart (pretrain.attention_pretrain's sampler). Adam, lr 1e-3 (the paper's),
gradients clipped at 1.

Output directory (a checkpoint, replaced atomically at every save)::

    OUT/
      config.json          the model (K keypoints, ...) and its provenance: datasets, settings
      model.safetensors    the weights
      training_state/      optimizer, step, RNG states: ``--resume`` continues bit for bit
      metrics.csv          one row per log interval: loss, pairs/s
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
from saliency_rl.checkpoint import is_checkpoint, load_checkpoint, load_training_state
from saliency_rl.devices import resolve_device
from saliency_rl.models.transporter import Transporter, save_transporter
from saliency_rl.pretrain.attention_pretrain import (
    open_frame_pairs,
    sample_pair_batch,
)
from saliency_rl.runs import METRICS_FILE, MetricsLog, RunError, now

METRIC_COLUMNS = ("step", "time", "pairs_per_s", "transporter_loss")


@dataclass
class TransporterPretrainConfig:
    """Settings of Transporter training."""

    num_keypoints: int = 5
    """K, the keypoints per frame (compare with the attention module at k = K)."""
    steps: int = 10_000
    """Optimizer steps."""
    batch_size: int = 32
    """Frame pairs per step (the attention pretraining's)."""
    learning_rate: float = 1e-3
    """Adam learning rate (Kulkarni et al. 2019)."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global L2 norm."""
    max_gap: int = 59
    """A pair's frames are 1 to max_gap steps apart in one episode (as the attention module)."""
    width: int = 32
    """Channels of the first convolutions (the rest have twice as many)."""
    gaussian_std: float = 0.1
    """Keypoint Gaussians' standard deviation, of the [-1, 1] frame (the paper's 0.1)."""
    seed: int = 0
    """Seeds the initial weights and the pairs."""
    log_every: int = 100
    """Steps between rows of metrics.csv."""
    checkpoint_every: int = 500
    """Steps between saves of the checkpoint (and at the end)."""

    def validate(self) -> TransporterPretrainConfig:
        for name in (
            "num_keypoints",
            "steps",
            "batch_size",
            "max_gap",
            "width",
            "log_every",
            "checkpoint_every",
        ):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise RunError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("learning_rate", "gaussian_std"):
            if not getattr(self, name) > 0:
                raise RunError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.max_grad_norm < 0 or self.seed < 0:
            raise RunError("max_grad_norm and seed must be >= 0")
        return self


def pretrain_transporter(
    datasets: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    steps: int | None = None,
    *,
    config: TransporterPretrainConfig | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> Path:
    """Train a Transporter on the frame pairs of ``datasets``; returns ``out_dir``.

    Args:
        datasets: one Atari dataset directory or several.
        out_dir: the checkpoint directory (new or empty; with ``resume``, an earlier one).
        steps: optimizer steps in all; overrides ``config.steps`` (on resume: trains on to it).
        config: the settings (default TransporterPretrainConfig()); on resume the saved
            settings are used instead.
        resume: continue the checkpoint in ``out_dir`` from its last save.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        progress: show a progress bar on stderr.

    Raises:
        DatasetError: a dataset is missing, not Atari grey 84x84, or has no frame pairs.
        RunError: a bad setting, ``out_dir`` not empty (without resume) or no checkpoint in it.
    """
    config = dataclasses.replace(config or TransporterPretrainConfig())
    if steps is not None:
        config.steps = steps
    config.validate()
    paths = [datasets] if isinstance(datasets, str | Path) else list(datasets)
    if not paths:
        raise RunError("give at least one dataset to train the Transporter on")
    out_dir = Path(out_dir)
    torch_device = resolve_device(device)
    state: dict[str, Any] | None = None
    if resume:
        if not is_checkpoint(out_dir):
            raise RunError(f"{out_dir} holds no Transporter checkpoint to resume")
        saved, weights = load_checkpoint(out_dir, torch_device)
        state = load_training_state(out_dir, "cpu")
        if state is None:
            raise RunError(f"{out_dir} has no training state: it cannot be resumed")
        config = TransporterPretrainConfig(**saved["provenance"]["pretraining"])
        if steps is not None:
            config.steps = steps
        config.validate()
    elif out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RunError(f"{out_dir} exists and is not empty: choose another --out, or --resume")

    frames, games, records = open_frame_pairs(paths, config.max_gap)
    provenance: dict[str, Any] = {
        "games": games,
        "datasets": records,
        "pretraining": dataclasses.asdict(config),
        "device": str(torch_device),
        "package_version": __version__,
        "created": now(),
    }

    torch.manual_seed(config.seed)
    model = Transporter(
        config.num_keypoints, width=config.width, gaussian_std=config.gaussian_std
    ).to(torch_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng(config.seed)
    rows: list[dict[str, Any]] = []
    start = 0
    if state is not None:
        model.load_state_dict(weights)
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        rows, start = state["rows"], state["step"]
        provenance["created"] = state["created"]
    out_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    losses: list[float] = []
    last_time, last_step = time.perf_counter(), start
    bar = tqdm(
        range(start + 1, config.steps + 1),
        disable=not progress,
        desc=f"pretrain-transporter {'+'.join(games)}",
        unit="step",
        dynamic_ncols=True,
        mininterval=1.0,
    )
    for step in bar:
        source, target = sample_pair_batch(frames, config.batch_size, rng, torch_device)
        loss, metrics = model.loss(source, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        losses.append(metrics["transporter_loss"])
        if step % config.log_every == 0 or step == config.steps:
            elapsed = time.perf_counter() - last_time
            rows.append(
                {
                    "step": step,
                    "time": now(),
                    "pairs_per_s": config.batch_size * (step - last_step) / max(elapsed, 1e-9),
                    "transporter_loss": float(np.mean(losses)),
                }
            )
            losses, last_time, last_step = [], time.perf_counter(), step
            bar.set_postfix(loss=f"{rows[-1]['transporter_loss']:.4f}", refresh=False)
        if step % config.checkpoint_every == 0 or step == config.steps:
            provenance["steps"] = step
            provenance["final_loss"] = rows[-1]["transporter_loss"] if rows else None
            training_state = {
                "optimizer": optimizer.state_dict(),
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "rows": rows,
                "step": step,
                "created": provenance["created"],
            }
            model.eval()  # batch-norm statistics are saved as they are; eval changes none
            save_transporter(model, out_dir, provenance, training_state)
            model.train()
            log = MetricsLog(out_dir / METRICS_FILE, METRIC_COLUMNS)
            for row in rows:
                log.log(row)
    return out_dir


__all__ = ["TransporterPretrainConfig", "pretrain_transporter"]
