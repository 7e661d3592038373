"""ViSaRL's pixel CNN as a Stable-Baselines3 features extractor.

    from stable_baselines3 import SAC
    from saliency_rl.models.sb3_extractor import PixelCNNExtractor

    model = SAC(
        "CnnPolicy",  # or "MultiInputPolicy" for {"rgb", "saliency"} observations
        env,
        policy_kwargs=dict(
            features_extractor_class=PixelCNNExtractor,
            features_extractor_kwargs=dict(mode="rgb", num_layers=11),
            net_arch=[1024, 1024, 1024],
        ),
    )

Observations: a uint8 image Box ``(k*C, H, W)`` (mode ``rgb``), or a Dict with ``rgb``
``(k*C, H, W)`` and ``saliency`` ``(k, H, W)`` Boxes (the other modes). SB3 turns them
into float tensors, divided by 255 unless the policy has ``normalize_images=False``; the
extractor undoes that scaling so the CNN sees exactly what our agent's CNN sees.
Output: the CNN's flat features, then (``projection_dim``, ViSaRL's 100) a Linear +
LayerNorm + tanh projection, so SB3's MLP heads start where ours do.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from saliency_rl.models.pixel_cnn import NUM_FILTERS, NUM_LAYERS, EncoderError, PixelCNN


class PixelCNNExtractor(BaseFeaturesExtractor):
    """``PixelCNN`` (+ projection) behind SB3's ``BaseFeaturesExtractor`` interface.

    Args:
        observation_space: a uint8 image Box, or a Dict of ``rgb`` and ``saliency`` Boxes.
        mode: the CNN's saliency mode (``rgb`` for a Box).
        frame_channels: C, channels of one frame.
        num_layers: conv layers (11).
        num_filters: filters per layer (32).
        projection_dim: size of the LayerNorm projection after the CNN; None for none.
        normalized_images: whether SB3 divides the images by 255 first (its default, True).
    """

    def __init__(
        self,
        observation_space: gym.Space,
        mode: str = "rgb",
        frame_channels: int = 3,
        num_layers: int = NUM_LAYERS,
        num_filters: int = NUM_FILTERS,
        projection_dim: int | None = 100,
        normalized_images: bool = True,
    ) -> None:
        if isinstance(observation_space, gym.spaces.Dict):
            rgb_space = observation_space.spaces.get("rgb")
            sal_space = observation_space.spaces.get("saliency")
            shape = (rgb_space or sal_space).shape
            frames = sal_space.shape[0] if sal_space is not None else shape[0] // frame_channels
        else:
            if mode != "rgb":
                raise EncoderError(
                    f"mode {mode!r} needs Dict observations with rgb and saliency, got a Box"
                )
            shape = observation_space.shape
            frames = shape[0] // frame_channels
        cnn = PixelCNN(
            mode,
            frames=frames,
            image_size=shape[-1],
            frame_channels=frame_channels,
            num_layers=num_layers,
            num_filters=num_filters,
        )
        features_dim = projection_dim or cnn.output_dim
        super().__init__(observation_space, features_dim)
        self.cnn = cnn
        self.scale = 255.0 if normalized_images else 1.0
        self.projection = (
            nn.Sequential(
                nn.Linear(cnn.output_dim, projection_dim), nn.LayerNorm(projection_dim), nn.Tanh()
            )
            if projection_dim
            else nn.Identity()
        )

    def forward(self, observations: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(observations, dict):
            rgb, saliency = observations.get("rgb"), observations.get("saliency")
        else:
            rgb, saliency = observations, None
        # Back to 0..255 values (floats), which the CNN scales itself.
        rgb = None if rgb is None else rgb * self.scale
        saliency = None if saliency is None else saliency * self.scale
        return self.projection(self.cnn(rgb, saliency))
