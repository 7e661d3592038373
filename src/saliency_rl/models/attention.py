"""Self-supervised attention masks: Wu, Khetarpal, Precup, "Self-Supervised Attention-Aware
Reinforcement Learning" (AAAI 2021), after Transporter (Kulkarni et al., NeurIPS 2019).

Two frames of one trajectory, a source x_s and a target x_t (grey, (N, 1, 84, 84)):

    Φ  encoder         frame -> features (N, 32, 7, 7)
    Ψ  mask generator  frame -> mask     (N, 1, 7, 7) in [0, 1]
    transported = (1 - Ψ(x_s)) (1 - Ψ(x_t)) Φ(x_s) + Ψ(x_t) Φ(x_t)
    decoder            transported -> x̂_t (N, 1, 84, 84)

The target is rebuilt from the source's background (where neither mask is on) and its own
foreground (where its mask is on), so the mask must cover what moved between the frames:
the objects. As in Transporter, nothing flows back through the source branch.

Loss (the paper's Eq. 2-4, the official code's ``RECONSTRUCT_LOSS_THRESHOLD`` 0.01 and
``HEATMAP_SPARSITY_LOSS_WEIGHT`` 1e-3, pixels in [0, 1]):

    thresholded  mean over pixels of e² · [e² > delta],   e = x̂_t - x_t
    autoencoder  mean (decoder(Φ(x_t)) - x_t)²            keeps Φ and the decoder an autoencoder
    sparsity     lambda · mean Ψ(x_t)                     a mask on everything is no attention

The mask is 7x7 on 84x84 frames, the size of the last feature map of the Atari CNN
(models.atari_cnn), which it multiplies. Φ and Ψ are that CNN's three convolutions on one
frame (Ψ with LayerNorm, then a 1x1 convolution and a sigmoid); the decoder mirrors them with
transposed convolutions, as in the official code (github.com/happywu/Self-Sup-Attention-RL).

Beyond the paper, for control frames (DMC, Meta-World: colour, 64x64): one cell of a 7x7 mask
is 9 pixels of 64, as wide as a cart or a finger, so the mask cannot outline the bodies. There
``grid`` sets the mask's side (a power-of-two fraction of the frame: half the side by default,
32 on 64x64, 2-pixel cells; it outlined the bodies best of 8, 16 and 32 on cartpole and finger,
benchmarks/results/attention_saliency.md): Φ and Ψ halve the frame with 4x4 stride-2 convolutions (32, then 64 channels)
down to the grid, then a 3x3 convolution to 32 channels; the decoder mirrors them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from saliency_rl.checkpoint import load_module_checkpoint, save_module_checkpoint
from saliency_rl.models.atari_cnn import (
    FEATURE_CHANNELS,
    FEATURE_SIZE,
    IMAGE_SIZE,
    orthogonal_init,
    scale_frames,
)

MAKE_COMMAND = "saliency-rl pretrain-attention DATASET --out DIR"
"""The command that makes such a checkpoint, named in errors."""
MODEL_NAME = "SelfSupervisedAttention"
DEFAULT_THRESHOLD = 0.01
DEFAULT_SPARSITY = 1e-3


# ---------------------------------------------------------------------- building blocks
def _layers(image_size: int, grid: int) -> list[tuple[int, int, int, int, int]]:
    """(out channels, kernel, stride, padding, output side) of the trunk's convolutions."""
    if (image_size, grid) == (IMAGE_SIZE, FEATURE_SIZE):  # the Atari CNN's
        return [(32, 8, 4, 0, 20), (64, 4, 2, 0, 9), (FEATURE_CHANNELS, 3, 1, 0, FEATURE_SIZE)]
    halvings = math.log2(image_size / grid) if grid > 0 else -1
    if halvings < 1 or halvings != int(halvings):
        raise ValueError(
            f"a {grid}x{grid} mask on {image_size}x{image_size} frames: the grid must be the "
            f"frame side over a power of two (e.g. {image_size // 2}), or 7 on 84x84 (Atari)"
        )
    sides = [image_size >> (i + 1) for i in range(int(halvings))]
    channels = [32] + [64] * (len(sides) - 1)
    return [(c, 4, 2, 1, side) for c, side in zip(channels, sides, strict=True)] + [
        (FEATURE_CHANNELS, 3, 1, 1, grid)
    ]


