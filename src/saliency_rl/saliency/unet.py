"""A small U-Net saliency predictor: the fast default.

Ronneberger, Fischer, Brox, "U-Net" (MICCAI 2015), shrunk for 64x64 RL frames: four
levels (8-16-32-64 channels by default), nearest-neighbour up-sampling, and the output at the frame's
full resolution, since the oracle's Gaussians are only a few pixels wide. Two coordinate
channels are appended to the input (CoordConv, Liu et al. 2018): the camera is fixed in
RL tasks, so *where* a pixel is says much about whether it is salient (e.g. Meta-World's
goal, an invisible site).

The model maps frames to a list of logit maps, one per supervised output, finest last, so
it trains with the same deep-supervision loss as the PiCANet-style model; here the list has
one entry.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Output bias at the start: a salient-pixel prior of 1 %, as RetinaNet's (Lin et al. 2017,
# Sec. 4.1, pi = 0.01): the oracle's few Gaussians cover about 1-3 % of a 64x64 frame, and
# starting near that, training spends no steps pushing the background down.
PRIOR_LOGIT = -4.6  # log(0.01 / 0.99)


def coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """Append (y, x) coordinates in [-1, 1] as two channels.

    x: (N, C, H, W) -> (N, C + 2, H, W)
    """
    n, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"))  # (2, H, W)
    return torch.cat([x, grid.expand(n, 2, h, w)], dim=1)


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by batch norm and ReLU: (N, C_in, H, W) -> (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(
                out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x up-sampling of x (N, C, h, w) to like's (H, W) = (2h or 2h + 1, ...).

    Odd sizes (84 -> 42 -> 21 -> 10) get their last row / column repeated. Written as an
    expand, which is several times faster on a CPU than ``F.interpolate`` on NCHW tensors.
    """
    n, c, h, w = x.shape
    height, width = like.shape[-2:]
    x = x[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)
    if (2 * h, 2 * w) != (height, width):
        x = F.pad(x, (0, width - 2 * w, 0, height - 2 * h), mode="replicate")
    return x


class UNet(nn.Module):
    """U-Net saliency predictor.

    Args:
        in_channels: frame channels (3 colour, 1 grey).
        widths: channels per level, finest first; one level per entry (down-sampled by 2
            between levels).
        coord_channels: append (y, x) coordinate channels to the input (CoordConv).
        bottleneck_dilation: dilation of the second convolution at the coarsest level,
            to widen the receptive field at no cost.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (8, 16, 32, 64),
        coord_channels: bool = True,
        bottleneck_dilation: int = 2,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        self.config = {
            "in_channels": in_channels,
            "widths": widths,
            "coord_channels": coord_channels,
            "bottleneck_dilation": bottleneck_dilation,
        }
        """The constructor's arguments, as stored in checkpoints."""
        self.coord_channels = coord_channels
        stem = in_channels + (2 if coord_channels else 0)
        # --------------------------------------------------------------- encoder
        self.encoder = nn.ModuleList()
        for level, width in enumerate(widths):
            previous = stem if level == 0 else widths[level - 1]
            dilation = bottleneck_dilation if level == len(widths) - 1 else 1
            self.encoder.append(ConvBlock(previous, width, dilation))
        # --------------------------------------------------------------- decoder
        self.decoder = nn.ModuleList(
            ConvBlock(widths[level + 1] + widths[level], widths[level])
            for level in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv2d(widths[0], 1, 1)
        nn.init.constant_(self.head.bias, PRIOR_LOGIT)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Saliency logits.

        images: (N, C, H, W) float in [0, 1]
        returns: [(N, 1, H, W)] logits at full resolution (a list, as the deep-supervised models)
        """
        x = images * 2.0 - 1.0
        if self.coord_channels:
            x = coordinate_channels(x)  # (N, C + 2, H, W)
        skips = []
        for level, block in enumerate(self.encoder):
            if level > 0:
                x = F.max_pool2d(x, 2)  # (N, C_l, H / 2^l, W / 2^l)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            x = block(torch.cat([upsample_to(x, skip), skip], dim=1))  # (N, C_l, ...)
        return [self.head(x)]  # [(N, 1, H, W)]


# ---------------------------------------------------------------------- named sizes
def unet_small(in_channels: int = 3, **kwargs) -> UNet:
    """The default: four levels of 8-16-32-64 channels, 0.12 M parameters.

    Twice these widths labelled half as fast and scored no better on held-out frames
    (benchmarks/saliency_predictors.py), and four levels see the whole 64x64 frame.
    """
    return UNet(in_channels, widths=(8, 16, 32, 64), **kwargs)


def unet_tiny(in_channels: int = 3, **kwargs) -> UNet:
    """For tests: 4-8 channels."""
    return UNet(in_channels, widths=(4, 8), **kwargs)
