"""Transporter: Kulkarni et al., "Unsupervised Learning of Object Keypoints for Perception and
Control" (NeurIPS 2019), the keypoint baseline of the attention module (models.attention).

Two frames of one trajectory, a source x_s and a target x_t (grey, (N, 1, 84, 84)):

    Φ  feature encoder     frame -> features (N, C, 21, 21)
    Ψ  keypoint network    frame -> K heatmaps (N, K, 21, 21)
       spatial softmax     heatmaps -> K expected positions (N, K, 2), in [-1, 1]
       Gaussian maps       positions -> H (N, K, 21, 21), std ``gaussian_std`` (of [-1, 1])
    transport (the paper's Eq. 1, applied keypoint after keypoint):
       f <- (1 - H_s^k) (1 - H_t^k) f + H_t^k Φ(x_t),   starting from f = Φ(x_s)
    decoder                f -> x̂_t (N, 1, 84, 84)
    loss                   mean (x̂_t - x_t)², pixels in [0, 1]

The source's features around its keypoints are erased, the target's pasted in around the
target's keypoints: to rebuild x_t, the keypoints must sit on what moved. As in the paper's
code, nothing is back-propagated through the source branch. The keypoints are the K expected
positions, mapped to frame pixels (x, y) by :meth:`Transporter.keypoints`; K is fixed at
training (unlike the attention module's top-k peaks).

Sizes are the paper's Atari encoder cut down for our 84x84 grey frames and a 2-core CPU:
convolutions 3x3 with batch norm, 32-32-64-64 channels, the first and third of stride 2
(84 -> 42 -> 21); the decoder mirrors them with two 2x bilinear upsamplings and ends with one
3x3 convolution at full resolution. Nothing runs at 84x84 but that last convolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saliency_rl.checkpoint import load_module_checkpoint, save_module_checkpoint
from saliency_rl.models.atari_cnn import IMAGE_SIZE, scale_frames

MAKE_COMMAND = "saliency-rl pretrain-transporter DATASET --out DIR"
"""The command that makes such a checkpoint, named in errors."""
MODEL_NAME = "Transporter"
FEATURE_SIZE = IMAGE_SIZE // 4  # 21: two stride-2 convolutions


def _block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    ]


def _encoder(in_channels: int, width: int) -> nn.Sequential:
    """(N, C, 84, 84) -> (N, 2 width, 21, 21)."""
    return nn.Sequential(
        *_block(in_channels, width, 2),  # 42
        *_block(width, width, 1),
        *_block(width, 2 * width, 2),  # 21
        *_block(2 * width, 2 * width, 1),
    )


def _decoder(width: int, out_channels: int) -> nn.Sequential:
    """(N, 2 width, 21, 21) -> (N, C, 84, 84)."""
    return nn.Sequential(
        *_block(2 * width, 2 * width, 1),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),  # 42
        *_block(2 * width, width, 1),
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),  # 84
        nn.Conv2d(width, out_channels, 3, padding=1),
    )


def spatial_softmax(heatmaps: Tensor) -> Tensor:
    """Heatmaps (N, K, h, w) -> expected (x, y) per map (N, K, 2), in [-1, 1] (pixel centres)."""
    n, k, h, w = heatmaps.shape
    weights = heatmaps.reshape(n, k, -1).softmax(-1).reshape(n, k, h, w)
    xs = torch.linspace(-1, 1, w, device=heatmaps.device, dtype=weights.dtype)
    ys = torch.linspace(-1, 1, h, device=heatmaps.device, dtype=weights.dtype)
    x = (weights.sum(2) * xs).sum(-1)  # (N, K)
    y = (weights.sum(3) * ys).sum(-1)  # (N, K)
    return torch.stack([x, y], -1)


def gaussian_maps(points: Tensor, size: tuple[int, int], std: float) -> Tensor:
    """Points (N, K, 2) (x, y) in [-1, 1] -> isotropic Gaussians (N, K, h, w), peak 1."""
    h, w = size
    xs = torch.linspace(-1, 1, w, device=points.device, dtype=points.dtype)
    ys = torch.linspace(-1, 1, h, device=points.device, dtype=points.dtype)
    gx = torch.exp(-((xs - points[..., :1]) ** 2) / (2 * std**2))  # (N, K, w)
    gy = torch.exp(-((ys - points[..., 1:]) ** 2) / (2 * std**2))  # (N, K, h)
    return gy[..., :, None] * gx[..., None, :]


@dataclass
class TransporterOutput:
    """What :meth:`Transporter.forward` computes."""

    reconstruction: Tensor
    """x̂_t, (N, 1, 84, 84)."""
    target_points: Tensor
    """the target's keypoints (N, K, 2), (x, y) in [-1, 1]."""


