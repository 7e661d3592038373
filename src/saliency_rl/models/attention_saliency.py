"""Saliency with no person: a pretrained self-supervised attention module as a saliency source.

``saliency-rl pretrain-attention DATASET`` trains the module of Wu et al. (models.attention) on
a dataset's own frame pairs; its mask Ψ(frame), upsampled bilinearly from the mask grid to the
frame, is then the frame's saliency map, wherever the pipeline takes a predictor checkpoint
(``label --attention``, ``train sac --predictor``, the frozen MultiMAE's ``rgb+saliency``,
``train bc --predictor``): :func:`load_saliency_source` tells the two kinds of checkpoint
apart. The maps are the mask's own values in [0, 1] (its sparsity term keeps them low away
from the bodies), not rescaled per frame: a frame with nothing moving stays dark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from saliency_rl.checkpoint import read_config
from saliency_rl.errors import CheckpointError
from saliency_rl.models.attention import MODEL_NAME, SelfSupervisedAttention, load_attention
from saliency_rl.saliency.predictor import BATCH_SIZE, SaliencyPredictor


class AttentionSaliency(SaliencyPredictor):
    """An attention module's masks as saliency maps, with the predictor's interface
    (``predict``, ``predict_uint8``, ``predict_torch``, ``image_size``, ``env_spec``)."""

    def __init__(
        self,
        module: SelfSupervisedAttention,
        config: dict[str, Any],
        device: str | torch.device = "cpu",
        batch_size: int = BATCH_SIZE,
    ) -> None:
        datasets = config.get("provenance", {}).get("datasets") or [{}]
        config = {
            **config,
            "image_size": [module.image_size, module.image_size],
            "in_channels": module.in_channels,
            "env_spec": datasets[0].get("env_spec"),
        }
        super().__init__(module, config, device, batch_size)

    def _forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.to(self.device, non_blocking=True)
        x = x.contiguous(memory_format=torch.channels_last)
        mask = self.model.mask(x)  # (n, 1, grid, grid) in [0, 1]
        size = self.image_size
        return F.interpolate(mask.float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def is_attention_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a ``pretrain-attention`` checkpoint."""
    try:
        return read_config(path).get("model") == MODEL_NAME
    except (CheckpointError, OSError):  # not a checkpoint: the predictor's loader says why
        return False


def load_saliency_source(
    path: str | Path,
    device: str | torch.device = "auto",
    batch_size: int = BATCH_SIZE,
    env_spec: str | None = None,
) -> SaliencyPredictor:
    """A saliency predictor (``train-saliency``) or an attention module
    (``pretrain-attention``) from its checkpoint directory, as one kind of source."""
    if is_attention_checkpoint(path):
        from saliency_rl.devices import resolve_device

        torch_device = resolve_device(device)
        module, config = load_attention(path, torch_device)
        return AttentionSaliency(module.eval(), config, torch_device, batch_size)
    return SaliencyPredictor.load(path, device=device, batch_size=batch_size, env_spec=env_spec)


__all__ = ["AttentionSaliency", "is_attention_checkpoint", "load_saliency_source"]