def _conv_trunk(in_channels: int, layer_norm: bool, image_size: int, grid: int) -> nn.Sequential:
    """(N, C, S, S) -> (N, 32, grid, grid); on 84 / 7 the Atari CNN's convolutions."""
    relu = math.sqrt(2.0)
    layers: list[nn.Module] = []
    c_in = in_channels
    for c_out, kernel, stride, padding, size in _layers(image_size, grid):
        conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding)
        layers.append(orthogonal_init(conv, relu))
        if layer_norm:
            layers.append(nn.LayerNorm([c_out, size, size]))
        layers.append(nn.ReLU())
        c_in = c_out
    return nn.Sequential(*layers)


def _decoder(out_channels: int, image_size: int, grid: int) -> nn.Sequential:
    """(N, 32, grid, grid) -> (N, C, S, S): transposed convolutions mirroring the trunk."""
    relu = math.sqrt(2.0)
    if (image_size, grid) == (IMAGE_SIZE, FEATURE_SIZE):
        return nn.Sequential(
            orthogonal_init(nn.ConvTranspose2d(FEATURE_CHANNELS, 64, 3, stride=1), relu),  # 9x9
            nn.ReLU(),
            orthogonal_init(nn.ConvTranspose2d(64, 32, 4, stride=2), relu),  # 20x20
            nn.ReLU(),
            orthogonal_init(nn.ConvTranspose2d(32, 16, 8, stride=4), relu),  # 84x84
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(16, out_channels, 3, padding=1), 1.0),  # no squashing
        )
    trunk = _layers(image_size, grid)
    widths = [c for c, *_ in trunk[-2::-1]] + [16]  # the trunk's channels, backwards
    layers: list[nn.Module] = [
        orthogonal_init(nn.ConvTranspose2d(FEATURE_CHANNELS, widths[0], 3, padding=1), relu),
        nn.ReLU(),
    ]
    for c_in, c_out in zip(widths, widths[1:], strict=False):
        layers += [orthogonal_init(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), relu), nn.ReLU()]
    layers.append(orthogonal_init(nn.Conv2d(widths[-1], out_channels, 3, padding=1), 1.0))
    return nn.Sequential(*layers)


def thresholded_squared_error(prediction: Tensor, target: Tensor, threshold: float) -> Tensor:
    """Mean of the squared errors, counting only those above ``threshold`` (a scalar).

    An error e with e² <= threshold adds nothing, and no gradient: a reconstruction off by
    less than sqrt(threshold) everywhere scores 0, so small, blurry mistakes on the static
    background do not drown the errors on moving objects.
    """
    squared = (prediction - target).square()
    return (squared * (squared > threshold)).mean()


@dataclass
class AttentionOutput:
    """What :meth:`SelfSupervisedAttention.forward` computes; frames (N, 1, 84, 84)."""

    reconstruction: Tensor
    """x̂_t decoded from the transported features, (N, 1, 84, 84)."""
    autoencoded: Tensor
    """x_t decoded from its own features Φ(x_t), (N, 1, 84, 84)."""
    target_mask: Tensor
    """Ψ(x_t), (N, 1, 7, 7) in [0, 1]."""
    source_mask: Tensor
    """Ψ(x_s), (N, 1, 7, 7), without gradient."""


