"""A tiny pixel environment for fast logic tests (``fake:square``), as Stable-Baselines3's FakeImageEnv.

A coloured square moves on a grey background; the action (2,) in [-1, 1] pushes it. The
observation and info follow the real suites exactly (``rgb``, ``proprio``,
``salient_points``), so datasets, collection and annotation can be tested in milliseconds.
Tests that prove a feature use the real simulators; this one is for logic only.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from saliency_rl.envs.spec import FrameOptions, unknown_task
from saliency_rl.errors import EnvSpecError

TASKS = ("square",)


def task_names() -> list[str]:
    return list(TASKS)


class FakeSquareEnv(gym.Env):
    """A square the agent pushes; reward is minus its distance to the image centre."""

    salient_point_names = ("square",)

    def __init__(
        self, image_size: int, action_repeat: int, episode_length: int | None, seed: int | None
    ) -> None:
        self.image_size = image_size
        self.action_repeat = action_repeat
        self.episode_length = episode_length or 50
        self.observation_space = gym.spaces.Dict(
            {
                "rgb": gym.spaces.Box(0, 255, (3, image_size, image_size), np.uint8),
                "proprio": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._seed = seed
        self._position = np.zeros(2)
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=self._seed if seed is None else seed)
        self._seed = None  # the first reset uses the constructor's seed, later ones continue
        self._position = self.np_random.uniform(0.2, 0.8, size=2) * self.image_size
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        action = np.clip(np.asarray(action, dtype=np.float64), -1, 1)
        for _ in range(self.action_repeat):
            self._position = np.clip(
                self._position + action * self.image_size / 16, 0, self.image_size - 1
            )
        self._steps += 1
        reward = -float(np.linalg.norm(self._position / self.image_size - 0.5))
        truncated = self._steps >= self.episode_length
        return self._observation(), reward, False, truncated, self._info()

    def _observation(self) -> dict:
        size = self.image_size
        rgb = np.full((3, size, size), 96, dtype=np.uint8)
        half = max(size // 16, 1)
        x, y = self._position.astype(int)
        rgb[:, max(y - half, 0) : y + half + 1, max(x - half, 0) : x + half + 1] = np.array(
            [230, 60, 40]
        )[:, None, None]
        return {"rgb": rgb, "proprio": (self._position / size).astype(np.float32)}

    def _info(self) -> dict:
        # Centre of the pixel the square is drawn around.
        return {"salient_points": (self._position.astype(int) + 0.5).astype(np.float32)[None]}


def make(name: str, frames: FrameOptions) -> gym.Env:
    if name not in TASKS:
        raise unknown_task("fake", name, TASKS)
    if frames.camera is not None:
        raise EnvSpecError("fake environments have no cameras; leave camera unset")
    return FakeSquareEnv(
        frames.image_size, frames.action_repeat, frames.episode_length, frames.seed
    )
