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
      training_state/      optimizer, step, RNG states: ``--resume`` continues bit for bit
      metrics.csv          one row per log interval: losses, mean mask, pairs/s
      tb/                  the same rows as TensorBoard events

The frame pairs and the training loop are pretrain.pair_training's, shared with the
Transporter baseline.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from saliency_rl.models.attention import SelfSupervisedAttention, save_attention
from saliency_rl.pretrain.pair_training import start_pair_run, train_on_pairs
from saliency_rl.runs import check_settings

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
        check_settings(
            self,
            positive=("steps", "batch_size", "max_gap", "log_every", "checkpoint_every",
                      "learning_rate"),
            non_negative=("max_grad_norm", "threshold", "sparsity", "seed"),
        )  # fmt: skip
        return self


def pretrain_attention(
    datasets: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    steps: int | None = None,
    *,
    config: AttentionPretrainConfig | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> Path:
    """Pretrain the attention module on the frames of ``datasets``; returns ``out_dir``.

    Args:
        datasets: one dataset directory, or several (``universal``: several games).
        out_dir: the checkpoint directory (new or empty; with ``resume``, an earlier one).
        steps: optimizer steps in all; overrides ``config.steps`` (on resume: trains on to it).
        config: the other settings (default AttentionPretrainConfig()); on resume the saved
            settings are used instead.
        resume: continue the checkpoint in ``out_dir`` from its last save, bit for bit.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        progress: show a progress bar on stderr.

    Raises:
        DatasetError: a dataset is missing, not Atari, or has no frame pairs.
        RunError: a bad setting, ``out_dir`` not empty (without resume) or no checkpoint in it.
    """
    run = start_pair_run(
        datasets,
        out_dir,
        steps,
        config or AttentionPretrainConfig(),
        resume=resume,
        device=device,
        what="attention module",
    )
    torch.manual_seed(run.config.seed)
    module = SelfSupervisedAttention(1).to(run.device, memory_format=torch.channels_last)
    return train_on_pairs(
        run,
        module,
        functools.partial(
            module.loss, threshold=run.config.threshold, sparsity=run.config.sparsity
        ),
        columns=METRIC_COLUMNS,
        loss_key="attention_loss",
        save=save_attention,
        name="pretrain-attention",
        progress=progress,
    )


__all__ = ["AttentionPretrainConfig", "pretrain_attention"]