# ---------------------------------------------------------------------- the module
class SelfSupervisedAttention(nn.Module):
    """Φ, Ψ and the decoder; see the module docstring.

    Args:
        in_channels: channels of one frame (1: grey, the Atari setting; 3: colour).
        image_size: the frames' side (84: Atari).
        grid: the mask's side (7 on 84: Atari, the CNN's feature map; else the frame side
            over a power of two).
    """

    def __init__(self, in_channels: int = 1, image_size: int = IMAGE_SIZE, grid: int = 0) -> None:
        super().__init__()
        grid = grid or (FEATURE_SIZE if image_size == IMAGE_SIZE else image_size // 2)
        self.in_channels, self.image_size, self.grid = in_channels, image_size, grid
        self.encoder = _conv_trunk(in_channels, False, image_size, grid)  # Φ
        self.mask_trunk = _conv_trunk(in_channels, True, image_size, grid)  # Ψ, before its head
        # A zero-biased head starts every mask at sigmoid(~0) = 0.5.
        self.mask_head = orthogonal_init(nn.Conv2d(FEATURE_CHANNELS, 1, 1), 1.0)
        self.decoder = _decoder(in_channels, image_size, grid)

    def config(self) -> dict[str, Any]:
        """What to build: the model's name and keyword arguments."""
        kwargs = {"in_channels": self.in_channels}
        if (self.image_size, self.grid) != (IMAGE_SIZE, FEATURE_SIZE):  # Atari's: as before
            kwargs |= {"image_size": self.image_size, "grid": self.grid}
        return {"model": MODEL_NAME, "kwargs": kwargs}

    def _check(self, frames: Tensor, name: str) -> Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if frames.dim() != 4 or tuple(frames.shape[1:]) != expected:
            raise ValueError(
                f"{name} must be frames (N, {', '.join(map(str, expected))}), got {tuple(frames.shape)}"
            )
        return scale_frames(frames)

    # -------------------------------------------------------------- Φ, Ψ, decoder
    def encode(self, frames: Tensor) -> Tensor:
        """Φ: frames uint8 or [0, 1] (N, 1, 84, 84) -> features (N, 32, 7, 7)."""
        return self.encoder(self._check(frames, "frames"))

    def mask(self, frames: Tensor) -> Tensor:
        """Ψ: frames uint8 or [0, 1] (N, 1, 84, 84) -> mask (N, 1, 7, 7) in [0, 1]."""
        return torch.sigmoid(self.mask_head(self.mask_trunk(self._check(frames, "frames"))))

    def decode(self, features: Tensor) -> Tensor:
        """features (N, 32, 7, 7) -> frames (N, 1, 84, 84), unbounded."""
        return self.decoder(features)

    # -------------------------------------------------------------- transport
    def forward(self, source: Tensor, target: Tensor) -> AttentionOutput:
        """Rebuild ``target`` from ``source``; both uint8 or [0, 1] float (N, 1, 84, 84)."""
        with torch.no_grad():  # the source branch is not back-propagated (Transporter)
            source_features = self.encode(source)  # (N, 32, 7, 7)
            source_mask = self.mask(source)  # (N, 1, 7, 7)
        target_features = self.encode(target)  # (N, 32, 7, 7)
        target_mask = self.mask(target)  # (N, 1, 7, 7)
        transported = (1 - source_mask) * (1 - target_mask) * source_features
        transported = transported + target_mask * target_features  # (N, 32, 7, 7)
        return AttentionOutput(
            reconstruction=self.decode(transported),  # (N, 1, 84, 84)
            autoencoded=self.decode(target_features),  # (N, 1, 84, 84)
            target_mask=target_mask,
            source_mask=source_mask,
        )

    # -------------------------------------------------------------- loss
    def loss(
        self,
        source: Tensor,
        target: Tensor,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        sparsity: float = DEFAULT_SPARSITY,
    ) -> tuple[Tensor, dict[str, float]]:
        """The training loss on frame pairs and its parts (floats, for logging).

        Args:
            source, target: frames of one trajectory, uint8 or [0, 1] (N, 1, 84, 84).
            threshold: squared pixel errors at or below it are ignored (delta, 0.01).
            sparsity: weight of the mean target mask (lambda, 1e-3).
        """
        out = self(source, target)
        goal = scale_frames(target).float()
        # the errors in fp32 also when the networks ran under bf16 autocast
        reconstruction = thresholded_squared_error(out.reconstruction.float(), goal, threshold)
        autoencoder = (out.autoencoded.float() - goal).square().mean()
        mask_mean = out.target_mask.float().mean()
        loss = reconstruction + autoencoder + sparsity * mask_mean
        metrics = {
            "attention_loss": float(loss.detach()),
            "reconstruction_loss": float(reconstruction.detach()),
            "autoencoder_loss": float(autoencoder.detach()),
            "mask_mean": float(mask_mean.detach()),
        }
        return loss, metrics


# ---------------------------------------------------------------------- checkpoints
save_attention = save_module_checkpoint
"""``save_attention(module, directory, provenance, training_state=None)``: write a checkpoint."""


def load_attention(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[SelfSupervisedAttention, dict[str, Any]]:
    """Read an attention checkpoint: ``(module, config)``, the config with its provenance;
    CheckpointError when the directory is missing, damaged, or holds another model."""
    module, config = load_module_checkpoint(
        directory, MODEL_NAME, SelfSupervisedAttention, MAKE_COMMAND, device
    )
    return module, config  # type: ignore[return-value]
