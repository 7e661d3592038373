"""A trained saliency predictor: frames in, saliency maps out.

    predictor = SaliencyPredictor.load("runs/predictor")          # a checkpoint directory
    maps = predictor.predict(frames)       # uint8 (N, 3, H, W) -> float32 (N, H, W) in [0, 1]
    maps = predictor.predict_torch(obs)    # torch in, torch out, on obs's device (RL loops)

Checkpoints are written by ``saliency.fit.fit_predictor``: ``config.json`` names the model
and its constructor arguments, ``model.safetensors`` holds the weights. Every predictor is
loaded by ``SaliencyPredictor.load``, which names what a wrong directory holds instead (a
MultiMAE run, a training run, a dataset) and warns when the predictor was trained on another
environment than the one it is used on.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from saliency_rl.checkpoint import CONFIG_FILE, MULTIMAE_V1_FORMAT, load_checkpoint
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
# MultiMAE's first checkpoint format, which named no model, so a wrong --predictor is named
# (today's checkpoints name their model in config.json).
OTHER_FORMATS = {MULTIMAE_V1_FORMAT: "MultiMAE"}
HOW_TO_MAKE = "give the --out of `saliency-rl train-saliency` (by default DATASET/predictors/unet)"
_warned_env: set[tuple[str, str]] = set()  # (checkpoint, env spec) pairs warned about


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

    @property
    def env_spec(self) -> str | None:
        """The environment spec of the frames it was trained on (None in old checkpoints)."""
        return self.config.get("env_spec")

    @classmethod
    def load(
        cls,
        checkpoint_dir: str | Path,
        device: str | torch.device = "auto",
        batch_size: int = BATCH_SIZE,
        env_spec: str | None = None,
    ) -> SaliencyPredictor:
        """Load a checkpoint written by ``fit_predictor``; CheckpointError if it is not one.

        Args:
            env_spec: the environment whose frames it will label; a predictor trained on
                another one is loaded with a warning on stderr naming both (once per
                checkpoint and spec), since its maps may miss this task's bodies.
        """
        foreign = _what_else(Path(checkpoint_dir))
        if foreign is not None:
            raise CheckpointError(
                f"{checkpoint_dir} is {foreign}, not a saliency predictor: {HOW_TO_MAKE}"
            )
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
        predictor = cls(model, config, device, batch_size)
        if env_spec is not None:
            _warn_other_env(Path(checkpoint_dir), predictor.env_spec, env_spec)
        return predictor

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


# ---------------------------------------------------------------------- loading checks
def _what_else(directory: Path) -> str | None:
    """What ``directory`` holds when it is recognisably something other than a predictor
    ("a MultiMAE run", "an SAC run", "a dataset"); None when it may be one (``load_checkpoint``
    then names what is missing or damaged)."""
    config = _read_config(directory / CONFIG_FILE)
    if config is None:
        # A pretraining run keeps its checkpoints in checkpoints/step_N/, with no config.json
        # of its own.
        steps = sorted((directory / "checkpoints").glob(f"step_*/{CONFIG_FILE}"))
        if steps:
            kind = _kind(_read_config(steps[-1]) or {})
            return _article(f"{kind or 'training'} run")
        if (directory / "meta.json").is_file():
            return "a dataset"
        return None
    if config.get("format") == FORMAT:
        return None
    kind = _kind(config)
    if kind is None:
        return None
    return _article(f"{kind} run" if (directory / "checkpoints").is_dir() else f"{kind} checkpoint")


def _kind(config: dict) -> str | None:
    """The kind of model or run a config.json describes, as users know it."""
    if config.get("format") in OTHER_FORMATS:
        return OTHER_FORMATS[config["format"]]
    if isinstance(config.get("algo"), str):
        return config["algo"].upper()  # a training run: sac, a2c, bc
    model = config.get("model")
    if isinstance(model, str) and model not in MODELS:
        return model  # another module checkpoint: attention, transporter
    return None


def _read_config(path: Path) -> dict | None:
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return config if isinstance(config, dict) else None


def _article(words: str) -> str:
    """'an' before a vowel (an A2C run, an attention checkpoint), 'a' otherwise."""
    return f"{'an' if words[:1].upper() in 'AEIOU' else 'a'} {words}"


def _warn_other_env(directory: Path, trained: str | None, used: str) -> None:
    """One line on stderr when the predictor was trained on frames of another environment."""
    key = (str(directory.resolve()), used)
    if trained is None or trained == used or key in _warned_env:
        return
    _warned_env.add(key)
    print(
        f"saliency-rl: warning: predictor {directory} was trained on {trained} frames and is "
        f"used on {used}: its maps may miss this task's bodies (train one on {used} with "
        "`saliency-rl train-saliency`)",
        file=sys.stderr,
    )
