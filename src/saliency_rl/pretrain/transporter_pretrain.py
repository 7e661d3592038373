"""Train the Transporter keypoint baseline: ``saliency-rl pretrain-transporter``.

On the frames the attention module is pretrained on (``saliency-rl collect --env
atari:<Game>``, grey 84x84), with the same frame pairs: source and target of one episode, 1 to
``max_gap`` steps apart (pretrain.pair_training's sampler and loop). Adam, lr 1e-3 (the paper's),
gradients clipped at 1.

Output directory (a checkpoint, replaced atomically at every save)::

    OUT/
      config.json          the model (K keypoints, ...) and its provenance: datasets, settings
      model.safetensors    the weights
      training_state/      optimizer, step, RNG states: ``--resume`` continues bit for bit
      metrics.csv          one row per log interval: loss, pairs/s
      tb/                  the same rows as TensorBoard events
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from saliency_rl.models.transporter import Transporter, save_transporter
from saliency_rl.pretrain.pair_training import start_pair_run, train_on_pairs
from saliency_rl.runs import check_settings

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
        check_settings(
            self,
            positive=("num_keypoints", "steps", "batch_size", "max_gap", "width", "log_every",
                      "checkpoint_every", "learning_rate", "gaussian_std"),
            non_negative=("max_grad_norm", "seed"),
        )  # fmt: skip
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
    run = start_pair_run(
        datasets,
        out_dir,
        steps,
        config or TransporterPretrainConfig(),
        resume=resume,
        device=device,
        what="Transporter",
    )
    config = run.config
    torch.manual_seed(config.seed)
    model = Transporter(
        config.num_keypoints, width=config.width, gaussian_std=config.gaussian_std
    ).to(run.device)
    return train_on_pairs(
        run,
        model,
        model.loss,
        columns=METRIC_COLUMNS,
        loss_key="transporter_loss",
        save=save_transporter,
        name="pretrain-transporter",
        progress=progress,
    )


__all__ = ["TransporterPretrainConfig", "pretrain_transporter"]
