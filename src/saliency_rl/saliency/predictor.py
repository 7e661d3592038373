"""A trained saliency predictor: frames in, saliency maps out.

    predictor = SaliencyPredictor.load("runs/predictor")          # a checkpoint directory
    maps = predictor.predict(frames)       # uint8 (N, 3, H, W) -> float32 (N, H, W) in [0, 1]
    maps = predictor.predict_torch(obs)    # torch in, torch out, on obs's device (RL loops)

Checkpoints are written by ``saliency.fit.fit_predictor``: ``config.json`` names the model
and its constructor arguments, ``model.safetensors`` holds the weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from saliency_rl.checkpoint import load_checkpoint
from saliency_rl.devices import resolve_device
from saliency_rl.errors import CheckpointError
from saliency_rl.saliency.picanet import PiCANet, picanet_small, picanet_tiny
from saliency_rl.saliency.unet import UNet, unet_small, unet_tiny

FORMAT = "saliency-rl-saliency-predictor"
MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "picanet": PiCANet}
SIZES: dict[str, dict[str, Callable[..., nn.Module]]] = {
    "unet": {"small": unet_small, "tiny": unet_tiny},
    "picanet": {"small": picanet_small, "tiny": picanet_tiny},
}
BATCH_SIZE = 64  # frames per forward pass: on a 2-core CPU, larger batches fell out of cache


def build_model(
    name: str, size: str = "small", image_size: Sequence[int] = (64, 64), in_channels: int = 3
) -> nn.Module:
    """A fresh predictor network of a named model (unet, picanet) and size (small, tiny)."""
    if name not in SIZES:
        raise ValueError(f"unknown saliency model {name!r}; valid models: {', '.join(SIZES)}")
    if size not in SIZES[name]:
        raise ValueError(f"unknown size {size!r} of {name}; valid sizes: {', '.join(SIZES[name])}")
    factory = SIZES[name][size]
    if name == "picanet":
        return factory(tuple(image_size), in_channels)
    return factory(in_channels)


def fuse_batch_norm(model: nn.Module) -> nn.Module:
    """An evaluation-mode copy with every Conv2d -> BatchNorm2d pair in a Sequential folded
    into one convolution (same outputs up to rounding, one pass over memory fewer)."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, norm = module._modules[first], module._modules[second]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                module._modules[first] = fuse_conv_bn_eval(conv, norm)
                module._modules[second] = nn.Identity()
    return model


class SaliencyPredictor:
    """A saliency network in evaluation mode, with batched, gradient-free prediction.

    Args:
        model: a network mapping float frames (N, C, H, W) in [0, 1] to a list of logit maps,
            the full-resolution one last (``UNet``, ``PiCANet``); the predictor runs a copy
            with batch norm folded into the convolutions, in channels-last memory layout
            (both faster on a CPU).
        config: the checkpoint config (``model``, ``model_kwargs``, ``image_size``, ...).
        device: where the network runs.
        batch_size: frames per forward pass.
    """

    def __init__(
        self,
        model: nn.Module,
        config: dict,
        device: str | torch.device = "cpu",
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.device = resolve_device(device)
        self.model = fuse_batch_norm(model).to(self.device, memory_format=torch.channels_last)
        self.config = config
        self.image_size = tuple(int(s) for s in config["image_size"])
        self.in_channels = int(config["in_channels"])
        self.batch_size = batch_size

    @classmethod
    def load(
        cls,
        checkpoint_dir: str | Path,
        device: str | torch.device = "auto",
        batch_size: int = BATCH_SIZE,
    ) -> SaliencyPredictor:
        """Load a checkpoint written by ``fit_predictor``; CheckpointError if it is not one."""
        config, state_dict = load_checkpoint(checkpoint_dir)
        if config.get("format") != FORMAT:
            raise CheckpointError(
                f"{checkpoint_dir} is not a saliency predictor checkpoint (its config has format "
                f"{config.get('format')!r}, expected {FORMAT!r})"
            )
        name = config.get("model")
        if name not in MODELS:
            raise CheckpointError(
                f"{checkpoint_dir} holds an unknown saliency model {name!r}; known: {', '.join(MODELS)}"
            )
        try:
            model = MODELS[name](**config["model_kwargs"])
            model.load_state_dict(state_dict)
        except (KeyError, TypeError, RuntimeError, ValueError) as error:
            raise CheckpointError(
                f"{checkpoint_dir} is damaged: its weights do not fit its config ({error})"
            ) from None
        return cls(model, config, device, batch_size)

    # ------------------------------------------------------------------ prediction
    def _check(self, frames: torch.Tensor) -> None:
        if frames.ndim != 4 or frames.shape[1] != self.in_channels:
            raise ValueError(
                f"frames must be (N, {self.in_channels}, H, W), got shape {tuple(frames.shape)}"
            )
        if tuple(frames.shape[-2:]) != self.image_size:
            h, w = self.image_size
            raise ValueError(
                f"this predictor was trained on {h}x{w} frames, got "
                f"{frames.shape[-2]}x{frames.shape[-1]}: label frames of the training size"
            )

    def _forward(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 or float frames (n, C, H, W) on any device -> float maps (n, H, W) on self.device."""
        x = frames.to(self.device, non_blocking=True)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        x = x.contiguous(memory_format=torch.channels_last)
        return torch.sigmoid(self.model(x)[-1][:, 0])

    def predict_torch(self, frames: torch.Tensor) -> torch.Tensor:
        """Saliency maps of a batch, torch to torch, without gradients (for RL loops).

        frames: (N, C, H, W) uint8 (0..255) or float (0..1), any device
        returns: (N, H, W) float32 in [0, 1], on frames' device (an ordinary tensor, usable
            as input to networks being trained)
        """
        self._check(frames)
        with torch.no_grad():
            maps = [self._forward(chunk) for chunk in frames.split(self.batch_size)]
        return torch.cat(maps).to(frames.device)

    def predict(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """Saliency maps of uint8 frames.

        frames: (N, C, H, W) uint8, numpy or torch
        returns: (N, H, W) float32 numpy in [0, 1]
        """
        return self._predict_numpy(frames, as_uint8=False)

    def predict_uint8(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """As ``predict``, but rounded to uint8 0..255 (the stored form, ``maps.map_to_uint8``)."""
        return self._predict_numpy(frames, as_uint8=True)

    def _predict_numpy(self, frames: np.ndarray | torch.Tensor, as_uint8: bool) -> np.ndarray:
        frames = torch.as_tensor(frames)
        self._check(frames)
        out = []
        with torch.inference_mode():
            for chunk in frames.split(self.batch_size):
                maps = self._forward(chunk)
                if as_uint8:
                    maps = (maps * 255.0).round_().to(torch.uint8)
                out.append(maps.cpu())
        if not out:
            dtype = torch.uint8 if as_uint8 else torch.float32
            return torch.zeros((0, *self.image_size), dtype=dtype).numpy()
        return torch.cat(out).numpy()
