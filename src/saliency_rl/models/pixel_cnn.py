"""The convolutional encoder of ViSaRL's pixel policies, with its four saliency input modes.

ViSaRL (Liang, Thomason, Biyik) trains the CNN of the pixel-SAC literature (SAC-AE, RAD,
CURL) from scratch with the critic's loss: 11 conv layers of 32 filters 3x3, no padding,
stride 2 for the first and 1 after, ReLU after each; on 64x64 frames the output is
32x11x11 (64 -> 31 -> 29 -> ... -> 11), flattened to 3872 features.

Saliency enters the input in one of four ways (``SALIENCY_MODES``), per stacked frame:

- ``rgb``: the frames alone, 3 channels each;
- ``saliency``: the saliency map alone, 1 channel each;
- ``rgb_x_saliency``: the frames multiplied by their maps (the map masks the frame), 3 each;
- ``rgbs``: the map as a 4th channel beside each frame's RGB, 4 each.

Inputs are uint8, as stored in the replay buffer; the encoder scales them to [0, 1] and
centres them on 0 (x / 255 - 0.5, as DrQ-v2) itself, so no float copy of a batch of
frames is ever stored.
"""

from __future__ import annotations

import torch
from torch import nn

from saliency_rl.errors import SaliencyRLError

SALIENCY_MODES: dict[str, str] = {
    "rgb": "RGB frames alone",
    "saliency": "the saliency map alone",
    "rgb_x_saliency": "RGB frames multiplied by their saliency map",
    "rgbs": "saliency map as a 4th channel of each frame",
}
NUM_LAYERS = 11  # ViSaRL's CNN (SAC-AE / RAD / CURL use 4 of the same layers)
NUM_FILTERS = 32


class EncoderError(SaliencyRLError, ValueError):
    """An encoder setting or input that does not fit."""


def check_mode(mode: str) -> str:
    """``mode`` if it is one of SALIENCY_MODES, else EncoderError listing them."""
    if mode not in SALIENCY_MODES:
        raise EncoderError(
            f"unknown saliency mode {mode!r}; valid modes: {', '.join(SALIENCY_MODES)}"
        )
    return mode


def uses_saliency(mode: str) -> bool:
    """Whether the mode needs saliency maps (all but ``rgb``)."""
    return check_mode(mode) != "rgb"


def input_channels(mode: str, frames: int, frame_channels: int = 3) -> int:
    """Channels the CNN sees for ``frames`` stacked frames of ``frame_channels`` each."""
    per_frame = {"rgb": frame_channels, "saliency": 1, "rgb_x_saliency": frame_channels}
    return frames * per_frame.get(check_mode(mode), frame_channels + 1)


def conv_output_size(image_size: int, num_layers: int = NUM_LAYERS) -> int:
    """Side of the last feature map: one stride-2 conv then num_layers - 1 stride-1 convs."""
    size = (image_size - 3) // 2 + 1
    return size - 2 * (num_layers - 1)


# ---------------------------------------------------------------------- input modes
def combine_inputs(
    rgb: torch.Tensor, saliency: torch.Tensor | None, mode: str, frame_channels: int = 3
) -> torch.Tensor:
    """The CNN input of a mode, scaled to [-0.5, 0.5].

    Args:
        rgb: uint8 (N, k*C, H, W), k stacked frames of C channels, oldest first.
        saliency: uint8 (N, k, H, W) maps (0..255), one per frame; None for ``rgb``.
        mode: one of SALIENCY_MODES.

    Returns:
        float32 (N, input_channels(mode, k, C), H, W).
    """
    if mode == "rgb":
        return rgb.float().div_(255.0).sub_(0.5)
    if saliency is None:
        raise EncoderError(f"saliency mode {mode!r} needs saliency maps; got none")
    maps = saliency.float().div_(255.0)  # (N, k, H, W) in [0, 1]
    if mode == "saliency":
        return maps.sub_(0.5)
    n, channels, height, width = rgb.shape
    k = maps.shape[1]
    frames = rgb.float().div_(255.0).view(n, k, channels // k, height, width)  # (N, k, C, H, W)
    if mode == "rgb_x_saliency":
        return (frames * maps[:, :, None]).sub_(0.5).view(n, channels, height, width)
    # rgbs: (N, k, C+1, H, W) -> (N, k*(C+1), H, W)
    return torch.cat([frames, maps[:, :, None]], dim=2).sub_(0.5).view(n, -1, height, width)


# ---------------------------------------------------------------------- the CNN
class PixelCNN(nn.Module):
    """ViSaRL's CNN: uint8 observations (and maps) -> flat conv features.

    Args:
        mode: one of SALIENCY_MODES: how saliency maps join the frames.
        frames: k, the stacked frames per observation.
        image_size: square frame side (64 in ViSaRL).
        frame_channels: C, channels of one frame (3).
        num_layers: conv layers (11).
        num_filters: filters per layer (32).

    ``forward(rgb, saliency)``: rgb uint8 (N, k*C, H, W), saliency uint8 (N, k, H, W) or
    None -> float32 (N, num_filters * s * s) with s = conv_output_size(image_size)
    (3872 = 32 * 11 * 11 on 64x64).
    """

    def __init__(
        self,
        mode: str = "rgb",
        *,
        frames: int = 1,
        image_size: int = 64,
        frame_channels: int = 3,
        num_layers: int = NUM_LAYERS,
        num_filters: int = NUM_FILTERS,
    ) -> None:
        super().__init__()
        self.mode = check_mode(mode)
        self.frames, self.frame_channels = frames, frame_channels
        side = conv_output_size(image_size, num_layers)
        if num_layers < 1 or side < 1:
            raise EncoderError(
                f"{num_layers} conv layers do not fit {image_size}x{image_size} frames "
                f"(the last feature map would be {side}x{side}); use fewer layers or larger frames"
            )
        layers: list[nn.Module] = [
            nn.Conv2d(input_channels(mode, frames, frame_channels), num_filters, 3, stride=2)
        ]
        for _ in range(num_layers - 1):
            layers += [nn.ReLU(inplace=True), nn.Conv2d(num_filters, num_filters, 3, stride=1)]
        layers.append(nn.ReLU(inplace=True))
        self.convs = nn.Sequential(*layers)
        self.output_dim = num_filters * side * side

    def forward(self, rgb: torch.Tensor, saliency: torch.Tensor | None = None) -> torch.Tensor:
        x = combine_inputs(rgb, saliency, self.mode, self.frame_channels)  # (N, C_in, H, W)
        # Channels-last activations: oneDNN's CPU convolutions ran forward + backward ~10-20%
        # faster so at batch 128 (benchmarks/sac_speed.py); the values are the same.
        x = self.convs(x.contiguous(memory_format=torch.channels_last))  # (N, F, s, s)
        return x.flatten(1)  # (N, F*s*s)
