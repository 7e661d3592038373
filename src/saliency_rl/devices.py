"""``--device auto|cpu|cuda``: one rule for every command."""

from __future__ import annotations

import torch

from saliency_rl.errors import DeviceError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else the CPU; DeviceError for an unknown device or for
    CUDA on a machine without it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"unknown device {device!r}; valid: auto, cpu, cuda") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device cuda was asked for, but this machine has no CUDA GPU; use auto or cpu"
        )
    return resolved