class Transporter(nn.Module):
    """Φ, Ψ and the decoder; see the module docstring.

    Args:
        num_keypoints: K.
        in_channels: channels of one frame (1: grey).
        width: channels of the first convolutions (the rest are 2 width).
        gaussian_std: standard deviation of the keypoint Gaussians, in units of the [-1, 1]
            frame (the paper's 0.1).
    """

    def __init__(
        self,
        num_keypoints: int,
        *,
        in_channels: int = 1,
        width: int = 32,
        gaussian_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.num_keypoints, self.in_channels = num_keypoints, in_channels
        self.width, self.gaussian_std = width, gaussian_std
        self.features = _encoder(in_channels, width)  # Φ
        self.keypoint_net = nn.Sequential(  # Ψ
            _encoder(in_channels, width), nn.Conv2d(2 * width, num_keypoints, 1)
        )
        self.decoder = _decoder(width, in_channels)

    def config(self) -> dict[str, Any]:
        """What to build: the model's name and keyword arguments."""
        kwargs = {
            "num_keypoints": self.num_keypoints,
            "in_channels": self.in_channels,
            "width": self.width,
            "gaussian_std": self.gaussian_std,
        }
        return {"model": MODEL_NAME, "kwargs": kwargs}

    def _check(self, frames: Tensor) -> Tensor:
        expected = (self.in_channels, IMAGE_SIZE, IMAGE_SIZE)
        if frames.dim() != 4 or tuple(frames.shape[1:]) != expected:
            raise ValueError(
                f"frames must be (N, {', '.join(map(str, expected))}), got {tuple(frames.shape)}"
            )
        return scale_frames(frames)

    def points(self, frames: Tensor) -> Tensor:
        """Ψ + spatial softmax: frames uint8 or [0, 1] (N, 1, 84, 84) -> (N, K, 2) in [-1, 1]."""
        return spatial_softmax(self.keypoint_net(self._check(frames)))

    def keypoints(self, frames: Tensor) -> Tensor:
        """Keypoints (N, K, 2) as (x, y) pixel centres of the 84x84 frame."""
        # [-1, 1] spans the centres of the first and last of the 21 feature cells (4 px each).
        cells = (self.points(frames) + 1) / 2 * (FEATURE_SIZE - 1)
        return (cells + 0.5) * IMAGE_SIZE / FEATURE_SIZE - 0.5

    def forward(self, source: Tensor, target: Tensor) -> TransporterOutput:
        """Rebuild ``target`` from ``source``; both uint8 or [0, 1] (N, 1, 84, 84)."""
        with torch.no_grad():  # nothing flows back through the source branch
            features = self.features(self._check(source))  # (N, 2w, 21, 21)
            source_points = self.points(source)  # (N, K, 2)
        target_features = self.features(self._check(target))
        target_points = self.points(target)
        size = tuple(features.shape[-2:])
        source_maps = gaussian_maps(source_points, size, self.gaussian_std)  # (N, K, 21, 21)
        target_maps = gaussian_maps(target_points, size, self.gaussian_std)
        for k in range(self.num_keypoints):  # Eq. 1, keypoint after keypoint
            hs, ht = source_maps[:, k : k + 1], target_maps[:, k : k + 1]
            features = (1 - hs) * (1 - ht) * features + ht * target_features
        return TransporterOutput(self.decoder(features), target_points)

    def loss(self, source: Tensor, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Mean squared reconstruction error of the target, pixels in [0, 1], and metrics."""
        out = self(source, target)
        loss = F.mse_loss(out.reconstruction, scale_frames(target))
        return loss, {"transporter_loss": float(loss.detach())}


# ---------------------------------------------------------------------- checkpoints
save_transporter = save_module_checkpoint
"""``save_transporter(model, directory, provenance, training_state=None)``: write a checkpoint."""


def load_transporter(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[Transporter, dict[str, Any]]:
    """Read a Transporter checkpoint: ``(model in eval mode, config)``, the config with its provenance;
    CheckpointError when the directory is missing, damaged, or holds another model."""
    model, config = load_module_checkpoint(directory, MODEL_NAME, Transporter, MAKE_COMMAND, device)
    return model.eval(), config  # type: ignore[return-value]


__all__ = [
    "Transporter",
    "TransporterOutput",
    "gaussian_maps",
    "load_transporter",
    "save_transporter",
    "spatial_softmax",
]
