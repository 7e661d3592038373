"""Reinforcement-learning algorithms: A2C with self-supervised attention (Wu et al. 2021).

``from saliency_rl.algos import train_a2c`` imports torch and the trainer lazily.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "A2C_PRESETS",
    "ATTENTION_MODES",
    "A2CAgent",
    "A2CConfig",
    "a2c_config",
    "evaluate_a2c",
    "resume_a2c",
    "train_a2c",
]

_WHERE = {
    "A2C_PRESETS": "a2c",
    "ATTENTION_MODES": "a2c",
    "A2CAgent": "a2c",
    "A2CConfig": "a2c",
    "a2c_config": "a2c",
    "evaluate_a2c": "a2c_trainer",
    "resume_a2c": "a2c_trainer",
    "train_a2c": "a2c_trainer",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'saliency_rl.algos' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"saliency_rl.algos.{_WHERE[name]}"), name)
