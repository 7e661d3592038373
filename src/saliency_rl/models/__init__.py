"""Models. MultiMAE (masked multi-modal pretraining) and its frozen encoder are exported here."""

from saliency_rl.models.multimae import (
    MODALITIES,
    MODEL_SIZES,
    ModelError,
    MultiMAE,
    MultiMAEConfig,
    MultiMAEOutput,
    multimae_config,
    multimae_tiny,
    multimae_visarl,
    prepare_inputs,
)

__all__ = [
    "MODALITIES",
    "MODEL_SIZES",
    "ModelError",
    "MultiMAE",
    "MultiMAEConfig",
    "MultiMAEOutput",
    "multimae_config",
    "multimae_tiny",
    "multimae_visarl",
    "prepare_inputs",
]
