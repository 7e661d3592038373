"""Masked pretraining loops."""

from saliency_rl.pretrain.multimae_pretrain import (
    PretrainConfig,
    PretrainError,
    PretrainSummary,
    pretrain_multimae,
)

__all__ = [
    "PretrainConfig",
    "PretrainError",
    "PretrainSummary",
    "pretrain_multimae",
]
