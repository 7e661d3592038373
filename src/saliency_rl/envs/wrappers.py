"""Wrappers shared by every suite."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np


class FrameStack(gym.Wrapper):
    """Stack the last ``k`` frames of ``obs["rgb"]`` along the channel axis.

    ``obs["rgb"]``: uint8 (C, H, W) per frame becomes (k*C, H, W), oldest first, newest
    last. After a reset the first frame is repeated. Other keys and ``info`` (including
    ``salient_points``, which refer to the newest frame) pass through unchanged.
    """

    def __init__(self, env: gym.Env, k: int) -> None:
        super().__init__(env)
        self.k = k
        self._frames: deque[np.ndarray] = deque(maxlen=k)
        rgb = env.observation_space["rgb"]
        c, h, w = rgb.shape
        spaces = dict(env.observation_space.spaces)
        spaces["rgb"] = gym.spaces.Box(0, 255, (k * c, h, w), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)

    def reset(self, **kwargs: Any) -> tuple[dict, dict]:
        obs, info = self.env.reset(**kwargs)
        for _ in range(self.k):
            self._frames.append(obs["rgb"])
        return self._stacked(obs), info

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._frames.append(obs["rgb"])
        return self._stacked(obs), reward, terminated, truncated, info

    def _stacked(self, obs: dict) -> dict:
        return {**obs, "rgb": np.concatenate(self._frames, axis=0)}


def frame_channels(env: gym.Env) -> int:
    """Channels of one frame in ``obs["rgb"]`` (3 for colour, 1 for grey), looking through FrameStack."""
    layer = env
    while isinstance(layer, gym.Wrapper):
        if isinstance(layer, FrameStack):
            return layer.observation_space["rgb"].shape[0] // layer.k
        layer = layer.env
    return layer.observation_space["rgb"].shape[0]
