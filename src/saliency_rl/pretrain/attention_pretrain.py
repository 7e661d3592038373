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
from dataclasses import dataclass
from typing import Any

import torch

from saliency_rl.models.attention import SelfSupervisedAttention, save_attention
from saliency_rl.pretrain.pair_training import PairModel, PairPretrainConfig, pretrain_on_pairs
from saliency_rl.runs import RunError

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
class AttentionPretrainConfig(PairPretrainConfig):
    """Settings of offline attention pretraining: the pair pretraining's (learning rate 1e-3
    and clipping at 0.5: the official code's attention optimizer), plus the loss's."""

    threshold: float = 0.01
    """delta: squared pixel errors (pixels in [0, 1]) at or below it are ignored."""
    sparsity: float = 1e-3
    """lambda: weight of the mean mask."""
    grid: int = 0
    """The mask's side; 0: 7 on Atari's 84x84 frames (the paper's), half the frame side
    on other suites' (32 on 64x64: the best of 8, 16 and 32 measured). Another: the frame side over a power of two."""

    def non_negative_fields(self) -> tuple[str, ...]:
        return ("threshold", "sparsity", "grid")


def _build(
    config: AttentionPretrainConfig, frame_shape: tuple[int, ...], device: torch.device
) -> SelfSupervisedAttention:
    channels, size, _ = frame_shape
    try:
        module = SelfSupervisedAttention(channels, size, config.grid)
    except ValueError as error:
        raise RunError(str(error)) from None
    return module.to(device, memory_format=torch.channels_last)


def _loss(module: SelfSupervisedAttention, config: AttentionPretrainConfig) -> Any:
    return functools.partial(module.loss, threshold=config.threshold, sparsity=config.sparsity)


ATTENTION = PairModel(
    name="pretrain-attention",
    what="attention module",
    atari_only=False,
    config=AttentionPretrainConfig,
    build=_build,
    loss=_loss,
    columns=METRIC_COLUMNS,
    loss_key="attention_loss",
    save=save_attention,
)


pretrain_attention = functools.partial(pretrain_on_pairs, ATTENTION)
"""``pretrain_attention(datasets, out_dir, steps=None, *, config=AttentionPretrainConfig(), resume=False,
device="auto", progress=True) -> out_dir``: train the attention module on the datasets' frame pairs
(pair_training.pretrain_on_pairs)."""


__all__ = ["ATTENTION", "AttentionPretrainConfig", "pretrain_attention"]
