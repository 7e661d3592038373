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
frames is ever stored. The scaled input is made once, channels-last and already in the
dtype the convolutions run in (bf16 under bf16 autocast): converting the uint8 frames'
layout first and their dtype second took 33 ms where fp32 NCHW, then channels-last, then
autocast's cast took 125 ms, at 256 x 9 x 84 x 84 on one CPU thread
(benchmarks/results/sac_speed_drq.md).
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
    rgb: torch.Tensor,
    saliency: torch.Tensor | None,
    mode: str,
    frame_channels: int = 3,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The CNN input of a mode, scaled to [-0.5, 0.5].

    Args:
        rgb: uint8 (N, k*C, H, W), k stacked frames of C channels, oldest first.
        saliency: uint8 (N, k, H, W) maps (0..255), one per frame; None for ``rgb``.
        mode: one of SALIENCY_MODES.
        dtype: of the result (the convolutions' compute dtype).

    Returns:
        dtype (N, input_channels(mode, k, C), H, W), channels-last in memory.
    """
    last = torch.channels_last
    if mode == "rgb":  # layout first, on the uint8 frames: a quarter of the bytes
        return rgb.contiguous(memory_format=last).to(dtype).div_(255.0).sub_(0.5)
    if saliency is None:
        raise EncoderError(f"saliency mode {mode!r} needs saliency maps; got none")
    if mode == "saliency":
        return saliency.contiguous(memory_format=last).to(dtype).div_(255.0).sub_(0.5)
    maps = saliency.to(dtype).div_(255.0)  # (N, k, H, W) in [0, 1]
    n, channels, height, width = rgb.shape
    k = maps.shape[1]
    frames = rgb.to(dtype).div_(255.0).view(n, k, channels // k, height, width)  # (N,k,C,H,W)
    if mode == "rgb_x_saliency":
        x = (frames * maps[:, :, None]).sub_(0.5).view(n, channels, height, width)
    else:  # rgbs: (N, k, C+1, H, W) -> (N, k*(C+1), H, W)
        x = torch.cat([frames, maps[:, :, None]], dim=2).sub_(0.5).view(n, -1, height, width)
    return x.contiguous(memory_format=last)


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
        device_type = rgb.device.type if rgb is not None else saliency.device.type
        dtype = torch.float32
        if torch.is_autocast_enabled(device_type):  # the input in the convolutions' dtype
            dtype = torch.get_autocast_dtype(device_type)
        x = combine_inputs(rgb, saliency, self.mode, self.frame_channels, dtype)
        # Channels-last activations (combine_inputs makes them): oneDNN's CPU convolutions
        # ran forward + backward ~10-20% faster so at batch 128 in fp32 (benchmarks/
        # sac_speed.py) and 1.6x faster in bf16 (sac_speed_drq.md); the values are the same.
        x = self.convs(x)  # (N, F, s, s)
        return x.flatten(1)  # (N, F*s*s)
