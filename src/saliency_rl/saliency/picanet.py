"""A PiCANet-style saliency predictor, small enough to train from scratch on a CPU.

Liu, Han, Yang, "PiCANet: Learning Pixel-wise Contextual Attention for Saliency
Detection" (CVPR 2018). What we keep from the paper:

- a convolutional encoder and a U-Net-like decoder; each decoder stage fuses the
  up-sampled previous stage with the encoder feature of its resolution;
- pixel-wise contextual attention in the decoder: every pixel predicts a softmax over
  context positions and attends to the features there;
  * *global* attention at the coarsest stage: a bidirectional ReNet (LSTMs sweeping rows,
    then columns) gives every pixel a view of the whole map, and a 1x1 convolution turns
    it into one weight per position of the map;
  * *local* attention at the finer stages: a 7x7 convolution with dilation 2 predicts,
    per pixel, a softmax over the 7x7 neighbourhood sampled with dilation 2;
  the stage layout follows the "GGLLL" + plain last stage of a widely used PyTorch
  reimplementation (Ugness/PiCANet-Implementation): global, then local, and no attention
  at full resolution;
- deep supervision: a side output (1x1 convolution) at every decoder stage, each trained
  with cross-entropy against the ground truth resized to its resolution (we sum the side
  losses with equal weights; that reimplementation weighs them 0.5 to 1).

What we change: no pretrained VGG-16 (not available here, and too slow for 64x64 RL
frames on a CPU); a four-level encoder of two 3x3 convolutions per level instead, with
(y, x) coordinate channels at the input as in our U-Net; one global stage instead of two.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from saliency_rl.saliency.unet import PRIOR_LOGIT, ConvBlock, coordinate_channels, upsample_to

LOCAL_KERNEL = 7  # PiCANet's local attention: a 7x7 neighbourhood ...
LOCAL_DILATION = 2  # ... sampled with dilation 2 (a 13x13 field)


# ---------------------------------------------------------------------- attention
def local_attention(
    features: torch.Tensor,
    weights: torch.Tensor,
    kernel_size: int = LOCAL_KERNEL,
    dilation: int = LOCAL_DILATION,
) -> torch.Tensor:
    """Each pixel's weighted sum of the features in its dilated k x k neighbourhood.

    out[n, c, i, j] = sum_{a, b} weights[n, a * k + b, i, j]
                      * features[n, c, i + (a - k // 2) * dilation, j + (b - k // 2) * dilation]
    with zeros outside the map: the same as weighting the columns of
    ``F.unfold(features, k, dilation=dilation, padding=dilation * (k // 2))``, but one shifted
    view at a time, so memory stays at (N, C, H, W) instead of 49 times that.

    features: (N, C, H, W)
    weights: (N, k * k, H, W), e.g. a softmax over dim 1
    returns: (N, C, H, W)
    """
    h, w = features.shape[-2:]
    pad = dilation * (kernel_size // 2)
    padded = F.pad(features, (pad, pad, pad, pad))  # (N, C, H + 2 pad, W + 2 pad)
    out = torch.zeros_like(features)
    for a in range(kernel_size):
        for b in range(kernel_size):
            k = a * kernel_size + b
            shifted = padded[:, :, a * dilation : a * dilation + h, b * dilation : b * dilation + w]
            out.addcmul_(shifted, weights[:, k : k + 1])  # out += shifted * weight
    return out


class LocalAttention(nn.Module):
    """PiCANet's local module: per-pixel softmax over a dilated 7x7 neighbourhood.

    (N, C, H, W) -> (N, C, H, W), the attended context of every pixel.
    """

    def __init__(self, channels: int, hidden: int = 16) -> None:
        super().__init__()
        k = LOCAL_KERNEL
        self.weights = nn.Sequential(
            nn.Conv2d(channels, hidden, k, padding=LOCAL_DILATION * (k // 2), dilation=2),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, k * k, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        weights = self.weights(features).softmax(dim=1)  # (N, 49, H, W)
        return local_attention(features, weights)  # (N, C, H, W)


class ReNet(nn.Module):
    """Bidirectional LSTMs over rows then columns (Visin et al. 2015), as PiCANet's global module.

    (N, C, H, W) -> (N, 2 * hidden, H, W): every output pixel has seen the whole map.
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.rows = nn.LSTM(channels, hidden, batch_first=True, bidirectional=True)
        self.columns = nn.LSTM(2 * hidden, hidden, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.permute(0, 2, 3, 1).reshape(n * h, w, c)  # one sequence per row
        x, _ = self.rows(x)  # (N*H, W, 2h)
        x = x.reshape(n, h, w, -1).transpose(1, 2).reshape(n * w, h, -1)  # one per column
        x, _ = self.columns(x)  # (N*W, H, 2h)
        return x.reshape(n, w, h, -1).permute(0, 3, 2, 1)  # (N, 2h, H, W)


class GlobalAttention(nn.Module):
    """PiCANet's global module: each pixel attends over every position of the map.

    Works on a fixed grid (the coarsest map of a fixed frame size), as the paper's: the
    1x1 convolution predicts one weight per grid position.
    (N, C, H, W) -> (N, C, H, W)
    """

    def __init__(self, channels: int, grid: tuple[int, int], hidden: int = 32) -> None:
        super().__init__()
        self.grid = tuple(grid)
        self.renet = ReNet(channels, hidden)
        self.weights = nn.Conv2d(2 * hidden, grid[0] * grid[1], 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n, c, h, w = features.shape
        if (h, w) != self.grid:
            raise ValueError(f"global attention built for a {self.grid} grid, got {(h, w)}")
        weights = self.weights(self.renet(features)).softmax(dim=1)  # (N, HW context, H, W)
        # out[n, c, p] = sum_q features[n, c, q] * weights[n, q, p]
        out = features.reshape(n, c, h * w) @ weights.reshape(n, h * w, h * w)
        return out.view(n, c, h, w)


# ---------------------------------------------------------------------- decoder stage
class DecoderStage(nn.Module):
    """Fuse, attend, fuse again, and predict a side output.

    inputs: (N, C_in, H, W) (encoder feature, concatenated with the up-sampled previous stage)
    returns: features (N, C_out, H, W) and side logits (N, 1, H, W)
    """

    def __init__(self, in_channels: int, out_channels: int, attention: nn.Module | None) -> None:
        super().__init__()
        self.fuse = ConvBlock(in_channels, out_channels)
        self.attention = attention
        if attention is not None:  # PiCANet: conv on [features, attended context]
            self.merge = nn.Sequential(
                nn.Conv2d(2 * out_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            )
        self.side = nn.Conv2d(out_channels, 1, 1)
        nn.init.constant_(self.side.bias, PRIOR_LOGIT)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.fuse(x)  # (N, C_out, H, W)
        if self.attention is not None:
            x = self.merge(torch.cat([x, self.attention(x)], dim=1))
        return x, self.side(x)


# ---------------------------------------------------------------------- the model
class PiCANet(nn.Module):
    """PiCANet-style saliency predictor.

    Args:
        image_size: (H, W) of the frames; fixes the global attention's grid.
        in_channels: frame channels (3 colour, 1 grey).
        encoder_widths: channels per encoder level, finest first (down-sampled by 2 between).
        decoder_widths: channels per decoder stage, coarsest first (one per encoder level).
        attention: per decoder stage, coarsest first: "G" global, "L" local, "C" none.
        coord_channels: append (y, x) coordinate channels to the input (CoordConv).
    """

    def __init__(
        self,
        image_size: Sequence[int] = (64, 64),
        in_channels: int = 3,
        encoder_widths: Sequence[int] = (8, 16, 32, 64),
        decoder_widths: Sequence[int] = (64, 32, 16, 8),
        attention: str = "GLLC",
        coord_channels: bool = True,
    ) -> None:
        super().__init__()
        self.config = {
            "image_size": [int(s) for s in image_size],
            "in_channels": in_channels,
            "encoder_widths": [int(w) for w in encoder_widths],
            "decoder_widths": [int(w) for w in decoder_widths],
            "attention": attention,
            "coord_channels": coord_channels,
        }
        """The constructor's arguments, as stored in checkpoints."""
        levels = len(encoder_widths)
        if len(decoder_widths) != levels or len(attention) != levels:
            raise ValueError(
                "encoder_widths, decoder_widths and attention need one entry per level, got "
                f"{len(encoder_widths)}, {len(decoder_widths)}, {len(attention)}"
            )
        self.coord_channels = coord_channels
        grid = tuple(int(s) for s in image_size)
        for _ in range(levels - 1):
            grid = (grid[0] // 2, grid[1] // 2)  # max pooling floors odd sizes
        # --------------------------------------------------------------- encoder
        stem = in_channels + (2 if coord_channels else 0)
        widths = [stem, *encoder_widths]
        self.encoder = nn.ModuleList(ConvBlock(widths[i], widths[i + 1]) for i in range(levels))
        # --------------------------------------------------------------- decoder
        self.decoder = nn.ModuleList()
        skips = list(reversed(encoder_widths))  # coarsest first
        for stage, (width, mode) in enumerate(zip(decoder_widths, attention, strict=True)):
            incoming = skips[stage] + (decoder_widths[stage - 1] if stage else 0)
            if mode == "G":
                module: nn.Module | None = GlobalAttention(width, grid)
            elif mode == "L":
                module = LocalAttention(width)
            elif mode == "C":
                module = None
            else:
                raise ValueError(f"attention modes are G, L or C, got {mode!r}")
            self.decoder.append(DecoderStage(incoming, width, module))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Side-output logits of every decoder stage.

        images: (N, C, H, W) float in [0, 1]
        returns: [(N, 1, H / 8, W / 8), (N, 1, H / 4, W / 4), (N, 1, H / 2, W / 2), (N, 1, H, W)]
                 for four levels: coarsest first, the full-resolution prediction last
        """
        x = images * 2.0 - 1.0
        if self.coord_channels:
            x = coordinate_channels(x)  # (N, C + 2, H, W)
        features = []
        for level, block in enumerate(self.encoder):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)  # (N, C_l, H / 2^l, W / 2^l)
            features.append(x)
        sides = []
        x = None
        for stage, skip in zip(self.decoder, reversed(features), strict=True):
            inputs = skip if x is None else torch.cat([upsample_to(x, skip), skip], dim=1)
            x, side = stage(inputs)
            sides.append(side)
        return sides


# ---------------------------------------------------------------------- named sizes
def picanet_small(image_size: Sequence[int] = (64, 64), in_channels: int = 3, **kwargs) -> PiCANet:
    """The default: encoder 8-16-32-64, decoder 64-32-16-8, attention G L L C; 0.39 M parameters."""
    return PiCANet(image_size, in_channels, **kwargs)


def picanet_tiny(image_size: Sequence[int] = (32, 32), in_channels: int = 3, **kwargs) -> PiCANet:
    """For tests: 4-8-8-8 channels."""
    return PiCANet(
        image_size, in_channels, encoder_widths=(4, 8, 8, 8), decoder_widths=(8, 8, 8, 4), **kwargs
    )
