"""Policy learning: A2C / ACKTR with self-supervised attention (Wu et al. 2021), SAC from
pixels with RAD and CURL (ViSaRL's online RL), behaviour cloning with an LSTM (ViSaRL's
imitation).

``from saliency_rl.algos import train_sac`` imports torch and the trainer lazily. Every
trainer module ``<algo>_trainer`` has ``train_<algo>``, ``resume_<algo>`` and
``load_policy(run_dir)`` (what ``saliency-rl evaluate`` calls).
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
    "SACConfig",
    "SACAgent",
    "sac_config",
    "train_sac",
    "resume_sac",
    "BCConfig",
    "BCPolicyNet",
    "train_bc",
    "resume_bc",
    "KFAC",
    "ACKTRAgent",
    "train_acktr",
    "resume_acktr",
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
    "SACConfig": "sac",
    "SACAgent": "sac",
    "sac_config": "sac",
    "train_sac": "sac_trainer",
    "resume_sac": "sac_trainer",
    "BCConfig": "bc",
    "BCPolicyNet": "bc",
    "train_bc": "bc_trainer",
    "resume_bc": "bc_trainer",
    "KFAC": "kfac",
    "ACKTRAgent": "a2c",
    "train_acktr": "a2c_trainer",
    "resume_acktr": "a2c_trainer",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'saliency_rl.algos' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"saliency_rl.algos.{_WHERE[name]}"), name)
