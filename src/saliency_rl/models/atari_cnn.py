"""The Atari convolutional network of A2C (Mnih et al. 2015, 2016), with an optional feature mask.

Three convolutions and a linear layer, orthogonally initialised as in OpenAI baselines::

    obs    uint8 (N, 4, 84, 84), scaled to [0, 1] inside
    conv1  32 filters 8x8 stride 4   -> (N, 32, 20, 20)
    conv2  64 filters 4x4 stride 2   -> (N, 64, 9, 9)
    conv3  32 filters 3x3 stride 1   -> (N, 32, 7, 7)    the mask multiplies these features
    fc     512                       -> (N, 512)

The third layer has 32 filters, not the Nature DQN's 64: the setting of Wu, Khetarpal and
Precup (AAAI 2021) and of their code, so that a (N, 1, 7, 7) attention mask multiplies 32
feature maps before the linear layer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

FEATURE_CHANNELS = 32
FEATURE_SIZE = 7  # the spatial size of the last feature map on 84x84 inputs
IMAGE_SIZE = 84


def orthogonal_init(module: nn.Module, gain: float) -> nn.Module:
    """Orthogonal weights with ``gain`` and zero biases (baselines' ``ortho_init``)."""
    nn.init.orthogonal_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def scale_frames(frames: Tensor) -> Tensor:
    """uint8 frames (N, C, H, W) to float in [0, 1]; float frames are taken as scaled.

    The result is channels-last (the layout of our convolutions' weights), so the first
    convolution does not copy it once more.
    """
    if frames.dtype == torch.uint8:
        return frames.to(torch.float32, memory_format=torch.channels_last).div_(255.0)
    return frames.float()


class AtariCNN(nn.Module):
    """Frames (N, C, 84, 84) -> features (N, hidden_size); see the module docstring.

    Args:
        in_channels: stacked frames times channels per frame (4 grey frames: 4).
        hidden_size: width of the linear layer (512).
    """

    def __init__(self, in_channels: int = 4, hidden_size: int = 512) -> None:
        super().__init__()
        relu = math.sqrt(2.0)
        self.convs = nn.Sequential(
            orthogonal_init(nn.Conv2d(in_channels, 32, 8, stride=4), relu),
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(32, 64, 4, stride=2), relu),
            nn.ReLU(),
            orthogonal_init(nn.Conv2d(64, FEATURE_CHANNELS, 3, stride=1), relu),
            nn.ReLU(),
        )
        self.fc = nn.Sequential(
            nn.Flatten(),
            orthogonal_init(
                nn.Linear(FEATURE_CHANNELS * FEATURE_SIZE * FEATURE_SIZE, hidden_size), relu
            ),
            nn.ReLU(),
        )
        self.in_channels, self.hidden_size = in_channels, hidden_size

    def feature_maps(self, obs: Tensor) -> Tensor:
        """obs: uint8 or [0, 1] float (N, C, 84, 84) -> (N, 32, 7, 7)."""
        return self.convs(scale_frames(obs))

    def forward(self, obs: Tensor, mask: Tensor | None = None) -> Tensor:
        """obs: (N, C, 84, 84); mask: optional (N, 1, 7, 7) in [0, 1] -> (N, hidden_size)."""
        features = self.feature_maps(obs)  # (N, 32, 7, 7)
        if mask is not None:
            features = features * mask  # broadcast over the 32 channels
        return self.fc(features)
